/** What Redis ran while a test step ran, seen with MONITOR. */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Redis } from 'ioredis';
import { testClient } from './redis.js';

/**
 * MONITOR's lines while `during` ran (scripts' own commands included), on a plain socket: ioredis's
 * monitor mode throws (outside any promise) when other clients' lines arrive in the same read as
 * MONITOR's +OK, which parallel test files make likely. Lines of other test files come too: filter
 * on the keys of the test's own prefix.
 */
export async function monitorDuring(during: () => Promise<unknown>): Promise<string> {
  const { host, port, password, username } = (testClient() as Redis).options;
  const socket = net.connect({ host: host ?? '127.0.0.1', port: port ?? 6379 });
  socket.setEncoding('utf8');
  let text = '';
  let monitoring!: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    monitoring = resolve;
    socket.once('error', reject);
  });
  socket.on('data', (chunk: string) => {
    text += chunk;
    // One +OK for AUTH when there is a password, then MONITOR's.
    if (text.split('+OK\r\n').length - 1 >= (password ? 2 : 1)) {
      monitoring();
    }
  });
  const command = (...args: string[]) =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  if (password) {
    socket.write(command('AUTH', ...(username ? [username] : []), password));
  }
  socket.write(command('MONITOR'));
  await ready;
  try {
    await during();
    // The lines of the last commands may come after their replies: a marker sent after them through
    // Redis shows up once every line before it did.
    const marker = `monitor-end-${randomUUID()}`;
    const seen = new Promise<void>((resolve) => {
      const check = () => {
        if (text.includes(marker)) {
          socket.off('data', check);
          resolve();
        }
      };
      socket.on('data', check);
    });
    await testClient().echo(marker);
    await seen;
  } finally {
    socket.destroy();
  }
  return text;
}

/** MONITOR lines (from {@link monitorDuring}) running `command` (any case) on key `key`. */
export function commandsOn(text: string, command: string, key: string): string[] {
  const quotedKey = `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return text
    .split('\n')
    .filter((line) => line.toLowerCase().includes(`"${command.toLowerCase()}" ${quotedKey.toLowerCase()}`));
}

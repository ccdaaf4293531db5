/**
 * Starting nodes in tests: in this process (fast, for API and queue behaviour) or as real child
 * processes of bin/sprocd.js (for anything that crosses processes: two nodes, kill, stop, restart).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { SprocdClient } from '../../src/client.js';
import { testRedisUrl } from './redis.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/** Settings for a test node: the test Redis, a free port, silent logs, quick leases. */
export function testEnv(prefix: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl(),
    SPROCD_PREFIX: prefix,
    PORT: '0',
    LOG_LEVEL: 'silent',
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs'),
    SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'no-lifecycle'),
    SPROCD_SHUTDOWN_GRACE_MS: '2000',
    SPROCD_EXECUTION_LEASE_MS: '2000',
    SPROCD_HEARTBEAT_MS: '500',
    SPROCD_NODE_TIMEOUT_MS: '2000',
    ...env,
  };
}

/** A node in this process, started. */
export async function startInProcessNode(
  prefix: string,
  env: Record<string, string> = {},
): Promise<{
  node: SprocdNode;
  client: SprocdClient;
  url: string;
}> {
  const settings = loadSettings(testEnv(prefix, env), ROOT);
  const node = new SprocdNode(settings, createLogger(settings.logLevel, { pretty: false }));
  await node.start();
  const url = node.api?.url ?? '';
  return { node, url, client: new SprocdClient({ url, token: env.SPROCD_TOKEN ?? '' }) };
}

/** A node running as its own process. */
export interface ChildNode {
  proc: ChildProcess;
  url: string;
  client: SprocdClient;
  /** Every log line so far (JSON objects). */
  lines: Record<string, unknown>[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Waits for a log line that matches. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Spawns `bin/sprocd.js start` with the test settings and waits until it is ready (or exits). */
export async function spawnNode(
  prefix: string,
  env: Record<string, string> = {},
  options: { waitReady?: boolean; cwd?: string; detached?: boolean } = {},
): Promise<ChildNode> {
  const fullEnv = { ...process.env, ...testEnv(prefix, { LOG_LEVEL: 'info', ...env }) };
  delete fullEnv.VITEST;
  delete fullEnv.VITEST_WORKER_ID;
  delete fullEnv.VITEST_POOL_ID;
  delete fullEnv.NODE_OPTIONS;
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'sprocd.js'), 'start'], {
    cwd: options.cwd ?? ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, so a test can signal the group as a terminal's Ctrl-C does.
    detached: options.detached ?? false,
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let stderr = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const raw = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        lines.push(JSON.parse(raw) as Record<string, unknown>);
      } catch {
        lines.push({ msg: raw });
      }
      waiters.forEach((w) => w());
    }
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    lines.push({ stderr: chunk.toString() });
    waiters.forEach((w) => w());
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => {
      resolve(code ?? signal ?? -1);
      waiters.forEach((w) => w());
    }),
  );
  let exitValue: number | string | undefined;
  void exited.then((v) => (exitValue = v));

  const waitForLine = (match: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) {
          cleanup();
          resolve(found);
        } else if (exitValue !== undefined) {
          cleanup();
          reject(
            new Error(
              `node exited (${exitValue}) before the expected log line; stderr: ${stderr.slice(-2000)}; last lines: ${JSON.stringify(lines.slice(-5))}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `no matching log line within ${timeoutMs} ms; last lines: ${JSON.stringify(lines.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let url = '';
  if (options.waitReady !== false) {
    const ready = await waitForLine((l) => l.msg === 'sprocd node ready', 30_000);
    url = String(ready.url);
  }
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (exitValue === undefined) {
      proc.kill(signal);
    }
    return exited;
  };
  return {
    proc,
    url,
    client: new SprocdClient({ url, token: env.SPROCD_TOKEN ?? '' }),
    lines,
    exited,
    waitForLine,
    stop: () => kill('SIGTERM'),
    kill,
  };
}

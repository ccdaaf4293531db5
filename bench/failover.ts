/**
 * How long a Sentinel fail-over stalls sprocd, against how long Sentinel itself needs and against bare
 * BullMQ on the same group (issue 11: "a fail-over should stall sprocd no longer than Sentinel needs").
 *
 * A Sentinel group (test/support/sentinel.ts: a master, two replicas, three sentinels with
 * down-after-milliseconds 1000) under a steady load of 8 request loops; then the master is SIGKILLed
 * (it is restarted as a replica afterwards) or frozen with SIGSTOP for 4 s. Per fail-over:
 * - Sentinel: from the kill or freeze to the first `+switch-master` on the sentinels' channels;
 * - stall: the longest time without an acknowledged request around it (from the last answer before
 *   the fault to the first after it), for sprocd (`executeOnServer`, SPROCD_REPLICA_ACKS off, and at 1
 *   as the fail-over test runs it: then nothing is acknowledged until a replica follows the new
 *   master) and for a bare BullMQ `Queue.add` on an ioredis Sentinel connection (failoverDetector on,
 *   as sprocd's);
 * - the stall beyond Sentinel: stall - Sentinel's time.
 * The sides take turns, `FAILOVER_ROUNDS` (3) each per fault kind; medians are reported.
 *
 * `BENCH_ONLY=failover npm run bench`; standalone: `npx tsx bench/failover.ts`.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sentinelOptions } from '../src/redis/connections.js';
import { freeze, startSentinelGroup, type SentinelGroup } from '../test/support/sentinel.js';
import { median, startBenchNode } from './bench-node.js';
import type { Row } from './queue.js';

const LOOPS = 8;
/** sprocd with acks off and on, and bare BullMQ (no acks). */
const ALL_SIDES = ['sprocd', 'sprocd-acks', 'bullmq'] as const;
const SIDES = ALL_SIDES.filter((side) => (process.env.FAILOVER_SIDES ?? side).split(',').includes(side));
const FAULTS = (['kill', 'freeze'] as const).filter((f) =>
  (process.env.FAILOVER_FAULTS ?? f).split(',').includes(f),
);

type Fault = 'kill' | 'freeze';

/** One fail-over's figures, in ms. */
interface Stall {
  sentinelMs: number;
  stallMs: number;
}

/** Something that sends one acknowledged write per call, and stops. */
interface Writer {
  write(): Promise<unknown>;
  close(): Promise<void>;
}

async function sprocdWriter(group: SentinelGroup, acks: number): Promise<Writer> {
  const { node, executions, stop } = await startBenchNode(group.url, 'failover', {
    SPROCD_RATE_LIMIT: '0',
    SPROCD_REPLICA_ACKS: String(acks),
  });
  return {
    write: () => executions.execute('noop', null),
    // Emptying the queue may meet a connection still on its way to the new master: stop anyway.
    close: () =>
      stop().catch(async (err: unknown) => {
        process.stderr.write(`failover: emptying the queue failed (${String(err)}); stopping the node\n`);
        await node.stop();
      }),
  };
}

async function bullmqWriter(group: SentinelGroup): Promise<Writer> {
  // ioredis's own reconnect schedule (min(50 ms × attempts, 2 s)) and disconnect time-out (2 s), as a
  // bare BullMQ user has them.
  const connection = new Redis({
    ...sentinelOptions(group.url, 2000),
    retryStrategy: (times: number) => Math.min(times * 50, 2000),
    disconnectTimeout: 2000,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
  });
  connection.on('error', () => undefined);
  const queue = new Queue(`failover-${Date.now()}`, { connection });
  await queue.waitUntilReady();
  let n = 0;
  return {
    write: () => queue.add('noop', null, { jobId: `j${++n}`, removeOnComplete: true }),
    close: async () => {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
      connection.disconnect();
    },
  };
}

/** When the first sentinel next announces +switch-master (ms, performance.now()). */
async function nextSwitch(group: SentinelGroup): Promise<{ at: Promise<number>; close(): void }> {
  // Every sentinel: the leader announces first, the others once they hear of it (up to a second later).
  const subs = group.sentinels.map((sentinel) => {
    const sub = new Redis({ port: sentinel.port, host: '127.0.0.1' });
    sub.on('error', () => undefined);
    return sub;
  });
  await Promise.all(subs.map((sub) => sub.subscribe('+switch-master')));
  const at = new Promise<number>((resolve) => {
    for (const sub of subs) {
      sub.once('message', () => resolve(performance.now()));
    }
  });
  return { at, close: () => subs.forEach((sub) => sub.disconnect()) };
}

/** Runs `writer` under load through one fault of the master; the group is whole again afterwards. */
async function failOver(group: SentinelGroup, writer: Writer, fault: Fault): Promise<Stall> {
  const answers: number[] = [];
  let running = true;
  const loops = Array.from({ length: LOOPS }, async () => {
    while (running) {
      try {
        await writer.write();
        answers.push(performance.now());
      } catch {
        await sleep(10);
      }
    }
  });
  await sleep(1000);
  const switched = await nextSwitch(group);
  const master = await group.master();
  const t0 = performance.now();
  const thawed = fault === 'kill' ? master.kill() : freeze(master.pid, 4000);
  await group.failedOver(master);
  const switchAt = await switched.at;
  switched.close();
  await thawed;
  // Until the writes have gone on for a while on the new master.
  const deadline = performance.now() + 30_000;
  while (answers.filter((t) => t > switchAt).length < 200 && performance.now() < deadline) {
    await sleep(50);
  }
  running = false;
  await Promise.all(loops);

  // The longest silence from the last answer before the fault on: answers to requests sent before
  // it may still arrive just after it, so the stall is the largest gap, not the first answer after.
  const sorted = answers.sort((a, b) => a - b);
  let previous = Math.max(...sorted.filter((t) => t <= t0), t0 - 1000);
  let stallMs = 0;
  for (const t of sorted) {
    if (t > previous) {
      stallMs = Math.max(stallMs, t - previous);
      previous = t;
    }
  }
  if (fault === 'kill') {
    await master.restart();
  }
  await group.replicasOnline(2);
  return { sentinelMs: switchAt - t0, stallMs };
}

/** Runs the fail-over benchmark on a Sentinel group of its own (the `url` bench/run.ts passes is not used). */
export async function benchFailover(rounds = Number(process.env.FAILOVER_ROUNDS ?? 3)): Promise<Row[]> {
  const group = await startSentinelGroup();
  const results: Record<string, Stall[]> = {};
  try {
    for (const fault of FAULTS) {
      for (let i = 0; i < rounds; i++) {
        for (const side of SIDES) {
          const writer =
            side === 'bullmq'
              ? await bullmqWriter(group)
              : await sprocdWriter(group, side === 'sprocd-acks' ? 1 : 0);
          try {
            const stall = await failOver(group, writer, fault);
            process.stderr.write(`failover: ${side} ${fault} round ${i + 1}: ${JSON.stringify(stall)}\n`);
            (results[`${side} ${fault}`] ??= []).push(stall);
          } finally {
            await writer.close();
          }
        }
      }
    }
  } finally {
    await group.stop();
  }
  const rows: Row[] = [];
  for (const fault of FAULTS) {
    const label = fault === 'kill' ? 'master SIGKILLed' : 'master frozen 4 s';
    const all = SIDES.flatMap((side) => results[`${side} ${fault}`] ?? []);
    rows.push({
      name: `${label}: Sentinel to +switch-master`,
      value: median(all.map((s) => s.sentinelMs)),
      unit: 'ms',
    });
    for (const side of SIDES) {
      const stalls = results[`${side} ${fault}`] ?? [];
      const who = {
        sprocd: 'sprocd',
        'sprocd-acks': 'sprocd (SPROCD_REPLICA_ACKS=1)',
        bullmq: 'bare BullMQ',
      }[side];
      const each = stalls.map((s) => `${s.stallMs.toFixed(0)}/${s.sentinelMs.toFixed(0)}`).join(' ');
      rows.push({
        name: `${label}: ${who} stall`,
        value: median(stalls.map((s) => s.stallMs)),
        unit: `ms (each, stall/Sentinel: ${each})`,
      });
      rows.push({
        name: `${label}: ${who} stall beyond Sentinel`,
        value: median(stalls.map((s) => s.stallMs - s.sentinelMs)),
        unit: 'ms',
      });
    }
  }
  return rows;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.stdout.write(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}\n`,
  );
  for (const row of await benchFailover()) {
    process.stdout.write(`${row.name.padEnd(60)} ${row.value.toFixed(0).padStart(8)} ${row.unit}\n`);
  }
}

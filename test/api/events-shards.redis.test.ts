/**
 * GET /v1/events over three queue shards: one SSE stream carries the executions of every shard, its
 * ids name a position in each shard's stream, and Last-Event-ID resumes every shard's stream where
 * the client was, with nothing lost and nothing twice. The route and the hub are the node's; the
 * executions are BullMQ jobs of each shard's queue, run by a worker per shard.
 */
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventHub, hubStreams } from '../../src/events/hub.js';
import { QUEUE_NAME, createKeys, jobIdOf } from '../../src/redis/keys.js';
import { fakeApi, fakeContext } from '../support/api.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';
import { openSse, type SseStream } from '../support/sse.js';

const SHARDS = 3;
const prefix = uniquePrefix('evshards');
const keys = createKeys(prefix, SHARDS);
let hub: EventHub;
let url: string;
let queues: Queue[];
let workers: Worker[];
const streams: SseStream[] = [];
let next = 1;

async function open(lastEventId?: string): Promise<SseStream> {
  const stream = await openSse(`${url}/v1/events?type=execution.state`, { lastEventId });
  streams.push(stream);
  await vi.waitFor(() => expect(stream.frames.some((f) => f.id !== undefined)).toBe(true));
  return stream;
}

/** Each execution's states as one stream gave them, by number. */
function statesByNumber(stream: SseStream): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of stream.events()) {
    if (e.type === 'execution.state') {
      const n = Number(e.data.number);
      out.set(n, [...(out.get(n) ?? []), String(e.data.state)]);
    }
  }
  return out;
}

/** Runs `count` executions (consecutive numbers, so every shard has some) to their end. */
async function runSome(count: number): Promise<number[]> {
  const numbers = Array.from({ length: count }, () => next++);
  const jobs = await Promise.all(
    numbers.map((n) => queues[keys.queues.ofNumber(n).shard]!.add('echo', {}, { jobId: jobIdOf(n) })),
  );
  await vi.waitFor(async () => {
    for (const job of jobs) {
      expect(await job.getState()).toBe('completed');
    }
  });
  expect(new Set(numbers.map((n) => keys.queues.ofNumber(n).shard)).size).toBe(SHARDS);
  return numbers;
}

beforeAll(async () => {
  queues = keys.queues.all.map(
    (shard) => new Queue(QUEUE_NAME, { connection: testClient(), prefix: shard.bullPrefix }),
  );
  workers = keys.queues.all.map(
    (shard) =>
      new Worker(QUEUE_NAME, async () => 'ok', {
        connection: testClient(),
        prefix: shard.bullPrefix,
        concurrency: 4,
      }),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  hub = new EventHub({ redis: testClient(), openReader: () => testClient(), streams: hubStreams(keys) });
});

// The fake API is closed after each test.
beforeEach(async () => {
  const app = await fakeApi(fakeContext({ events: () => hub }));
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  streams.forEach((s) => s.close());
  hub?.close();
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/events with three queue shards', () => {
  it("carries every shard's executions, and resumes each shard's stream after Last-Event-ID", async () => {
    const first = await open();
    // One part per shard, then the event log's.
    expect(first.lastId()?.split('_')).toHaveLength(SHARDS + 1);
    const before = await runSome(6);
    await vi.waitFor(() => {
      const got = statesByNumber(first);
      for (const n of before) {
        expect(got.get(n)).toEqual(['waiting', 'active', 'completed']);
      }
    });
    const seen = first.lastId();
    first.close();

    // Missed while away, in every shard; then live ones after the resume.
    const missed = await runSome(6);
    const again = await open(seen);
    const after = await runSome(3);
    await vi.waitFor(() => {
      const got = statesByNumber(again);
      for (const n of [...missed, ...after]) {
        expect(got.get(n), `execution ${n}`).toEqual(['waiting', 'active', 'completed']);
      }
    });
    expect(again.events().some((e) => e.type === 'reset')).toBe(false);
    const got = statesByNumber(again);
    for (const n of before) {
      expect(got.has(n), `execution ${n} came again`).toBe(false);
    }
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([...missed, ...after]);
    const ids = again.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('answers an id of another shard count with reset, as any id it cannot read', async () => {
    const stream = await open('1700000000000-0_0-0');
    expect(stream.events()[0]?.type).toBe('reset');
    expect(stream.lastId()?.split('_')).toHaveLength(SHARDS + 1);
    const [n] = await runSome(3);
    await vi.waitFor(() => expect(statesByNumber(stream).get(n!)).toContain('completed'));
  });
});

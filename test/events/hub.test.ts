/**
 * The event hub against a real Redis and real BullMQ queues and workers: execution events in order,
 * filters, resuming after a position (and `reset` when that position was trimmed away), the event
 * log, slow subscribers dropped, and one reader that stops when nobody listens.
 */
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EventLog } from '../../src/events/event-log.js';
import { filterKey } from '../../src/events/filter.js';
import { EventHub, type EventSink, type HubStreams } from '../../src/events/hub.js';
import { parsePosition, type Position } from '../../src/events/ids.js';
import type { EventFilter } from '../../src/events/types.js';
import { bullQueueKeys, executionJobKey } from '../../src/redis/bullmq-internals.js';
import { QUEUE_NAME, jobIdOf } from '../../src/redis/keys.js';
import { testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';
import { parseFrame, splitFrames, type SseEvent } from '../support/sse.js';

const prefix = uniquePrefix('hub');
const keys = testKeys(prefix);
const streams: HubStreams = {
  bull: keys.queues.all.map((shard) => bullQueueKeys(shard).events),
  log: `{${prefix}}:eventlog`,
  job: (n) => executionJobKey(keys, n),
};
/** The events stream of execution `n`'s queue shard. */
const streamOf = (n: number): string => streams.bull[keys.queues.ofNumber(n).shard]!;
let redis: Redis;
/** Each queue shard's queue and worker, index = shard. */
let queues: Queue[];
let workers: Worker[];
const queueOf = (n: number): Queue => queues[keys.queues.ofNumber(n).shard]!;
let log: EventLog;
const hubs: EventHub[] = [];

/** A sink that keeps what it gets, parsed. */
class Recorder implements EventSink {
  readonly frames: string[] = [];
  /** Every write as it came (the hub writes a read's events in one). */
  readonly writes: (string | Uint8Array)[] = [];
  closedWith: string | undefined;
  backlog = 0;
  write(chunk: string | Uint8Array): void {
    this.writes.push(chunk);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    this.frames.push(...splitFrames(text).map((f) => `${f}\n\n`));
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  close(reason: 'slow' | 'closing'): void {
    this.closedWith = reason;
  }
  /** The events (not the bare id frames), parsed. */
  get events(): SseEvent[] {
    return this.frames.filter((f) => f.includes('\nevent: ')).map(parseFrame);
  }
  /** The id of the last frame that had one. */
  get lastId(): string | undefined {
    const last = [...this.frames].reverse().find((f) => f.startsWith('id: '));
    return last?.slice(4, last.indexOf('\n'));
  }
}

function newHub(maxBacklogBytes?: number): EventHub {
  const hub = new EventHub({
    redis,
    openReader: () => testClient(),
    streams,
    maxBacklogBytes,
  });
  hubs.push(hub);
  return hub;
}

let next = 1;
/** Queues execution-like job `e<n>` of `procedure`; the worker completes it (or fails it for "fail"). */
async function add(procedure: string, opts: { delay?: number } = {}): Promise<number> {
  const n = next++;
  await queueOf(n).add(procedure, { procedure }, { jobId: jobIdOf(n), ...opts });
  return n;
}

const states = (r: Recorder, n: number) =>
  r.events.filter((e) => e.data.number === n && e.type === 'execution.state').map((e) => e.data.state);

beforeAll(async () => {
  redis = testClient();
  queues = keys.queues.all.map(
    (shard) => new Queue(QUEUE_NAME, { connection: testClient(), prefix: shard.bullPrefix }),
  );
  workers = keys.queues.all.map(
    (shard) =>
      new Worker(
        QUEUE_NAME,
        async (job) => {
          if (job.name === 'fail') {
            throw new Error(JSON.stringify({ name: 'Error', message: 'boom', code: 'BOOM' }));
          }
          await job.updateProgress(50);
          return { ok: job.name };
        },
        { connection: testClient(), prefix: shard.bullPrefix, concurrency: 4 },
      ),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log = new EventLog(redis, streams.log);
});

afterEach(() => {
  hubs.splice(0).forEach((h) => h.close());
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  await deletePrefix(redis, prefix);
  await closeTestClients();
});

describe('EventHub', () => {
  it("gives a subscriber each execution's states and progress in order, with ids and the procedure", async () => {
    const hub = newHub();
    const r = new Recorder();
    await hub.subscribe({}, r);
    expect(r.frames[0]).toMatch(new RegExp(`^id: (\\d+-\\d+_){${keys.queues.count}}\\d+-\\d+\\n\\n$`));
    const n = await add('echo');
    await vi.waitFor(() => expect(states(r, n)).toEqual(['waiting', 'active', 'completed']), {
      timeout: 5000,
    });
    const mine = r.events.filter((e) => e.data.number === n);
    expect(mine.map((e) => e.type)).toEqual([
      'execution.state',
      'execution.state',
      'execution.progress',
      'execution.state',
    ]);
    expect(mine[1]?.data).toMatchObject({ procedure: 'echo', state: 'active', attempt: 1 });
    expect(mine[2]?.data).toMatchObject({ procedure: 'echo', progress: 50 });
    expect(mine.every((e) => parsePosition(e.id, keys.queues.count) !== undefined)).toBe(true);
    expect(new Set(mine.map((e) => e.id)).size).toBe(mine.length);
  });

  it('reports failures with their code, and delays with their due time', async () => {
    const hub = newHub();
    const r = new Recorder();
    await hub.subscribe({}, r);
    const failed = await add('fail');
    const delayed = await add('echo', { delay: 60_000 });
    await vi.waitFor(() => expect(states(r, failed)).toContain('failed'), { timeout: 5000 });
    await vi.waitFor(() => expect(states(r, delayed)).toEqual(['delayed']), { timeout: 5000 });
    const fail = r.events.find((e) => e.data.number === failed && e.data.state === 'failed');
    expect(fail?.data.error).toEqual({ code: 'BOOM', message: 'boom' });
    const delay = r.events.find((e) => e.data.number === delayed);
    expect(Date.parse(String(delay?.data.delayedUntil))).toBeGreaterThan(Date.now() + 50_000);
  });

  it('filters by type, family, procedure and number', async () => {
    const hub = newHub();
    const subscribe = async (filter: EventFilter) => {
      const r = new Recorder();
      await hub.subscribe(filter, r);
      return r;
    };
    const byType = await subscribe({ types: ['execution.progress'] });
    const byFamily = await subscribe({ types: ['system'] });
    const byProcedure = await subscribe({ procedures: ['other'] });
    const all = await subscribe({});
    const a = await add('echo');
    const b = await add('other');
    const byNumber = await subscribe({ numbers: [a] });
    log.append('system', { type: 'node.joined', at: new Date().toISOString(), node: 'x' });
    await vi.waitFor(
      () => {
        expect(states(all, a)).toContain('completed');
        expect(states(all, b)).toContain('completed');
        expect(all.events.some((e) => e.type === 'system')).toBe(true);
      },
      { timeout: 5000 },
    );
    expect(byType.events.map((e) => e.type)).toEqual(['execution.progress', 'execution.progress']);
    expect(byFamily.events.map((e) => e.type)).toEqual(['system']);
    expect(byProcedure.events.filter((e) => e.type !== 'system').every((e) => e.data.number === b)).toBe(
      true,
    );
    expect(byProcedure.events.some((e) => e.data.number === b)).toBe(true);
    // number filters execution events only: the system event passes
    expect(byNumber.events.filter((e) => e.type !== 'system').every((e) => e.data.number === a)).toBe(true);
  });

  it('hands every event of one read to each subscriber in order and complete, in one write per read', async () => {
    const hub = newHub();
    const r = new Recorder();
    await hub.subscribe({ types: ['execution.state'] }, r);
    const writesBefore = r.writes.length;
    // Written in one MULTI, the 20 executions' entries are in the stream before the hub's next read.
    const first = next;
    const multi = redis.multi();
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const n = next++;
      ids.push(n);
      multi.xadd(streamOf(n), '*', 'event', 'added', 'jobId', jobIdOf(n), 'name', 'batch');
      multi.xadd(streamOf(n), '*', 'event', 'waiting', 'jobId', jobIdOf(n));
      multi.xadd(streamOf(n), '*', 'event', 'completed', 'jobId', jobIdOf(n), 'returnvalue', 'null');
    }
    await multi.exec();
    await vi.waitFor(() => expect(r.events.filter((e) => Number(e.data.number) >= first)).toHaveLength(40), {
      timeout: 5000,
    });
    const got = r.events.filter((e) => Number(e.data.number) >= first);
    // In id order: with one shard the order written; with more, each execution's in its order
    // (entries of different shards in one millisecond are ordered by their streams' own sequences).
    const order = got.map((e) => [e.data.number, e.data.state]);
    const written = ids.flatMap((n) => [
      [n, 'waiting'],
      [n, 'completed'],
    ]);
    if (keys.queues.count === 1) {
      expect(order).toEqual(written);
    } else {
      expect([...order].sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual(written);
    }
    expect(got.every((e) => e.data.procedure === 'batch')).toBe(true);
    // ids strictly increase, and the last one is where a reconnect resumes
    const positions = got.map((e) => parsePosition(e.id, keys.queues.count)!);
    for (let i = 1; i < positions.length; i++) {
      const shard = keys.queues.ofNumber(Number(got[i]!.data.number)).shard;
      const [a, b] = [positions[i - 1]!.bull[shard]!, positions[i]!.bull[shard]!];
      expect(a.ms < b.ms || (a.ms === b.ms && a.seq < b.seq)).toBe(true);
    }
    expect(r.lastId).toBe(got.at(-1)?.id);
    expect(r.writes.length - writesBefore).toBeLessThanOrEqual(2); // one read, or two if cut between
  });

  it("shares one encoding between subscribers of the same filter, and keeps each filter's events apart", async () => {
    const hub = newHub();
    const subscribe = async (filter: EventFilter) => {
      const r = new Recorder();
      await hub.subscribe(filter, r);
      return r;
    };
    const consoleA = new Recorder();
    const leaveA = await hub.subscribe({ types: ['execution.state', 'system'] }, consoleA);
    const consoleB = await subscribe({ types: ['system', 'execution.state'] });
    const onlyOther = await subscribe({ procedures: ['other'] });
    const everything = await subscribe({});
    expect(hub.groupCount).toBe(3);
    const a = await add('echo');
    const b = await add('other');
    await vi.waitFor(
      () => {
        expect(states(everything, a)).toContain('completed');
        expect(states(everything, b)).toContain('completed');
        expect(states(consoleB, b)).toContain('completed');
        expect(states(onlyOther, b)).toContain('completed');
      },
      { timeout: 5000 },
    );
    // The two consoles got the same events, as the same bytes (one Buffer for both).
    expect(consoleA.frames).toEqual(consoleB.frames);
    const shared = consoleA.writes.filter((w) => typeof w !== 'string');
    expect(shared.length).toBeGreaterThan(0);
    shared.forEach((w, i) => expect(consoleB.writes.filter((x) => typeof x !== 'string')[i]).toBe(w));
    // Each filter still applies: no progress to the consoles, nothing of `echo` to `other`'s subscriber.
    expect(consoleA.events.every((e) => e.type === 'execution.state')).toBe(true);
    expect(
      onlyOther.events.filter((e) => e.type?.startsWith('execution.')).every((e) => e.data.number === b),
    ).toBe(true);
    expect(onlyOther.events.some((e) => e.type === 'execution.progress')).toBe(true);
    expect(everything.events.filter((e) => e.data.number === a)).toHaveLength(4);
    // One that leaves its group takes nothing from the others of it.
    leaveA.close();
    expect(hub.groupCount).toBe(3);
    const seenByA = consoleA.events.length;
    const c = await add('echo');
    await vi.waitFor(() => expect(states(consoleB, c)).toEqual(['waiting', 'active', 'completed']), {
      timeout: 5000,
    });
    expect(consoleA.events.length).toBe(seenByA);
  });

  it('sends a digest group one execution.digest for many execution events, at most once per digestMs, and other events one by one', async () => {
    const hub = newHub();
    const each = new Recorder();
    await hub.subscribe({ types: ['execution.state', 'system'] }, each);
    // The first digest goes with the first read that has events; the next not before a minute.
    const slow = new Recorder();
    await hub.subscribe({ types: ['execution.state', 'system'], digestMs: 60_000 }, slow);
    expect(hub.groupCount).toBe(2);
    const numbers = [await add('echo'), await add('echo'), await add('echo')];
    await vi.waitFor(() => numbers.forEach((n) => expect(states(each, n)).toContain('completed')), {
      timeout: 5000,
    });
    await vi.waitFor(() => expect(slow.events.some((e) => e.type === 'execution.digest')).toBe(true), {
      timeout: 5000,
    });
    log.append('system', { type: 'node.joined', at: new Date().toISOString(), node: 'digest' });
    await vi.waitFor(() => expect(slow.events.some((e) => e.type === 'system')).toBe(true), {
      timeout: 5000,
    });
    expect(slow.events.filter((e) => e.type === 'execution.digest')).toHaveLength(1);
    expect(slow.events.filter((e) => e.type === 'execution.state')).toHaveLength(0);
    const [digest] = slow.events.filter((e) => e.type === 'execution.digest');
    expect(digest?.data.count).toBeGreaterThan(0);
    expect(parsePosition(digest?.id, keys.queues.count)).toBeDefined();
  });

  it('digests every execution event, none lost, the last digest naming the final state of each execution', async () => {
    const hub = newHub();
    const each = new Recorder();
    await hub.subscribe({ procedures: ['digested'], types: ['execution.state'] }, each);
    const digests = new Recorder();
    await hub.subscribe({ procedures: ['digested'], types: ['execution.state'], digestMs: 100 }, digests);
    const numbers = [
      await add('digested'),
      await add('digested'),
      await add('digested'),
      await add('digested'),
    ];
    await vi.waitFor(() => numbers.forEach((n) => expect(states(each, n)).toContain('completed')), {
      timeout: 5000,
    });
    const counted = () =>
      digests.events
        .filter((e) => e.type === 'execution.digest')
        .reduce((sum, e) => sum + Number(e.data.count), 0);
    await vi.waitFor(() => expect(counted()).toBe(each.events.length), { timeout: 5000 });
    const last = new Map<number, string>();
    for (const e of digests.events.filter((x) => x.type === 'execution.digest')) {
      expect(e.data.more).toBe(false);
      for (const item of e.data.items as { number: number; state: string; procedure: string }[]) {
        expect(item.procedure).toBe('digested');
        last.set(item.number, item.state);
      }
    }
    expect(numbers.map((n) => last.get(n))).toEqual(numbers.map(() => 'completed'));
    // The last digest's id resumes after everything it stands for.
    const resumed = new Recorder();
    await hub.subscribe(
      { procedures: ['digested'], types: ['execution.state'] },
      resumed,
      parsePosition(digests.lastId, keys.queues.count),
    );
    expect(resumed.events.filter((e) => e.type === 'execution.state')).toHaveLength(0);
  });

  it('keys filters by what they pass, not by the order of their values', () => {
    expect(filterKey({ types: ['system', 'execution.state'] })).toBe(
      filterKey({ types: ['execution.state', 'system', 'system'] }),
    );
    expect(filterKey({ numbers: [2, 1] })).toBe(filterKey({ numbers: [1, 2] }));
    expect(filterKey({})).not.toBe(filterKey({ types: [] }));
    expect(filterKey({ procedures: ['a'] })).not.toBe(filterKey({ types: ['a'] }));
    expect(filterKey({ digestMs: 1000 })).not.toBe(filterKey({}));
  });

  it('resumes after a position: the missed events first, in order, then live ones, none twice', async () => {
    const hub = newHub();
    const first = new Recorder();
    const sub = await hub.subscribe({}, first);
    const a = await add('echo');
    await vi.waitFor(() => expect(states(first, a)).toContain('completed'), { timeout: 5000 });
    const seen = first.lastId;
    sub.close();
    const missed = await add('echo');
    log.append('backup.progress', { number: 1, phase: 'write', done: 1, total: 2 });
    await vi.waitFor(async () => {
      const view = await queueOf(missed).getJobState(jobIdOf(missed));
      expect(view).toBe('completed');
    });
    const again = new Recorder();
    await hub.subscribe({}, again, parsePosition(seen, keys.queues.count) as Position);
    const live = await add('echo');
    await vi.waitFor(() => expect(states(again, live)).toContain('completed'), { timeout: 5000 });
    expect(states(again, a)).toEqual([]);
    expect(states(again, missed)).toEqual(['waiting', 'active', 'completed']);
    expect(states(again, live)).toEqual(['waiting', 'active', 'completed']);
    expect(again.events.some((e) => e.type === 'backup.progress')).toBe(true);
    const ids = again.events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // starts are counted from the `added` entry, which the replay saw
    expect(
      again.events.find((e) => e.data.number === missed && e.data.state === 'active')?.data.attempt,
    ).toBe(1);
  });

  it('resumes on a hub that was not running (another node, or after a restart of this one)', async () => {
    const one = newHub();
    const r = new Recorder();
    const sub = await one.subscribe({}, r);
    const seen = r.lastId;
    sub.close();
    const missed = await add('echo');
    await vi.waitFor(async () =>
      expect(await queueOf(missed).getJobState(jobIdOf(missed))).toBe('completed'),
    );
    const other = newHub();
    const again = new Recorder();
    await other.subscribe({ numbers: [missed] }, again, parsePosition(seen, keys.queues.count) as Position);
    expect(states(again, missed)).toEqual(['waiting', 'active', 'completed']);
    expect(again.events.find((e) => e.data.number === missed)?.data.procedure).toBe('echo');
  });

  it('sends reset when what followed the position was trimmed away', async () => {
    const hub = newHub();
    const r = new Recorder();
    const sub = await hub.subscribe({}, r);
    const n = await add('echo');
    await vi.waitFor(() => expect(states(r, n)).toContain('completed'), { timeout: 5000 });
    const seen = r.lastId;
    sub.close();
    const trimmed = await add('echo');
    await vi.waitFor(async () => expect(await redis.xlen(streamOf(trimmed))).toBeGreaterThan(0));
    await redis.xtrim(streamOf(trimmed), 'MAXLEN', 1);
    const again = new Recorder();
    await hub.subscribe({}, again, parsePosition(seen, keys.queues.count) as Position);
    expect(again.events[0]?.type).toBe('reset');
  });

  it('drops a subscriber that does not keep up', async () => {
    const hub = newHub(100);
    const slow = new Recorder();
    slow.backlog = 1000;
    await hub.subscribe({}, slow);
    await add('echo');
    await vi.waitFor(() => expect(slow.closedWith).toBe('slow'), { timeout: 5000 });
    expect(hub.size).toBe(0);
  });

  it('reads with one connection for all subscribers, and stops reading when the last one leaves', async () => {
    let readers = 0;
    const hub = new EventHub({
      redis,
      openReader: () => {
        readers++;
        return testClient();
      },
      streams,
    });
    hubs.push(hub);
    const subs = await Promise.all([1, 2, 3].map(() => hub.subscribe({}, new Recorder())));
    expect(readers).toBe(1);
    expect(hub.reading).toBe(true);
    subs.forEach((s) => s.close());
    expect(hub.size).toBe(0);
    await vi.waitFor(() => expect(hub.reading).toBe(false), { timeout: 5000 });
  });

  it('ends every subscription when it closes', async () => {
    const hub = newHub();
    const r = new Recorder();
    await hub.subscribe({}, r);
    hub.close();
    expect(r.closedWith).toBe('closing');
    expect(hub.size).toBe(0);
  });
});

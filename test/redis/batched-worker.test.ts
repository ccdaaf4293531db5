/**
 * src/redis/batched-worker.ts and finishAndTake-9.lua against BullMQ itself: the same jobs run once by
 * BullMQ's own Worker and once by the batched one must leave Redis in the same state (job hashes,
 * finished sets, retention, the job-event stream), for plain jobs and for those the batch leaves to
 * BullMQ's scripts (deduplicated, delayed, prioritized, failed and retried). Then what only the
 * batched worker does: fewer calls than jobs, renewed locks of jobs taken ahead, their hand-back.
 */
import { FlowProducer, Queue, Worker, type Job, type Processor, type WorkerOptions } from 'bullmq';
import { describe, expect, it, vi } from 'vitest';
import { fieldsOf } from '../../src/events/bull-events.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { BatchedWorker } from '../../src/redis/batched-worker.js';
import type { RedisConnection } from '../../src/redis/redis-connection.js';
import { finishAndTake } from '../../src/redis/scripts.js';
import { createKeys, type Keys } from '../../src/redis/keys.js';
import { releasedAfterAll, testClient } from '../support/redis.js';

const QUEUE = 'q';
const released = releasedAfterAll();

async function deployment(label: string): Promise<{ keys: Keys; queue: Queue }> {
  const prefix = released.prefix(label);
  const keys = createKeys(prefix);
  const queue = new Queue(QUEUE, { connection: testClient(), prefix: keys.queues.all[0]!.bullPrefix });
  released.onClose(() => queue.close());
  await queue.waitUntilReady();
  return { keys, queue };
}

function bull(keys: Keys) {
  return bullQueueKeys(keys.queues.all[0]!, QUEUE);
}

function startWorker(
  kind: 'bullmq' | 'batched' | 'batched, no side keys',
  keys: Keys,
  processor: Processor,
  opts: Partial<WorkerOptions> = {},
  batch = 8,
): Worker {
  const options: WorkerOptions = {
    connection: testClient(),
    prefix: keys.queues.all[0]!.bullPrefix,
    concurrency: 4,
    name: 'node-a',
    ...opts,
  };
  const worker =
    kind === 'batched'
      ? new BatchedWorker(QUEUE, processor, options, { batch, depth: 1, prefetch: true, bull: bull(keys) })
      : kind === 'batched, no side keys'
        ? new BatchedWorker(QUEUE, processor, options, {
            batch,
            depth: 1,
            prefetch: true,
            bull: bull(keys),
            jobSideKeys: false,
          })
        : new Worker(QUEUE, processor, options);
  released.onClose(() => worker.close(true));
  return worker;
}

async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error('timed out');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The jobs of the mixed workload: plain ones and each kind the batch leaves to BullMQ's scripts. */
async function addWorkload(queue: Queue, withFlow: boolean): Promise<number> {
  let n = 0;
  const add = (opts: object, data: object = {}) =>
    queue.add('p', { i: ++n, ...data }, { jobId: `j${n}`, ...opts });
  // A parent and its child: the child has a parent, the parent (once its child completed) a processed
  // set; both are BullMQ's to file, and retention deletes the parent's set with it
  // (first, so that retention has removed them by the end).
  if (withFlow) {
    const flows = new FlowProducer({ connection: queue.opts.connection, prefix: queue.opts.prefix });
    const parent = ++n;
    const child = ++n;
    await flows.add({
      name: 'p',
      queueName: QUEUE,
      data: { i: parent },
      opts: { jobId: `j${parent}` },
      children: [{ name: 'p', queueName: QUEUE, data: { i: child }, opts: { jobId: `j${child}` } }],
    });
    await flows.close();
  }
  for (let i = 0; i < 30; i++) {
    await add({});
  }
  await add({ deduplication: { id: 'one-of-a-kind' } });
  await add({ delay: 100 });
  await add({ priority: 3 });
  await add({ priority: 1 });
  await add({ attempts: 2, backoff: 50 }, { failOnce: true });
  await add({ attempts: 1 }, { failAlways: true });
  await add({}, { returns: 'undefined' });
  await add({ removeOnComplete: true });
  for (let i = 0; i < 10; i++) {
    await add({});
  }
  return n;
}

/** Per queue: each run as the processor saw its job (what the worker read back from the take). */
const seen = new Map<string, string[]>();
const processor: Processor = async (job: Job) => {
  const data = job.data as { i: number; failOnce?: boolean; failAlways?: boolean; returns?: string };
  const runs = seen.get(job.queueQualifiedName) ?? [];
  seen.set(job.queueQualifiedName, runs);
  runs.push(
    `${job.id} started ${job.attemptsStarted} made ${job.attemptsMade} by ${job.processedBy} ` +
      `at ${job.processedOn && job.processedOn >= job.timestamp ? 'set' : job.processedOn} ${JSON.stringify(job.data)}`,
  );
  if (data.failAlways || (data.failOnce && job.attemptsMade === 0)) {
    throw new Error(`no ${data.i}`);
  }
  return data.returns === 'undefined' ? undefined : { done: data.i };
};

/** Redis's state of a drained queue, with what differs between two runs by nature (times, tokens) left out. */
async function snapshot(keys: Keys, total: number) {
  const b = bull(keys);
  const redis = testClient();
  const jobs: Record<string, Record<string, string>> = {};
  for (let i = 1; i <= total; i++) {
    const hash = await redis.hgetall(b.job(`j${i}`));
    for (const field of ['timestamp', 'processedOn', 'finishedOn', 'stacktrace']) {
      if (field in hash) {
        hash[field] = '(set)';
      }
    }
    jobs[`j${i}`] = hash;
  }
  const events = (await redis.xrange(b.events, '-', '+')).map(([, f]) => fieldsOf(f));
  // The order of events of different jobs depends on timing; each job's own sequence does not.
  const perJob: Record<string, string[]> = {};
  for (const e of events) {
    if (e.jobId) {
      perJob[e.jobId] = [...(perJob[e.jobId] ?? []), `${e.event}${e.returnvalue ? ` ${e.returnvalue}` : ''}`];
    }
  }
  const state = {
    jobs,
    perJob,
    completed: (await redis.zrange(b.completed, 0, -1)).sort(),
    failed: (await redis.zrange(b.failed, 0, -1)).sort(),
    wait: await redis.llen(b.wait),
    active: await redis.llen(b.active),
    stalled: await redis.scard(b.stalled),
    locks: (await redis.keys(`${b.job('')}*:lock`)).length,
    // The side keys of jobs (a flow's sets): those of kept jobs stay, those of removed ones go with them.
    sideKeys: (await redis.keys(`${b.job('')}*:*`)).filter((k) => !k.endsWith(':lock')).sort(),
    dedup: await redis.exists(`${b.deduplicationPrefix}one-of-a-kind`),
  };
  // The two runs' prefixes differ, and a flow's keys and hashes name theirs.
  const prefix = keys.queues.all[0]!.bullPrefix;
  return JSON.parse(JSON.stringify(state).split(prefix).join('(prefix)')) as typeof state;
}

async function runWorkload(kind: 'bullmq' | 'batched' | 'batched, no side keys', withFlow = true) {
  const { keys, queue } = await deployment(`bw-${kind.replace(/\W+/g, '-')}`);
  const total = await addWorkload(queue, withFlow);
  const worker = startWorker(kind, keys, processor, {
    removeOnComplete: { count: 25 },
    removeOnFail: { count: 25 },
  });
  // What the Worker's 'completed' listeners see of each job, as BullMQ's Job.moveToCompleted leaves it.
  const completions: string[] = [];
  worker.on('completed', (job: Job, result: unknown) => {
    completions.push(
      `${job.id} result ${JSON.stringify(result)} returnvalue ${JSON.stringify(job.returnvalue)} ` +
        `made ${job.attemptsMade} finishedOn ${job.finishedOn !== undefined && job.finishedOn >= job.timestamp}`,
    );
  });
  // What its 'active' listeners see: each job as it starts, with its token, from the wait list.
  const actives: string[] = [];
  worker.on('active', (job: Job, prev: string) => {
    actives.push(`${job.id} from ${prev} token ${typeof job.token} data ${JSON.stringify(job.data)}`);
  });
  // 25 completed are kept, 1 removed when it completed, 1 failed for good.
  await until(async () => {
    const counts = await queue.getJobCounts(
      'completed',
      'failed',
      'active',
      'wait',
      'delayed',
      'prioritized',
    );
    return (
      counts.completed === 25 &&
      counts.failed === 1 &&
      counts.active === 0 &&
      counts.wait === 0 &&
      counts.delayed === 0 &&
      counts.prioritized === 0
    );
  });
  await worker.close();
  const runs = (seen.get(queue.qualifiedName) ?? []).sort();
  return {
    state: await snapshot(keys, total),
    runs,
    completions: completions.sort(),
    actives: actives.sort(),
    worker,
  };
}

describe('the batched worker against BullMQ', () => {
  it('leaves Redis as BullMQ does, for every kind of job, in fewer calls', async () => {
    const bullmq = await runWorkload('bullmq');
    const batched = await runWorkload('batched');
    expect(batched.state).toEqual(bullmq.state);
    expect(batched.runs).toEqual(bullmq.runs);
    expect(batched.completions).toEqual(bullmq.completions);
    expect(batched.actives).toEqual(bullmq.actives);
    expect(batched.actives.length).toBe(batched.runs.length);
    expect(batched.completions).toContain(
      'j39 result undefined returnvalue undefined made 1 finishedOn true',
    );
    expect(batched.runs.length).toBeGreaterThan(40);
    expect(batched.state.completed).toHaveLength(25);
    expect(batched.state.locks).toBe(0);
    // The flow's parent was among the first to complete: retention removed it and its processed set.
    expect(batched.state.jobs.j1).toEqual({});
    expect(batched.state.sideKeys).toEqual([]);
    const stats = (batched.worker as BatchedWorker).batchStats;
    // 48 jobs, a few through BullMQ's scripts; the rest filed and taken several per call.
    expect(stats.filed).toBeGreaterThan(30);
    expect(stats.taken).toBeGreaterThan(30);
    // Fewer calls than jobs moved: a call files and takes together (how many share one call at
    // concurrency 4 depends on the machine's timing; the test below counts them at the defaults' shape).
    expect(stats.calls).toBeLessThan(stats.filed + stats.taken);
  });

  it('files and takes many jobs per call at the defaults (concurrency 16, batch 32, two calls in flight)', async () => {
    const { keys, queue } = await deployment('bw-per-call');
    const total = 400;
    await queue.addBulk(
      Array.from({ length: total }, (_, i) => ({ name: 'p', data: { i }, opts: { jobId: `j${i}` } })),
    );
    const worker = new BatchedWorker(
      QUEUE,
      async () => null,
      { connection: testClient(), prefix: keys.queues.all[0]!.bullPrefix, concurrency: 16 },
      { batch: 32, prefetch: true, bull: bull(keys) },
    );
    released.onClose(() => worker.close(true));
    await until(async () => (await queue.getCompletedCount()) === total);
    const stats = worker.batchStats;
    expect(stats.filed).toBe(total);
    // BullMQ's Worker makes one call per job (files it and fetches the next): these carry several each.
    expect(stats.calls).toBeLessThan(total / 3);
  });

  it('with no side keys to delete (no job logs, no flows), retention still leaves Redis as BullMQ does', async () => {
    const bullmq = await runWorkload('bullmq', false);
    const batched = await runWorkload('batched, no side keys', false);
    expect(batched.state).toEqual(bullmq.state);
    expect(batched.runs).toEqual(bullmq.runs);
    // Retention removed the first ones: their hashes are gone.
    expect(batched.state.jobs.j1).toEqual({});
    expect(batched.state.completed).toHaveLength(25);
    expect((batched.worker as BatchedWorker).batchStats.filed).toBeGreaterThan(30);
  });

  it('runs each job once, under locks shorter than the jobs', async () => {
    const { keys, queue } = await deployment('bw-locks');
    for (let i = 1; i <= 9; i++) {
      await queue.add('p', { i }, { jobId: `j${i}` });
    }
    const runs = new Map<string, number>();
    const stalled: string[] = [];
    // Jobs of 3 lock durations: only renewal keeps their locks, also of the jobs each finished one fetched.
    const worker = startWorker(
      'batched',
      keys,
      async (job) => {
        runs.set(job.id as string, (runs.get(job.id as string) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 900));
        return job.id;
      },
      { concurrency: 3, lockDuration: 300, stalledInterval: 300 },
    );
    worker.on('stalled', (id) => stalled.push(id));
    await until(async () => (await queue.getCompletedCount()) === 9, 30_000);
    expect(stalled).toEqual([]);
    expect([...runs.values()]).toEqual(Array(9).fill(1));
    expect((worker as BatchedWorker).batchStats.taken).toBeGreaterThan(0);
  });

  it('never holds more jobs than its concurrency, taken ahead included', async () => {
    const { keys, queue } = await deployment('bw-bound');
    await queue.addBulk(
      Array.from({ length: 60 }, (_, i) => ({ name: 'p', data: { i }, opts: { jobId: `j${i}` } })),
    );
    const b = bull(keys);
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, await testClient().llen(b.active));
      }
    })();
    startWorker(
      'batched',
      keys,
      async (job) => {
        await new Promise((r) => setTimeout(r, (Number(job.id?.slice(1)) * 7) % 15));
        return null;
      },
      { concurrency: 3 },
    );
    await until(async () => (await queue.getCompletedCount()) === 60);
    sampling = false;
    await sampler;
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(3);
  });

  it('renews the locks of the jobs it took ahead, and gives them back unstarted when it closes', async () => {
    const { keys, queue } = await deployment('bw-giveback');
    for (let i = 1; i <= 5; i++) {
      await queue.add('p', { i }, { jobId: `j${i}` });
    }
    const givenBack: string[] = [];
    const worker = new BatchedWorker(
      QUEUE,
      async () => null,
      {
        connection: testClient(),
        prefix: keys.queues.all[0]!.bullPrefix,
        concurrency: 4,
        autorun: false,
        lockDuration: 300,
      },
      { batch: 8, prefetch: true, bull: bull(keys), onGivenBack: async (id) => void givenBack.push(id) },
    );
    released.onClose(() => worker.close(true));
    // One job asked for: a call takes one per free slot, so three wait ahead, locked.
    const job = await worker.getNextJob('caller');
    expect(job?.id).toBe('j1');
    const b = bull(keys);
    expect(await testClient().llen(b.active)).toBe(4);
    // The renewal BullMQ's run() starts (its loop is not wanted here: it would take the jobs ahead).
    (worker as unknown as { lockManager: { start(): void } }).lockManager.start();
    await new Promise((r) => setTimeout(r, 1000));
    for (const id of ['j2', 'j3', 'j4']) {
      expect(await testClient().pttl(`${b.job(id)}:lock`)).toBeGreaterThan(0);
    }
    await worker.close(true);
    expect(givenBack.sort()).toEqual(['j2', 'j3', 'j4']);
    expect(await testClient().lrange(b.active, 0, -1)).toEqual(['j1']);
    expect((await testClient().lrange(b.wait, 0, -1)).sort()).toEqual(['j2', 'j3', 'j4', 'j5']);
    for (const id of ['j2', 'j3', 'j4']) {
      expect(await testClient().exists(`${b.job(id)}:lock`)).toBe(0);
    }
  });

  it('takes filed jobs out of the active list as BullMQ does, in whatever order they end', async () => {
    const { keys, queue } = await deployment('bw-active');
    for (let i = 1; i <= 8; i++) {
      await queue.add('p', { i }, { jobId: `j${i}` });
    }
    const redis = testClient();
    const b = bull(keys);
    const call = (ids: string[], take = 0) =>
      finishAndTake(redis as unknown as RedisConnection, b, {
        completed: ids.map((jobId) => ({ jobId, token: `t-${jobId}`, value: '"ok"', attemptsMade: 0 })),
        takeTokens: Array.from({ length: take }, (_, i) => `t-j${i + 1}`),
        lockDurationMs: 30_000,
        workerName: '',
        keep: { count: -1 },
        sideKeys: false,
      });
    const active = () => redis.lrange(b.active, 0, -1);
    expect((await call([], 8)).jobs.map((j) => j.id)).toEqual([
      'j1',
      'j2',
      'j3',
      'j4',
      'j5',
      'j6',
      'j7',
      'j8',
    ]);
    // As BullMQ's RPOPLPUSH one by one leaves it: the first taken at the tail.
    expect(await active()).toEqual(['j8', 'j7', 'j6', 'j5', 'j4', 'j3', 'j2', 'j1']);
    // The tail's two and one from the middle, in an order of their own.
    expect((await call(['j5', 'j2', 'j1'])).codes).toEqual([0, 0, 0]);
    expect(await active()).toEqual(['j8', 'j7', 'j6', 'j4', 'j3']);
    // None at the tail.
    expect((await call(['j7'])).codes).toEqual([0]);
    expect(await active()).toEqual(['j8', 'j6', 'j4', 'j3']);
    // One no longer in the list (its lock still held) is not active (BullMQ's -3); the others are filed.
    await redis.lrem(b.active, 0, 'j6');
    expect((await call(['j6', 'j4', 'j3'])).codes).toEqual([-3, 0, 0]);
    expect(await active()).toEqual(['j8']);
    expect(await redis.hget(b.job('j6'), 'finishedOn')).toBeNull();
    expect(await redis.hmget(b.job('j4'), 'atm', 'returnvalue')).toEqual(['1', '"ok"']);
    // Gone altogether (hash and lock): missing, as BullMQ says (-1), though its attempts came along.
    await redis.del(b.job('j7'), `${b.job('j7')}:lock`);
    expect((await call(['j7'])).codes).toEqual([-1]);
    expect((await call(['j8'])).codes).toEqual([0]);
    expect(await redis.exists(b.active)).toBe(0);
    expect(await redis.zrange(b.completed, 0, -1)).toHaveLength(7);
  });

  it('answers an empty queue itself, as BullMQ would, and waits on the marker', async () => {
    const { keys, queue } = await deployment('bw-empty');
    const viaBullMQ = vi.spyOn(Worker.prototype as unknown as { moveToActive(): unknown }, 'moveToActive');
    const worker = startWorker('batched', keys, async (job) => job.id);
    await worker.waitUntilReady();
    for (let i = 1; i <= 5; i++) {
      // One at a time, each once the worker found the queue empty and blocked on the marker again.
      await new Promise((r) => setTimeout(r, 50));
      await queue.add('p', { i }, { jobId: `j${i}` });
      await until(async () => (await queue.getCompletedCount()) === i);
    }
    expect(viaBullMQ).not.toHaveBeenCalled();
    viaBullMQ.mockRestore();
    expect(
      () =>
        new BatchedWorker(
          QUEUE,
          async () => null,
          { connection: testClient(), limiter: { max: 1, duration: 1000 } },
          { batch: 8, prefetch: true, bull: bull(keys) },
        ),
    ).toThrow(/takes no limiter/);
  });

  it('says what BullMQ says when a job lost its lock before it completed', async () => {
    const { keys, queue } = await deployment('bw-lost');
    await queue.add('p', {}, { jobId: 'j1' });
    const errors: string[] = [];
    const worker = startWorker('batched', keys, async (job) => {
      await testClient().del(`${bull(keys).job(job.id as string)}:lock`);
      return 1;
    });
    worker.on('error', (err) => errors.push(err.message));
    await until(async () => errors.length > 0);
    expect(errors[0]).toMatch(/Missing lock for job j1\. moveToFinished/);
    expect(await queue.getJobState('j1')).toBe('active');
  });
});

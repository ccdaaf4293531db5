/**
 * Contract test of src/redis/bullmq-internals.ts: real BullMQ Queues, Workers and job schedulers put
 * jobs in every state, and each name the module claims (keys, job hash fields, delayed score,
 * scheduler job ids, and the fields of the job-event stream entries src/events reads) is checked
 * against what BullMQ really wrote. A BullMQ upgrade that changes one of them fails here, before
 * abortWaiting-8.lua, dropPopped-6.lua, executionFind-6.lua, pauseExecution-5.lua, resumeWaiting-1.lua,
 * backups, the hand-off or the event hub misread a job.
 */
import { DelayedError, Job, Queue, QueueEvents, WaitingError, Worker, type Processor } from 'bullmq';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ABORT_FIELD,
  JOB_FIELDS,
  PARKED_DUE_AT,
  PAUSE_FIELD,
  PAUSE_OPTS_MARK,
  UNFINISHED_JOB_SETS,
  abortRequested,
  bullQueueKeys,
  delayedScoreDueAt,
  executionJobKey,
  hasPauseMark,
  jobJsonOfHash,
  stopLockRenewal,
  parseSchedulerJobId,
  schedulerJobId,
  uncountStart,
  wakeMainLoop,
} from '../../src/redis/bullmq-internals.js';
import { QUEUE_NAME, createKeys, jobIdOf, type Keys } from '../../src/redis/keys.js';
import { abortWaiting, dropPopped, pauseExecution, resumeWaiting } from '../../src/redis/scripts.js';
import { releasedAfterAll, testClient } from '../support/redis.js';

const released = releasedAfterAll();

/** A fresh deployment with a Queue on the procedures queue (no worker yet). */
async function deployment(label: string): Promise<{ keys: Keys; queue: Queue }> {
  const prefix = released.prefix(label);
  const keys = createKeys(prefix);
  const queue = new Queue(QUEUE_NAME, { connection: testClient(), prefix: keys.bullPrefix });
  released.onClose(() => queue.close());
  await queue.waitUntilReady();
  return { keys, queue };
}

function startWorker(keys: Keys, processor: Processor): Worker {
  const worker = new Worker(QUEUE_NAME, processor, {
    connection: testClient(),
    prefix: keys.bullPrefix,
    concurrency: 4,
  });
  released.onClose(() => worker.close(true));
  return worker;
}

const hash = (key: string) => testClient().hgetall(key);

/** The entries of BullMQ's job-event stream of `keys`, each as an object of its fields. */
async function eventEntries(keys: Keys): Promise<Record<string, string>[]> {
  const entries = await testClient().xrange(bullQueueKeys(keys).events, '-', '+');
  return entries.map(([, raw]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) {
      fields[raw[i] as string] = raw[i + 1] as string;
    }
    return fields;
  });
}

/** The first event `event` of execution `n`. */
async function eventOf(keys: Keys, event: string, n: number): Promise<Record<string, string> | undefined> {
  return (await eventEntries(keys)).find((f) => f.event === event && f.jobId === jobIdOf(n));
}

describe('unfinished jobs', () => {
  let keys: Keys;
  let queue: Queue;
  const bull = () => bullQueueKeys(keys);

  beforeAll(async () => {
    ({ keys, queue } = await deployment('bi-waiting'));
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1), attempts: 3 });
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2), delay: 60_000 });
    await queue.add('p', { n: 3 }, { jobId: jobIdOf(3), priority: 7 });
    await queue.add('p', { n: 4 }, { jobId: jobIdOf(4), deduplication: { id: 'name:four' } });
  });

  it('a waiting job is in the wait list, its hash at executionJobKey', async () => {
    expect(await testClient().lrange(bull().wait, 0, -1)).toContain(jobIdOf(1));
    expect(executionJobKey(keys, 1)).toBe(bull().job(jobIdOf(1)));
    const raw = await hash(executionJobKey(keys, 1));
    const job = (await Job.fromId(queue, jobIdOf(1))) as Job;
    expect(raw[JOB_FIELDS.name]).toBe('p');
    expect(JSON.parse(raw[JOB_FIELDS.data] as string)).toEqual({ n: 1 });
    expect(Number(raw[JOB_FIELDS.timestamp])).toBe(job.timestamp);
    expect(Job.optsFromJSON(raw[JOB_FIELDS.opts])).toMatchObject({ attempts: 3 });
    expect(raw[JOB_FIELDS.finishedOn]).toBeUndefined();
  });

  it('a delayed job is in the delayed set, scored by its due time', async () => {
    const score = await testClient().zscore(bull().delayed, jobIdOf(2));
    expect(score).not.toBeNull();
    const job = (await Job.fromId(queue, jobIdOf(2))) as Job;
    expect(delayedScoreDueAt(Number(score))).toBe(job.timestamp + 60_000);
    // src/events reads the due time (ms) from the `delay` field of the `delayed` event.
    expect(Number((await eventOf(keys, 'delayed', 2))?.delay)).toBe(job.timestamp + 60_000);
  });

  it('a job with a priority is in the prioritized set, its priority in the hash', async () => {
    expect(await testClient().zscore(bull().prioritized, jobIdOf(3))).not.toBeNull();
    expect((await hash(executionJobKey(keys, 3)))[JOB_FIELDS.priority]).toBe('7');
  });

  it('a deduplicated job names its deduplication id, whose key holds the job id', async () => {
    expect((await hash(executionJobKey(keys, 4)))[JOB_FIELDS.deduplicationId]).toBe('name:four');
    expect(await testClient().get(`${bull().deduplicationPrefix}name:four`)).toBe(jobIdOf(4));
  });

  it('a paused queue keeps its jobs in the wait list (the legacy paused list stays empty)', async () => {
    const { keys: k, queue: q } = await deployment('bi-paused');
    await q.pause();
    await q.add('p', {}, { jobId: jobIdOf(1) });
    expect(await testClient().hexists(bullQueueKeys(k).meta, 'paused')).toBe(1);
    expect(await testClient().lrange(bullQueueKeys(k).wait, 0, -1)).toEqual([jobIdOf(1)]);
    expect(await testClient().exists(bullQueueKeys(k).paused)).toBe(0);
  });

  it('every unfinished job is in one of UNFINISHED_JOB_SETS, each of the Redis type it claims', async () => {
    const found = new Set<string>();
    for (const { part, kind } of UNFINISHED_JOB_SETS) {
      const key = bull()[part];
      const type = await testClient().type(key);
      if (type !== 'none') {
        expect(type).toBe(kind);
      }
      const ids =
        kind === 'list' ? await testClient().lrange(key, 0, -1) : await testClient().zrange(key, 0, -1);
      ids.forEach((id) => found.add(id));
    }
    expect([...found].sort()).toEqual([1, 2, 3, 4].map(jobIdOf).sort());
  });

  it('abortWaiting files waiting, delayed, prioritized and deduplicated jobs as failed, as BullMQ would', async () => {
    const events = new QueueEvents(QUEUE_NAME, { connection: testClient(), prefix: keys.bullPrefix });
    released.onClose(() => events.close());
    await events.waitUntilReady();
    const failedEvents: string[] = [];
    events.on('failed', ({ jobId }) => failedEvents.push(jobId));
    for (const n of [1, 2, 3, 4]) {
      expect(await abortWaiting(testClient(), keys, n, `aborted ${n}`, Date.now())).toBe('aborted');
      expect(await queue.getJobState(jobIdOf(n))).toBe('failed');
      const job = (await Job.fromId(queue, jobIdOf(n))) as Job;
      expect(job.failedReason).toBe(`aborted ${n}`);
      expect(job.finishedOn).toBeGreaterThan(0);
    }
    await expect.poll(() => failedEvents.sort()).toEqual([1, 2, 3, 4].map(jobIdOf).sort());
    expect((await eventOf(keys, 'failed', 1))?.failedReason).toBe('aborted 1');
    // The deduplication key went with the job: the same id now makes a new job.
    expect(await testClient().exists(`${bull().deduplicationPrefix}name:four`)).toBe(0);
    const again = await queue.add('p', {}, { jobId: jobIdOf(5), deduplication: { id: 'name:four' } });
    expect(again.id).toBe(jobIdOf(5));
    expect(await abortWaiting(testClient(), keys, 1, 'again', Date.now())).toBe('finished');
    expect(await abortWaiting(testClient(), keys, 99, 'none', Date.now())).toBe('missing');
    // The waiting one stays in the wait list (taking it out walks the list), listed as dropped; the
    // others left their sets.
    expect(await testClient().lrange(bull().wait, 0, -1)).toContain(jobIdOf(1));
    expect((await testClient().smembers(keys.executionIndex.dropped)).sort()).toEqual([
      jobIdOf(1),
      jobIdOf(4),
    ]);
    expect(await testClient().zscore(bull().delayed, jobIdOf(2))).toBeNull();
    expect(await testClient().zscore(bull().prioritized, jobIdOf(3))).toBeNull();
  });

  it('jobJsonOfHash reads a job hash as Job.fromId does', async () => {
    for (const n of [1, 2, 3, 5]) {
      const job = (await Job.fromId(queue, jobIdOf(n))) as Job;
      const raw = await hash(executionJobKey(keys, n));
      expect(Job.fromJSON(queue, jobJsonOfHash(raw), jobIdOf(n)).asJSON()).toEqual(job.asJSON());
    }
  });
});

describe('a job aborted while waiting, popped by a worker', () => {
  it('reaches the processor finished (or without data when retention removed it); dropPopped undoes the pop', async () => {
    const { keys, queue } = await deployment('bi-dropped');
    const bull = bullQueueKeys(keys);
    await queue.pause();
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1) });
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2) });
    await queue.add('p', { n: 3 }, { jobId: jobIdOf(3) });
    expect(await abortWaiting(testClient(), keys, 1, 'aborted', Date.now())).toBe('aborted');
    expect(await abortWaiting(testClient(), keys, 3, 'aborted', Date.now())).toBe('aborted');
    // Retention removed number 3's job while its id was still in the wait list.
    await testClient().del(executionJobKey(keys, 3));
    const ran: number[] = [];
    const dropped: string[] = [];
    startWorker(keys, async (job, token) => {
      if (job.finishedOn !== undefined || (job.data as { n?: number }).n === undefined) {
        expect(token).toBeDefined();
        if ((await dropPopped(testClient(), keys, job.id as string)) === 'dropped') {
          dropped.push(job.id as string);
          throw new WaitingError();
        }
      }
      ran.push((job.data as { n: number }).n);
      return null;
    });
    await queue.resume();
    await expect.poll(() => queue.getJobState(jobIdOf(2))).toBe('completed');
    await expect.poll(() => dropped.sort()).toEqual([jobIdOf(1), jobIdOf(3)]);
    expect(ran).toEqual([2]);
    const one = await hash(executionJobKey(keys, 1));
    expect(one).toMatchObject({ failedReason: 'aborted', [JOB_FIELDS.attemptsStarted]: '0' });
    expect(one[JOB_FIELDS.processedOn]).toBeUndefined();
    expect(one[JOB_FIELDS.processedBy]).toBeUndefined();
    expect(await queue.getJobState(jobIdOf(1))).toBe('failed');
    expect(await testClient().exists(executionJobKey(keys, 3))).toBe(0);
    expect(await testClient().lrange(bull.active, 0, -1)).toEqual([]);
    expect(await testClient().lrange(bull.wait, 0, -1)).toEqual([]);
    expect(await testClient().exists(`${executionJobKey(keys, 1)}:lock`)).toBe(0);
    expect(await testClient().scard(keys.executionIndex.dropped)).toBe(0);
  });
});

describe('jobs workers took', () => {
  let keys: Keys;
  let queue: Queue;
  const release = new Map<string, () => void>();

  beforeAll(async () => {
    ({ keys, queue } = await deployment('bi-worked'));
    startWorker(keys, async (job) => {
      const n = (job.data as { n: number }).n;
      if (n === 1) {
        await job.updateProgress({ p: 1 });
      }
      if (n === 2) {
        throw new Error('boom');
      }
      if (n === 3 || n === 4) {
        // Held active until the test lets it go; number 4 then fails once, to be retried.
        await new Promise<void>((resolve) => release.set(job.id as string, resolve));
        if (n === 4 && job.attemptsMade === 0) {
          throw new Error('once');
        }
      }
      return { ok: n };
    });
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1), deduplication: { id: 'name:one' } });
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2) });
    await queue.add('p', { n: 3 }, { jobId: jobIdOf(3) });
    await queue.add('p', { n: 4 }, { jobId: jobIdOf(4), attempts: 2 });
    await vi.waitFor(async () => {
      expect(await queue.getJobState(jobIdOf(1))).toBe('completed');
      expect(await queue.getJobState(jobIdOf(2))).toBe('failed');
      expect(release.size).toBe(2);
    });
  });

  it('a completed job: completed set, returnvalue, finishedOn, attempts', async () => {
    const b = bullQueueKeys(keys);
    expect(await testClient().zscore(b.completed, jobIdOf(1))).not.toBeNull();
    const raw = await hash(executionJobKey(keys, 1));
    const job = (await Job.fromId(queue, jobIdOf(1))) as Job;
    expect(JSON.parse(raw[JOB_FIELDS.returnvalue] as string)).toEqual({ ok: 1 });
    expect(Number(raw[JOB_FIELDS.finishedOn])).toBe(job.finishedOn);
    expect(Number(raw[JOB_FIELDS.processedOn])).toBe(job.processedOn);
    expect(Number(raw[JOB_FIELDS.attemptsStarted])).toBe(job.attemptsStarted);
    expect(Number(raw[JOB_FIELDS.attemptsMade])).toBe(job.attemptsMade);
    expect(job.attemptsStarted).toBe(1);
    expect(await testClient().exists(`${b.deduplicationPrefix}name:one`)).toBe(0);
  });

  it('the job-event stream carries the fields src/events reads', async () => {
    expect((await eventOf(keys, 'added', 1))?.name).toBe('p');
    expect(await eventOf(keys, 'waiting', 1)).toBeDefined();
    expect((await eventOf(keys, 'active', 1))?.prev).toBe('waiting');
    expect(JSON.parse((await eventOf(keys, 'progress', 1))?.data ?? 'null')).toEqual({ p: 1 });
    expect(JSON.parse((await eventOf(keys, 'completed', 1))?.returnvalue ?? 'null')).toEqual({ ok: 1 });
    expect((await eventOf(keys, 'failed', 2))?.failedReason).toBe('boom');
  });

  it('a failed job: failed set and failedReason', async () => {
    expect(await testClient().zscore(bullQueueKeys(keys).failed, jobIdOf(2))).not.toBeNull();
    expect((await hash(executionJobKey(keys, 2)))[JOB_FIELDS.failedReason]).toBe('boom');
  });

  it('an active job: active list; abortWaiting flags it, and the flag outlives a retry', async () => {
    expect(await testClient().lrange(bullQueueKeys(keys).active, 0, -1)).toEqual(
      expect.arrayContaining([jobIdOf(3), jobIdOf(4)]),
    );
    expect(await queue.getJobState(jobIdOf(3))).toBe('active');
    expect(await abortRequested(testClient(), keys, 4)).toBe(false);
    expect(await abortWaiting(testClient(), keys, 4, 'x', Date.now())).toBe('active');
    expect((await hash(executionJobKey(keys, 4)))[ABORT_FIELD]).toBe('1');
    release.get(jobIdOf(4))?.();
    release.delete(jobIdOf(4));
    // Attempt 2 starts (and waits again): BullMQ kept sprocd's field through the retry.
    await expect.poll(() => release.has(jobIdOf(4))).toBe(true);
    expect((await Job.fromId(queue, jobIdOf(4)))?.attemptsStarted).toBe(2);
    expect(await abortRequested(testClient(), keys, 4)).toBe(true);
    release.get(jobIdOf(4))?.();
    await expect.poll(() => queue.getJobState(jobIdOf(4))).toBe('completed');
  });

  it('uncountStart takes back one start of Job.attemptsStarted', async () => {
    expect((await Job.fromId(queue, jobIdOf(3)))?.attemptsStarted).toBe(1);
    await uncountStart(testClient(), keys, 3);
    expect((await Job.fromId(queue, jobIdOf(3)))?.attemptsStarted).toBe(0);
    release.get(jobIdOf(3))?.();
    await expect.poll(() => queue.getJobState(jobIdOf(3))).toBe('completed');
  });
});

describe('job schedulers', () => {
  it('make their tick jobs with the ids schedulerJobId builds and parseSchedulerJobId reads', async () => {
    const { keys } = await deployment('bi-sched');
    const lifecycle = new Queue('lifecycle', { connection: testClient(), prefix: keys.bullPrefix });
    released.onClose(() => lifecycle.close());
    await lifecycle.upsertJobScheduler('procedure@tick', { pattern: '0 0 1 1 *', tz: 'UTC' }, { name: 't' });
    const scheduler = await lifecycle.getJobScheduler('procedure@tick');
    const next = Number(scheduler?.next);
    expect(next).toBeGreaterThan(Date.now());
    const id = schedulerJobId('procedure@tick', next);
    const job = await lifecycle.getJob(id);
    expect(job?.id).toBe(id);
    expect(parseSchedulerJobId(job?.id)).toEqual({ scheduler: 'procedure@tick', millis: next });
    expect(await testClient().zscore(bullQueueKeys(keys, 'lifecycle').delayed, id)).not.toBeNull();
    expect(parseSchedulerJobId(jobIdOf(1))).toBeUndefined();
  });
});

describe('pauseExecution-5 (PAUSE PROCESS)', () => {
  it('parks prioritized and delayed jobs where no worker takes them; promote and changeDelay put them back', async () => {
    const { keys, queue } = await deployment('bull-pause');
    const due = Date.now() + 600_000;
    await queue.add('p', {}, { jobId: jobIdOf(2), priority: 3 });
    await queue.add('p', {}, { jobId: jobIdOf(3), delay: due - Date.now() });
    const redis = testClient();
    for (const n of [2, 3]) {
      expect(await pauseExecution(redis, keys, n)).toBe('parked');
      expect(await pauseExecution(redis, keys, n)).toBe('already');
      expect(await queue.getJobState(jobIdOf(n))).toBe('delayed');
      const score = Number(await redis.zscore(bullQueueKeys(keys).delayed, jobIdOf(n)));
      expect(delayedScoreDueAt(score)).toBe(PARKED_DUE_AT);
    }
    expect(await redis.hget(executionJobKey(keys, 2), PAUSE_FIELD)).toBe('queue');
    // The delayed one keeps its due time (to the ms BullMQ's score holds).
    expect(Math.abs(Number(await redis.hget(executionJobKey(keys, 3), PAUSE_FIELD)) - due)).toBeLessThan(
      1000,
    );
    expect(await pauseExecution(redis, keys, 99)).toBe('missing');

    // A worker takes only a job that is not parked.
    const ran: string[] = [];
    startWorker(keys, async (job) => {
      ran.push(job.id as string);
    });
    await queue.add('p', {}, { jobId: jobIdOf(4) });
    await expect.poll(() => ran).toEqual([jobIdOf(4)]);
    expect(await pauseExecution(redis, keys, 4)).toBe('finished');

    // Back: promote keeps the priority; changeDelay moves the delayed one to its time.
    await (await Job.fromId(queue, jobIdOf(2)))!.promote();
    await expect.poll(() => [...ran].sort()).toEqual([2, 4].map(jobIdOf).sort());
    await (await Job.fromId(queue, jobIdOf(3)))!.changeDelay(600_000);
    const score = Number(await redis.zscore(bullQueueKeys(keys).delayed, jobIdOf(3)));
    expect(delayedScoreDueAt(score)).toBeLessThan(PARKED_DUE_AT);
  });

  it('marks a job in the wait list in place: BullMQ hands the mark to the worker that pops it, which parks it with dropPopped', async () => {
    const { keys, queue } = await deployment('bull-pause-wait');
    const bull = bullQueueKeys(keys);
    const redis = testClient();
    await queue.pause();
    // Options of every shape the mark is written into: some, none given, and an attempt that ran before.
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1), attempts: 3, backoff: { type: 'fixed', delay: 5 } });
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2) });
    await queue.add('p', { n: 3 }, { jobId: jobIdOf(3) });
    await queue.add('p', { n: 4 }, { jobId: jobIdOf(4) });
    await redis.hset(executionJobKey(keys, 4), JOB_FIELDS.processedOn, '1234', JOB_FIELDS.processedBy, 'old');
    await redis.hset(executionJobKey(keys, 2), JOB_FIELDS.opts, '{}');
    const optsBefore = await Promise.all(
      [1, 2, 3, 4].map((n) => redis.hget(executionJobKey(keys, n), 'opts')),
    );
    const order = await redis.lrange(bull.wait, 0, -1);

    for (const n of [1, 2, 3, 4]) {
      expect(await pauseExecution(redis, keys, n)).toBe('marked');
      expect(await pauseExecution(redis, keys, n)).toBe('already');
      expect(await redis.hget(executionJobKey(keys, n), PAUSE_FIELD)).toBe('wait');
      // Still waiting, in its place; its options as BullMQ reads them carry the mark beside its own.
      expect(await queue.getJobState(jobIdOf(n))).toBe('waiting');
      const job = (await Job.fromId(queue, jobIdOf(n)))!;
      expect(hasPauseMark(job)).toBe(true);
    }
    expect((await Job.fromId(queue, jobIdOf(1)))!.opts).toMatchObject({ attempts: 3, [PAUSE_OPTS_MARK]: 1 });
    expect(await redis.lrange(bull.wait, 0, -1)).toEqual(order);

    // Resumed before a worker pops it: the mark goes, its options are as they were, it stays in place.
    expect(await resumeWaiting(redis, keys, 3)).toBe('wait');
    expect(await resumeWaiting(redis, keys, 3)).toBeUndefined();
    expect(await redis.hget(executionJobKey(keys, 3), PAUSE_FIELD)).toBeNull();
    expect(await redis.lrange(bull.wait, 0, -1)).toEqual(order);

    const ran: number[] = [];
    const parked: number[] = [];
    startWorker(keys, async (job) => {
      if (hasPauseMark(job)) {
        expect(await dropPopped(redis, keys, job.id as string)).toBe('parked');
        parked.push((job.data as { n: number }).n);
        throw new DelayedError();
      }
      ran.push((job.data as { n: number }).n);
      return null;
    });
    await queue.resume();
    await expect.poll(() => [...parked].sort()).toEqual([1, 2, 4]);
    await expect.poll(() => ran).toEqual([3]);
    for (const n of [1, 2, 4]) {
      expect(await queue.getJobState(jobIdOf(n))).toBe('delayed');
      expect(delayedScoreDueAt(Number(await redis.zscore(bull.delayed, jobIdOf(n))))).toBe(PARKED_DUE_AT);
      const raw = await hash(executionJobKey(keys, n));
      // Parked as a pause parks a waiting one; the pop undone, the mark gone.
      expect(raw[PAUSE_FIELD]).toBe('queue');
      expect(raw[JOB_FIELDS.attemptsStarted]).toBe('0');
      expect(raw[JOB_FIELDS.opts]).toBe(optsBefore[n - 1]);
      expect(await redis.exists(`${executionJobKey(keys, n)}:lock`)).toBe(0);
    }
    expect(await hash(executionJobKey(keys, 4))).toMatchObject({
      [JOB_FIELDS.processedOn]: '1234',
      [JOB_FIELDS.processedBy]: 'old',
    });
    expect((await hash(executionJobKey(keys, 1)))[JOB_FIELDS.processedOn]).toBeUndefined();
    expect(await redis.hget(executionJobKey(keys, 3), JOB_FIELDS.opts)).toBe(optsBefore[2]);
    expect(await redis.lrange(bull.active, 0, -1)).toEqual([]);
    expect(await redis.scard(bull.stalled)).toBe(0);
    expect(
      (await eventEntries(keys))
        .filter((e) => e.event === 'delayed')
        .map((e) => e.jobId)
        .sort(),
    ).toEqual([1, 2, 4].map(jobIdOf).sort());
    // Once parked, resumeWaiting leaves it to the caller, which moves it back as any parked one.
    expect(await resumeWaiting(redis, keys, 1)).toBe('queue');
    await (await Job.fromId(queue, jobIdOf(1)))!.promote();
    await redis.hdel(executionJobKey(keys, 1), PAUSE_FIELD);
    await expect.poll(() => ran).toEqual([3, 1]);
  });

  it('a job resumed after the pop that read its mark runs; one aborted after its pause is dropped', async () => {
    const { keys, queue } = await deployment('bull-pause-race');
    const redis = testClient();
    await queue.pause();
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1) });
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2) });
    expect(await pauseExecution(redis, keys, 1)).toBe('marked');
    expect(await pauseExecution(redis, keys, 2)).toBe('marked');
    expect(await abortWaiting(redis, keys, 2, 'aborted', Date.now())).toBe('aborted');
    const seen: string[] = [];
    const ran: number[] = [];
    startWorker(keys, async (job) => {
      if (hasPauseMark(job) || job.finishedOn !== undefined) {
        if (job.finishedOn === undefined) {
          // The resume lands between the pop and dropPopped.
          expect(await resumeWaiting(redis, keys, 1)).toBe('wait');
        }
        const popped = await dropPopped(redis, keys, job.id as string);
        seen.push(`${job.id}:${popped}`);
        if (popped === 'dropped') {
          throw new WaitingError();
        }
      }
      ran.push((job.data as { n: number }).n);
      return null;
    });
    await queue.resume();
    await expect.poll(() => queue.getJobState(jobIdOf(1))).toBe('completed');
    await expect.poll(() => seen.sort()).toEqual([`${jobIdOf(1)}:run`, `${jobIdOf(2)}:dropped`]);
    expect(ran).toEqual([1]);
    expect(await queue.getJobState(jobIdOf(2))).toBe('failed');
    expect(await redis.hget(executionJobKey(keys, 2), JOB_FIELDS.opts)).not.toContain(PAUSE_OPTS_MARK);
  });

  it('marks an active job "run" and leaves it where it is', async () => {
    const { keys, queue } = await deployment('bull-pause-run');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((resolve) =>
      startWorker(keys, async () => {
        resolve();
        await held;
      }),
    );
    await queue.add('p', {}, { jobId: jobIdOf(1) });
    await started;
    expect(await pauseExecution(testClient(), keys, 1)).toBe('active');
    expect(await testClient().hget(executionJobKey(keys, 1), PAUSE_FIELD)).toBe('run');
    expect(await queue.getJobState(jobIdOf(1))).toBe('active');
    release();
    await expect.poll(() => queue.getJobState(jobIdOf(1))).toBe('completed');
  });
});

describe('stopLockRenewal', () => {
  it("takes a job out of the worker's lock renewals while its processor still runs", async () => {
    const { keys, queue } = await deployment('bi-lock');
    let release: (() => void) | undefined;
    const worker = startWorker(keys, () => new Promise<void>((resolve) => (release = resolve)));
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1) });
    await vi.waitFor(() => expect(release).toBeDefined());
    const tracked = () =>
      (worker as unknown as { lockManager: { getActiveJobCount(): number } }).lockManager.getActiveJobCount();
    expect(tracked()).toBe(1);
    stopLockRenewal(worker, jobIdOf(1));
    expect(tracked()).toBe(0);
    release?.();
    await vi.waitFor(async () => expect(await queue.getJobState(jobIdOf(1))).toBe('completed'));
  });
});

describe('wakeMainLoop', () => {
  it('makes a worker that waits on its own jobs fetch up to its raised concurrency', async () => {
    const { keys, queue } = await deployment('bi-wake');
    const releases = new Map<unknown, () => void>();
    const worker = startWorker(
      keys,
      (job) => new Promise<void>((resolve) => releases.set(job.data.n, resolve)),
    );
    worker.concurrency = 1;
    await queue.add('p', { n: 1 }, { jobId: jobIdOf(1) });
    await vi.waitFor(() => expect(releases.has(1)).toBe(true));
    await queue.add('p', { n: 2 }, { jobId: jobIdOf(2) });
    worker.concurrency = 2;
    // Raised alone, the loop still waits for job 1 (this is why the helper exists).
    await new Promise((r) => setTimeout(r, 300));
    expect(releases.has(2)).toBe(false);

    wakeMainLoop(worker);
    await vi.waitFor(() => expect(releases.has(2)).toBe(true));
    expect(await queue.getJobState(jobIdOf(1))).toBe('active');
    releases.forEach((release) => release());
  });
});

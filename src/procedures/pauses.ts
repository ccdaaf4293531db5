/**
 * PAUSE PROCESS and RESUME PROCESS on the queue side, cluster-wide. The pause is a field of the
 * execution's job hash (bullmq-internals.ts PAUSE_FIELD), so it is Redis state every node reads and it
 * lives and dies with the job. pauseExecution-5.lua writes it atomically with holding an execution
 * that has not started, without walking the wait list: a delayed or prioritized one is parked in
 * BullMQ's delayed set; one in the wait list stays in its place with a mark in its options, and the
 * worker that pops it parks it instead of running it (worker-pool.ts, dropPopped-6.lua). One that runs
 * is told by a `pause` control message, and its node's run waits at its next ctx.checkpoint or
 * ctx.delay (execution-run.ts). See docs/ARCHITECTURE.md#processes.
 */
import type { Queue } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import { ExecutionFinishedError, ExecutionNotFoundError } from '../errors.js';
import { PARKED_DUE_AT, clearPauseField, moveDelayedStart, pauseField } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';
import { pauseExecution, resumeWaiting } from '../redis/scripts.js';
import type { ExecutionView } from '../types.js';

/** What pause and resume need of the executions (executions.ts passes its own). */
export interface PauseHost {
  readonly redis: RedisConnection;
  readonly keys: Keys;
  /** The BullMQ queue of execution `number`'s queue shard. */
  queueOf(number: number): Queue;
  get(number: number): Promise<ExecutionView>;
  find(number: number): Promise<ExecutionView | undefined>;
  /** Tells every node (the one running it acts). */
  publish(op: 'pause' | 'resume', number: number): Promise<void>;
  /** DELAY PROCESS with 0: ends its ctx.delay, or its delayed start, now. */
  wake(number: number): Promise<ExecutionView>;
}

/**
 * PAUSE PROCESS: one waiting or delayed to start is held until resumed; one running stops at its
 * next ctx.checkpoint or ctx.delay. Pausing a paused execution changes nothing (4D). Throws
 * EXECUTION_NOT_FOUND or EXECUTION_FINISHED.
 */
export async function pause(host: PauseHost, number: number): Promise<ExecutionView> {
  const outcome = await pauseExecution(host.redis, host.keys, number);
  if (outcome === 'missing') {
    throw new ExecutionNotFoundError(number);
  }
  if (outcome === 'finished') {
    throw new ExecutionFinishedError(number, (await host.get(number)).state);
  }
  if (outcome === 'active') {
    await host.publish('pause', number);
  }
  return host.get(number);
}

/**
 * RESUME PROCESS: a paused execution goes on (a parked one goes back to the queue, or to its delayed
 * start's time; a running one's ctx.delay ends now); one that is not paused is woken, as 4D's RESUME
 * PROCESS resumes a delayed process at once. Throws EXECUTION_NOT_FOUND or EXECUTION_FINISHED.
 */
export async function resume(host: PauseHost, number: number): Promise<ExecutionView> {
  const view = await host.get(number);
  if (view.state === 'completed' || view.state === 'failed' || view.state === 'aborted') {
    throw new ExecutionFinishedError(number, view.state);
  }
  let field = await pauseField(host.redis, host.keys, number);
  if (field === 'wait') {
    // Still in the wait list: the mark goes and it runs in its place. Unless a worker popped and
    // parked it meanwhile ("queue"): then it moves back as a parked one does.
    field = await resumeWaiting(host.redis, host.keys, number);
    if (field === 'wait') {
      return (await host.find(number)) ?? view;
    }
  }
  if (field === undefined) {
    return host.wake(number);
  }
  // The job moves first, the mark goes after: a pause that comes in between finds the mark and does
  // nothing, rather than parking a job that this resume then leaves marked.
  if (field === 'run') {
    await host.publish('resume', number);
  } else {
    const dueAt = Number(field);
    const ms = Number.isFinite(dueAt) && dueAt < PARKED_DUE_AT ? Math.max(0, dueAt - Date.now()) : 0;
    await moveDelayedStart(host.queueOf(number), jobIdOf(number), ms);
  }
  await clearPauseField(host.redis, host.keys, number);
  return (await host.find(number)) ?? view;
}

/** Whether execution `number` is paused (its mark; Process state reads it). */
export async function isPaused(redis: RedisConnection, keys: Keys, number: number): Promise<boolean> {
  return (await pauseField(redis, keys, number)) !== undefined;
}

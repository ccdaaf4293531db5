/**
 * PAUSE PROCESS inside one run (no Redis): a paused ExecutionRun holds ctx.checkpoint and ctx.delay
 * until resumed, a ctx.delay it sleeps in no longer ends on time, DELAY PROCESS does not move it, and
 * an abort rejects what waits.
 */
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import { ExecutionRun } from '../../src/procedures/execution-run.js';

function run(): ExecutionRun {
  const r = new ExecutionRun(1, {} as Job, 'token');
  // An abort ends the wait for the procedure: nobody waits for it here.
  r.outcome.catch(() => undefined);
  return r;
}

/** Whether `promise` settled once the timers and callbacks due within `ms` have run. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

describe('PAUSE PROCESS in a run', () => {
  it('holds ctx.checkpoint until resumed; costs one shared promise when not paused', async () => {
    const r = run();
    expect(r.checkpoint()).toBe(r.checkpoint());
    r.pause();
    expect(r.paused).toBe(true);
    const held = r.checkpoint();
    expect(await settledWithin(held, 20)).toBe(false);
    r.resume();
    await expect(held).resolves.toBeUndefined();
    expect(r.paused).toBe(false);
    expect(r.checkpoint()).toBe(r.checkpoint());
  });

  it('holds a ctx.delay it sleeps in past its time, and ends it on resume (4D)', async () => {
    const r = run();
    const sleeping = r.delay(5);
    r.pause();
    expect(await settledWithin(sleeping, 60)).toBe(false);
    // DELAY PROCESS does not move a paused run: the pause holds it.
    r.redelay(1);
    r.wake();
    expect(await settledWithin(sleeping, 30)).toBe(false);
    r.resume();
    await expect(sleeping).resolves.toBeUndefined();
  });

  it('stops a ctx.delay called while paused until resumed, then returns at once', async () => {
    const r = run();
    r.pause();
    const next = r.delay(600_000);
    expect(await settledWithin(next, 20)).toBe(false);
    r.resume();
    await expect(next).resolves.toBeUndefined();
  });

  it('pausing twice takes one resume (no count, as in 4D)', async () => {
    const r = run();
    r.pause();
    r.pause();
    const held = r.checkpoint();
    r.resume();
    await expect(held).resolves.toBeUndefined();
    expect(r.paused).toBe(false);
  });

  it('an abort rejects what waits at the pause', async () => {
    const r = run();
    r.pause();
    const atCheckpoint = r.checkpoint();
    const inDelay = r.delay(10);
    r.abort();
    await expect(atCheckpoint).rejects.toBeInstanceOf(AbortedError);
    await expect(inDelay).rejects.toBeInstanceOf(AbortedError);
    await expect(r.checkpoint()).rejects.toBeInstanceOf(AbortedError);
  });

  it('RESUME PROCESS of a run that is not paused ends its ctx.delay (4D: a delayed process resumes)', async () => {
    const r = run();
    const sleeping = r.delay(600_000);
    r.resume();
    await expect(sleeping).resolves.toBeUndefined();
  });
});

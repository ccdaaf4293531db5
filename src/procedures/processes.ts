/**
 * `ctx.processes`: 4D's commands on other processes, cluster-wide, by execution number (Process
 * number, Process state, Process info, Process activity, DELAY PROCESS, ABORT PROCESS BY ID, PAUSE
 * PROCESS and RESUME PROCESS, the last two in ./pauses.ts). As in 4D,
 * they do nothing on an execution that is missing or finished, and nothing throws for that.
 * See docs/ARCHITECTURE.md#processes.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { ExecutionFinishedError, ExecutionNotFoundError } from '../errors.js';
import type { Keys } from '../redis/keys.js';
import { pauseFlags } from '../redis/scripts.js';
import type { ExecutionView, ProcessDetails, ProcessStateCode, Processes } from '../types.js';
import type { Executions } from './executions.js';
import { isPaused } from './pauses.js';

/** The executions a Process activity lists at most, per state (waiting, delayed, active). */
export const ACTIVITY_LIMIT = 1000;

/** 4D's Process state codes. */
export const PROCESS_STATE = {
  doesNotExist: -100,
  aborted: -1,
  executing: 0,
  delayed: 1,
  waiting: 4,
  paused: 5,
} as const;

/** Marks an execution asleep in ctx.delay (until `until`, ms) or awake, for Process state. */
export async function markSleep(
  redis: RedisConnection,
  keys: Keys,
  number: number,
  until?: number,
): Promise<void> {
  if (until === undefined) {
    await redis.del(keys.sleep(number));
  } else {
    await redis.set(keys.sleep(number), String(until), 'PX', Math.max(1, until - Date.now()) + 1000);
  }
}

/**
 * The 4D state code of an execution as the API shows it (`asleep`: inside ctx.delay now; `paused`:
 * PAUSE PROCESS marked it, which wins over every unfinished state).
 */
export function stateCode(
  view: ExecutionView | undefined,
  asleep: boolean,
  paused = false,
): ProcessStateCode {
  if (paused && (view?.state === 'waiting' || view?.state === 'delayed' || view?.state === 'active')) {
    return PROCESS_STATE.paused;
  }
  switch (view?.state) {
    case undefined:
    case 'completed':
    case 'failed':
      return PROCESS_STATE.doesNotExist;
    case 'aborted':
      return PROCESS_STATE.aborted;
    case 'delayed':
      return PROCESS_STATE.delayed;
    case 'waiting':
      return PROCESS_STATE.waiting;
    case 'active':
      return asleep ? PROCESS_STATE.delayed : PROCESS_STATE.executing;
  }
}

/** `ctx.processes` over the node's executions. */
export class ProcessControl implements Processes {
  constructor(
    private readonly executions: () => Executions,
    private readonly redis: () => RedisConnection,
    private readonly keys: Keys,
  ) {}

  async number(name: string): Promise<number> {
    if (typeof name !== 'string' || name === '') {
      return 0;
    }
    for (const state of ['active', 'delayed', 'waiting'] as const) {
      const page = await this.executions().list({ name, state, limit: 1 });
      const found = page.items[0];
      if (found) {
        return found.number;
      }
    }
    return 0;
  }

  async state(number: number): Promise<ProcessStateCode> {
    const view = await this.view(number);
    return view ? this.details(view, ...(await this.marks(view))).code : PROCESS_STATE.doesNotExist;
  }

  async info(number: number): Promise<ProcessDetails | undefined> {
    const view = await this.view(number);
    return view && this.details(view, ...(await this.marks(view)));
  }

  async activity(): Promise<ProcessDetails[]> {
    const all: ProcessDetails[] = [];
    for (const state of ['active', 'delayed', 'waiting'] as const) {
      const { items } = await this.executions().list({ state, limit: ACTIVITY_LIMIT });
      // Which active ones sleep in ctx.delay: one MGET for the page, not a round trip each.
      const [marks, pauses] = await Promise.all([
        state === 'active' && items.length > 0
          ? this.redis().mget(items.map((view) => this.keys.sleep(view.number)))
          : [],
        // Which are paused: one call for the page too.
        pauseFlags(
          this.redis(),
          this.keys,
          items.map((view) => view.number),
        ),
      ]);
      items.forEach((view, i) => all.push(this.details(view, marks[i] != null, pauses[i] !== '')));
    }
    return all;
  }

  async delay(number: number, ms: number): Promise<void> {
    if (!(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError('ctx.processes.delay(number, ms): ms must be a number of milliseconds, 0 or more.');
    }
    await this.quietly(this.executions().delay(number, ms));
  }

  async abort(number: number): Promise<void> {
    await this.quietly(this.executions().abort(number));
  }

  async pause(number: number): Promise<void> {
    await this.quietly(this.executions().pause(number));
  }

  async resume(number: number): Promise<void> {
    await this.quietly(this.executions().resume(number));
  }

  /** Whether a live execution sleeps in ctx.delay, and whether it is paused. */
  private async marks(view: ExecutionView): Promise<[asleep: boolean, paused: boolean]> {
    if (view.state !== 'active' && view.state !== 'waiting' && view.state !== 'delayed') {
      return [false, false];
    }
    return Promise.all([
      view.state === 'active' && this.asleep(view.number),
      isPaused(this.redis(), this.keys, view.number),
    ]);
  }

  private details(view: ExecutionView, asleep: boolean, paused = false): ProcessDetails {
    const details: ProcessDetails = {
      number: view.number,
      id: view.id,
      name: view.name,
      procedure: view.procedure,
      state: view.state,
      code: stateCode(view, asleep, paused),
      attempt: view.attempt,
    };
    if (view.node !== undefined) {
      details.node = view.node;
    }
    if (view.startedAt !== undefined) {
      details.startedAt = view.startedAt;
    }
    return details;
  }

  private async view(number: number): Promise<ExecutionView | undefined> {
    if (!Number.isSafeInteger(number) || number < 1) {
      return undefined;
    }
    return this.executions().find(number);
  }

  private async asleep(number: number): Promise<boolean> {
    return (await this.redis().exists(this.keys.sleep(number))) === 1;
  }

  /** As in 4D: on a missing or finished execution the command does nothing. */
  private async quietly(call: Promise<unknown>): Promise<void> {
    try {
      await call;
    } catch (err) {
      if (err instanceof ExecutionNotFoundError || err instanceof ExecutionFinishedError) {
        return;
      }
      throw err;
    }
  }
}

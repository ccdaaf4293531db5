/**
 * Signals (4D's New signal): one-shot flags kept in Redis, one hash each, that any execution on any
 * node opens by id, waits on and triggers (docs/ARCHITECTURE.md#signals-and-semaphores).
 *
 * A trigger is one script (signalTrigger-1.lua): set when not yet set, then PUBLISH on the
 * deployment's one signal channel. Each node hears the channel on its subscriber connection and
 * wakes its own waiters, kept here in a map by signal id; no waiter has a connection of its own. A
 * message missed while the subscriber reconnects is made up for by {@link Signals.recheck}, which the
 * node calls once the subscriber is back, and by the re-read a wait makes at its time-out.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../redis/redis-connection.js';
import { SignalNotFoundError } from '../errors.js';
import type { Keys } from '../redis/keys.js';
import { signalNew, signalRead, signalTrigger, type SignalState } from '../redis/scripts.js';
import type { JsonValue, Signal } from '../types.js';
import { assertJson } from './json.js';

/** How long a signal lives when nobody uses it (a wait or an open makes it live this long again). */
export const SIGNAL_UNUSED_TTL_MS = 24 * 60 * 60_000;
/** How long a signal lives once triggered (late openers still read its result meanwhile). */
export const SIGNAL_TRIGGERED_TTL_MS = 10 * 60_000;

const SIGNAL_ID = /^[A-Za-z0-9-]{1,100}$/;
/** The longest delay setTimeout keeps (2^31 - 1 ms); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The signals of one node: its waiters, and the Redis side. */
export class Signals {
  private readonly waiters = new Map<string, Set<SignalWait>>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
  ) {}

  /** Waits pending on this node. */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) {
      n += set.size;
    }
    return n;
  }

  /** New signal: a fresh one in Redis, not signaled. */
  async create(description: unknown, owner: SignalOwner): Promise<Signal> {
    if (description !== undefined && typeof description !== 'string') {
      throw new TypeError('ctx.newSignal takes an optional description string.');
    }
    const id = randomUUID();
    await signalNew(this.redis, this.keys, id, description ?? '', SIGNAL_UNUSED_TTL_MS);
    return new SignalHandle(this, owner, id, description ?? '');
  }

  /** Opens signal `id`; SignalNotFoundError when there is none. */
  async open(id: unknown, owner: SignalOwner): Promise<Signal> {
    const state = typeof id === 'string' && SIGNAL_ID.test(id) ? await this.read(id) : undefined;
    if (!state) {
      throw new SignalNotFoundError(String(id));
    }
    const handle = new SignalHandle(this, owner, id as string, state.description);
    if (state.signaled) {
      handle.learn(JSON.parse(state.result) as JsonValue);
    }
    return handle;
  }

  /** Signal `id` as the API shows it (`GET /v1/signals/:id`); SignalNotFoundError when there is none. */
  async state(
    id: string,
  ): Promise<{ id: string; description: string; signaled: boolean; result?: JsonValue }> {
    const state = SIGNAL_ID.test(id) ? await this.read(id) : undefined;
    if (!state) {
      throw new SignalNotFoundError(id);
    }
    const view: { id: string; description: string; signaled: boolean; result?: JsonValue } = {
      id,
      description: state.description,
      signaled: state.signaled,
    };
    if (state.signaled) {
      view.result = JSON.parse(state.result) as JsonValue;
    }
    return view;
  }

  /**
   * Triggers signal `id` from outside any execution (`POST /v1/signals/:id/trigger`): whether this was
   * the first trigger (the first one's result stays); SignalNotFoundError when there is none.
   */
  async triggerFromOutside(id: string, result: JsonValue): Promise<boolean> {
    assertJson(result, 'signal result');
    if (!SIGNAL_ID.test(id)) {
      throw new SignalNotFoundError(id);
    }
    const reply = await this.trigger(id, JSON.stringify(result));
    if (reply.outcome === 'missing') {
      throw new SignalNotFoundError(id);
    }
    return reply.outcome === 'first';
  }

  /** A message of the signal channel: `<id>\n<result JSON>`. */
  onMessage(payload: string): void {
    const cut = payload.indexOf('\n');
    const id = cut < 0 ? payload : payload.slice(0, cut);
    if (this.waiters.has(id)) {
      this.deliver(id, JSON.parse(cut < 0 ? 'null' : payload.slice(cut + 1)) as JsonValue);
    }
  }

  /** After the subscriber (re)connected: reads every waited signal, so a missed message loses nothing. */
  async recheck(): Promise<void> {
    await Promise.all(
      [...this.waiters.keys()].map(async (id) => {
        const state = await this.read(id).catch(() => undefined);
        if (state?.signaled) {
          this.deliver(id, JSON.parse(state.result) as JsonValue);
        }
      }),
    );
  }

  /** @internal */
  read(id: string): Promise<SignalState | undefined> {
    return signalRead(this.redis, this.keys, id, SIGNAL_UNUSED_TTL_MS);
  }

  /** @internal */
  trigger(id: string, json: string): ReturnType<typeof signalTrigger> {
    return signalTrigger(this.redis, this.keys, id, json, SIGNAL_TRIGGERED_TTL_MS);
  }

  /** @internal */
  add(wait: SignalWait): void {
    let set = this.waiters.get(wait.handle.id);
    if (!set) {
      set = new Set();
      this.waiters.set(wait.handle.id, set);
    }
    set.add(wait);
  }

  /** @internal */
  remove(wait: SignalWait): void {
    const set = this.waiters.get(wait.handle.id);
    if (set?.delete(wait) && set.size === 0) {
      this.waiters.delete(wait.handle.id);
    }
  }

  private deliver(id: string, result: JsonValue): void {
    const set = this.waiters.get(id);
    if (!set) {
      return;
    }
    this.waiters.delete(id);
    for (const wait of set) {
      wait.handle.learn(result);
      wait.settle(true);
    }
  }
}

/** Who uses a signal: its execution's AbortSignal, and where its pending waits are noted. */
export interface SignalOwner {
  readonly abort: AbortSignal;
  /** Notes a pending wait, so that the execution's end can drop it. */
  note(wait: { end(): void }, on: boolean): void;
  /** Throws when the owner may change nothing any more (an aborted execution may not trigger). */
  check?(): void;
}

/** A signal as an execution holds it. */
class SignalHandle implements Signal {
  signaled = false;
  result: JsonValue | undefined;

  constructor(
    private readonly service: Signals,
    private readonly owner: SignalOwner,
    readonly id: string,
    readonly description: string,
  ) {}

  /** @internal It is known to be triggered with `result`. */
  learn(result: JsonValue): void {
    if (!this.signaled) {
      this.signaled = true;
      this.result = result;
    }
  }

  wait(timeoutMs?: number): Promise<boolean> {
    if (this.signaled) {
      return Promise.resolve(true);
    }
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      return Promise.reject(new TypeError('signal.wait takes an optional time-out in ms (a number >= 0).'));
    }
    const abort = this.owner.abort;
    if (abort.aborted) {
      return Promise.reject(abort.reason as Error);
    }
    return new Promise<boolean>((resolve, reject) => {
      new SignalWait(this.service, this.owner, this, resolve, reject).begin(timeoutMs);
    });
  }

  async trigger(result: JsonValue = null): Promise<boolean> {
    this.owner.check?.();
    assertJson(result, 'signal result');
    const reply = await this.service.trigger(this.id, JSON.stringify(result));
    if (reply.outcome === 'missing') {
      throw new SignalNotFoundError(this.id);
    }
    this.learn(JSON.parse(reply.result) as JsonValue);
    return reply.outcome === 'first';
  }
}

/** One pending wait: registered first, then the hash is read, so no trigger falls in between. */
class SignalWait {
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly onAbort = (): void => this.settle(this.owner.abort.reason as Error);

  constructor(
    private readonly service: Signals,
    private readonly owner: SignalOwner,
    readonly handle: SignalHandle,
    private readonly resolve: (v: boolean) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  begin(timeoutMs: number | undefined): void {
    this.service.add(this);
    this.owner.note(this, true);
    this.owner.abort.addEventListener('abort', this.onAbort, { once: true });
    // Longer than a timer can count (about 24.8 days) is as good as none.
    if (timeoutMs !== undefined && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS) {
      this.timer = setTimeout(() => void this.check(true), timeoutMs);
    }
    void this.check(timeoutMs === 0);
  }

  /** The execution ended with this wait pending: it answers false, and is dropped. */
  end(): void {
    this.settle(false);
  }

  /** Reads the hash: triggered → true; gone → SignalNotFoundError; else false when `last`. */
  private async check(last: boolean): Promise<void> {
    let state: SignalState | undefined;
    try {
      state = await this.service.read(this.handle.id);
    } catch (err) {
      this.settle(err as Error);
      return;
    }
    if (!state) {
      this.settle(new SignalNotFoundError(this.handle.id));
    } else if (state.signaled) {
      this.handle.learn(JSON.parse(state.result) as JsonValue);
      this.settle(true);
    } else if (last) {
      this.settle(false);
    }
  }

  settle(outcome: boolean | Error): void {
    if (this.done) {
      return;
    }
    this.done = true;
    clearTimeout(this.timer);
    this.service.remove(this);
    this.owner.note(this, false);
    this.owner.abort.removeEventListener('abort', this.onAbort);
    if (typeof outcome === 'boolean') {
      this.resolve(outcome);
    } else {
      this.reject(outcome);
    }
  }
}

/**
 * Semaphores (4D's Semaphore, Test semaphore, CLEAR SEMAPHORE), cluster-wide: a semaphore is one
 * Redis string holding its holder's value, with a lease the holder's node renews every lease/3
 * (docs/ARCHITECTURE.md#signals-and-semaphores). It is freed by CLEAR SEMAPHORE, when its execution
 * ends however it ends, or by its lease when its node dies.
 *
 * A waiter is woken by the release message (semaphoreClear-1.lua publishes the name on the
 * deployment's semaphore channel, heard by the node's subscriber), by a timer set for when the
 * holder's lease ends (a dead holder sends nothing), and after a reconnect of the subscriber; each
 * time it tries to take the semaphore again.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { Keys } from '../redis/keys.js';
import { semaphoreClear, semaphoreRenew, semaphoreTake } from '../redis/scripts.js';
import { assertSemaphoreName } from './names.js';

/** Woken when the semaphore it waits for may be free. */
type Wake = () => void;

/** The semaphores of one node: those its executions hold (their leases), and its waiters. */
export class Semaphores {
  /** Held here: name → the holder's value. */
  private readonly held = new Map<string, string>();
  private readonly waiters = new Map<string, Set<Wake>>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    /** The lease of a held semaphore (SPROCD_LOCK_LEASE_MS). */
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {}

  /** Starts renewing held semaphores every lease/3. */
  start(): void {
    const every = Math.max(Math.floor(this.leaseMs / 3), 10);
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  /** Stops renewing: what is still held expires with its lease. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Semaphores held on this node now. */
  get heldCount(): number {
    return this.held.size;
  }

  /** One holder per execution. */
  holder(node: string, execution: number, abort: AbortSignal): SemaphoreHolder {
    return new SemaphoreHolder(this, `${node}:${execution}:${randomUUID()}`, abort);
  }

  /** Test semaphore: whether someone holds `name`. */
  async test(name: unknown): Promise<boolean> {
    assertSemaphoreName(name);
    return (await this.redis.exists(this.keys.semaphore(name))) === 1;
  }

  /** A message of the semaphore channel: `name` was cleared. */
  onMessage(name: string): void {
    this.waiters.get(name)?.forEach((wake) => wake());
  }

  /** After the subscriber (re)connected: every waiter tries again. */
  recheck(): void {
    for (const set of this.waiters.values()) {
      set.forEach((wake) => wake());
    }
  }

  /** @internal Tries to take `name` for `value`: 0 when taken, else the holder's remaining lease. */
  async tryTake(name: string, value: string): Promise<number> {
    const pttl = await semaphoreTake(this.redis, this.keys, name, value, this.leaseMs);
    if (pttl === 0) {
      this.held.set(name, value);
    }
    return pttl;
  }

  /** @internal Frees `name` if `value` holds it. */
  async clear(name: string, value: string): Promise<void> {
    if (this.held.get(name) === value) {
      // Renewed no more, whatever Redis answers: at worst it expires with its lease.
      this.held.delete(name);
    }
    await semaphoreClear(this.redis, this.keys, name, value);
  }

  /** @internal */
  listen(name: string, wake: Wake, on: boolean): void {
    let set = this.waiters.get(name);
    if (on) {
      if (!set) {
        set = new Set();
        this.waiters.set(name, set);
      }
      set.add(wake);
    } else if (set?.delete(wake) && set.size === 0) {
      this.waiters.delete(name);
    }
  }

  private async renew(): Promise<void> {
    if (this.busy || this.held.size === 0) {
      return;
    }
    this.busy = true;
    const held = [...this.held].map(([name, value]) => ({ name, value }));
    try {
      const lost = await semaphoreRenew(this.redis, this.keys, this.leaseMs, held);
      for (const i of lost) {
        const h = held[i];
        if (h && this.held.get(h.name) === h.value) {
          this.held.delete(h.name);
          this.logger.warn(
            { semaphore: h.name },
            'semaphore: its lease ran out before it was renewed; another execution may hold it now',
          );
        }
      }
    } catch (err) {
      this.logger.warn({ err }, 'semaphore: renewal failed; held semaphores expire unless it recovers');
    } finally {
      this.busy = false;
    }
  }
}

/** The semaphores of one execution. */
export class SemaphoreHolder {
  private readonly mine = new Set<string>();
  private ended = false;

  constructor(
    private readonly service: Semaphores,
    private readonly value: string,
    private readonly abort: AbortSignal,
  ) {}

  /**
   * Semaphore: false when this execution now holds `name`; true when it could not take it within
   * `waitMs` (or at once without it). An execution that holds it already gets true at once.
   */
  async take(name: unknown, waitMs = 0): Promise<boolean> {
    assertSemaphoreName(name);
    if (!(typeof waitMs === 'number' && waitMs >= 0)) {
      throw new TypeError('ctx.semaphore takes an optional wait in ms (a number >= 0).');
    }
    if (this.mine.has(name)) {
      return true;
    }
    if (this.abort.aborted) {
      throw this.abort.reason;
    }
    let pttl = await this.service.tryTake(name, this.value);
    if (pttl !== 0 && waitMs > 0) {
      pttl = await this.waitFor(name, Date.now() + waitMs);
    }
    if (pttl === 0 && this.ended) {
      // The execution ended while this take was on its way: nobody would ever clear it.
      await this.service.clear(name, this.value);
      return true;
    }
    if (pttl === 0) {
      this.mine.add(name);
      return false;
    }
    return true;
  }

  /** CLEAR SEMAPHORE: frees `name` when this execution holds it; nothing otherwise. */
  async clear(name: unknown): Promise<void> {
    assertSemaphoreName(name);
    if (this.mine.delete(name)) {
      await this.service.clear(name, this.value);
    }
  }

  /** The execution ended: frees everything it still holds. */
  async releaseAll(): Promise<void> {
    this.ended = true;
    const names = [...this.mine];
    this.mine.clear();
    await Promise.all(names.map((name) => this.service.clear(name, this.value)));
  }

  /** Tries again on each wake (a release, the holder's lease end, a reconnect) until `deadline`. */
  private async waitFor(name: string, deadline: number): Promise<number> {
    let wake: Wake = () => undefined;
    let woken = false;
    const listener: Wake = () => {
      woken = true;
      wake();
    };
    this.service.listen(name, listener, true);
    try {
      for (;;) {
        woken = false;
        // Listening before this try: a release between the try and the sleep is not missed.
        const pttl = await this.service.tryTake(name, this.value);
        const left = deadline - Date.now();
        if (pttl === 0 || left <= 0) {
          return pttl;
        }
        if (!woken) {
          // A timer counts up to 2^31 - 1 ms; a longer wait sleeps again.
          await this.sleep(Math.min(left, pttl + 2, 2 ** 31 - 1), (w) => (wake = w));
        }
      }
    } finally {
      this.service.listen(name, listener, false);
    }
  }

  private sleep(ms: number, onWake: (wake: Wake) => void): Promise<void> {
    const abort = this.abort;
    if (abort.aborted) {
      return Promise.reject(abort.reason as Error);
    }
    return new Promise<void>((resolve, reject) => {
      const done = (err?: unknown): void => {
        clearTimeout(timer);
        abort.removeEventListener('abort', onAbort);
        onWake(() => undefined);
        if (err === undefined) {
          resolve();
        } else {
          reject(err);
        }
      };
      const onAbort = (): void => done(abort.reason);
      const timer = setTimeout(done, ms);
      abort.addEventListener('abort', onAbort, { once: true });
      onWake(() => done());
    });
  }
}

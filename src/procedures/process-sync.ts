/**
 * What executions use to wait for one another (4D's signals and semaphores) on one node: the node's
 * {@link Signals} and {@link Semaphores}, the two pub/sub channels its subscriber listens to for
 * them, and the per-execution part each `ctx` makes on first use (./execution-run.ts).
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { Keys } from '../redis/keys.js';
import type { Signal } from '../types.js';
import { Semaphores, type SemaphoreHolder } from './semaphores.js';
import { Signals, type SignalOwner } from './signals.js';

/** The signals and semaphores of one node. */
export class ProcessSync {
  readonly signals: Signals;
  readonly semaphores: Semaphores;

  constructor(
    redis: RedisConnection,
    private readonly keys: Keys,
    leaseMs: number,
    logger: Logger,
  ) {
    this.signals = new Signals(redis, keys);
    this.semaphores = new Semaphores(redis, keys, leaseMs, logger);
  }

  /** The channels the node's subscriber listens to for this. */
  get channels(): string[] {
    return [this.keys.signalChannel, this.keys.semaphoreChannel];
  }

  /** A message on one of {@link channels}; false when `channel` is not one of them. */
  onMessage(channel: string, payload: string): boolean {
    if (channel === this.keys.signalChannel) {
      this.signals.onMessage(payload);
      return true;
    }
    if (channel === this.keys.semaphoreChannel) {
      this.semaphores.onMessage(payload);
      return true;
    }
    return false;
  }

  /** The subscriber is (back) on its channels: whatever was published meanwhile is read again. */
  async recheck(): Promise<void> {
    this.semaphores.recheck();
    await this.signals.recheck();
  }

  start(): void {
    this.semaphores.start();
  }

  stop(): void {
    this.semaphores.stop();
  }
}

/** The signal waits and semaphores of one execution; {@link end} when it ends, however it ends. */
export class ExecutionSync implements SignalOwner {
  private readonly waits = new Set<{ end(): void }>();
  private holder: SemaphoreHolder | undefined;

  constructor(
    private readonly sync: ProcessSync,
    private readonly node: string,
    private readonly execution: number,
    readonly abort: AbortSignal,
    /** Throws once the execution may change nothing (aborted): then it triggers no signal. */
    private readonly refuse?: () => void,
  ) {}

  check(): void {
    this.refuse?.();
  }

  note(wait: { end(): void }, on: boolean): void {
    if (on) {
      this.waits.add(wait);
    } else {
      this.waits.delete(wait);
    }
  }

  newSignal(description?: string): Promise<Signal> {
    return this.sync.signals.create(description, this);
  }

  openSignal(id: string): Promise<Signal> {
    return this.sync.signals.open(id, this);
  }

  get semaphores(): SemaphoreHolder {
    return (this.holder ??= this.sync.semaphores.holder(this.node, this.execution, this.abort));
  }

  testSemaphore(name: string): Promise<boolean> {
    return this.sync.semaphores.test(name);
  }

  /** The execution ended: its pending waits answer false, its semaphores are freed. */
  async end(): Promise<void> {
    for (const wait of [...this.waits]) {
      wait.end();
    }
    await this.holder?.releaseAll();
  }
}

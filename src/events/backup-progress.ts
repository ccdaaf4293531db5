/**
 * What a running backup tells GET /v1/events: `backup.started`, `backup.progress` (by phase: the
 * startup hook, the snapshot, the writing of the file) and `backup.finished` with its record.
 * Progress is sent at most every {@link PROGRESS_INTERVAL_MS}, so a large backup adds a few log
 * entries a second, not one per line.
 */

/** Where the events go (the node's event log). */
export type PublishEvent = (type: string, data: Record<string, unknown>) => void;

/** The phases of a backup, in order. */
export type BackupPhase = 'hook' | 'snapshot' | 'write';

/** Shortest time between two progress events of one phase. */
export const PROGRESS_INTERVAL_MS = 250;

/** The events of one backup run. */
export class BackupProgress {
  private phase: BackupPhase | undefined;
  private lastSent = 0;

  constructor(
    private readonly publish: PublishEvent | undefined,
    private readonly backup: { number: number; node: string },
  ) {}

  /** The backup took the lock and begins. */
  started(details: { trigger: string; startedAt: string }): void {
    this.publish?.('backup.started', { ...this.backup, ...details });
  }

  /** `done` of `total` (0: unknown) in `phase`; sent at once when the phase changes, else throttled. */
  report(phase: BackupPhase, done = 0, total = 0, force = false): void {
    const now = Date.now();
    if (!force && phase === this.phase && now - this.lastSent < PROGRESS_INTERVAL_MS) {
      return;
    }
    this.phase = phase;
    this.lastSent = now;
    this.publish?.('backup.progress', {
      ...this.backup,
      phase,
      done,
      total: Math.max(total, done),
      at: new Date(now).toISOString(),
    });
  }

  /** The backup ended (done, cancelled, failed or skipped) with `record`. */
  finished(record: object): void {
    this.publish?.('backup.finished', { ...record });
  }

  /**
   * Passes `chunks` through, reporting the `write` phase as they go: `done()` counts what was
   * written so far, `total` what there is to write.
   */
  async *track<T>(chunks: AsyncIterable<T>, done: () => number, total: number): AsyncGenerator<T> {
    this.report('write', 0, total, true);
    for await (const chunk of chunks) {
      yield chunk;
      this.report('write', done(), total);
    }
    this.report('write', done(), done(), true);
  }
}

/**
 * What a running restore tells GET /v1/events: `restore.started`, `restore.progress` by phase (the
 * check of the upload, the staging of its storage entries, the queueing of its executions) and
 * `restore.finished` with its summary or its refusal. Throttled like a backup's progress
 * (./backup-progress.ts), so a restore of a million executions adds a few log entries a second.
 */
import { PROGRESS_INTERVAL_MS, type PublishEvent } from './backup-progress.js';

/**
 * The phases of a restore, in order: `check` reads the whole upload (done: lines read, total
 * unknown until its trailer), `stage` reads it again and stages the entries (done: lines, total:
 * lines in the file), `queue` puts the executions back (done: executions handled, total: those in
 * the file).
 */
export type RestorePhase = 'check' | 'stage' | 'queue';

/** The events of one restore. */
export class RestoreProgress {
  private phase: RestorePhase | undefined;
  private lastSent = 0;

  constructor(
    private readonly publish: PublishEvent | undefined,
    private readonly node: string,
  ) {}

  /** The restore holds the backup lock and begins reading the upload. */
  started(startedAt: string): void {
    this.publish?.('restore.started', { node: this.node, startedAt });
  }

  /** `done` of `total` (0: unknown) in `phase`; sent at once when the phase changes, else throttled. */
  report(phase: RestorePhase, done: number, total = 0, force = false): void {
    const now = Date.now();
    if (!force && phase === this.phase && now - this.lastSent < PROGRESS_INTERVAL_MS) {
      return;
    }
    this.phase = phase;
    this.lastSent = now;
    this.publish?.('restore.progress', {
      node: this.node,
      phase,
      done,
      total: total === 0 ? 0 : Math.max(total, done),
      at: new Date(now).toISOString(),
    });
  }

  /** The restore ended: its summary, or the code and message of its refusal or failure. */
  finished(
    result: { summary: object } | { error: { code: string; message: string } },
    durationMs: number,
  ): void {
    this.publish?.('restore.finished', { node: this.node, durationMs, ...result });
  }
}

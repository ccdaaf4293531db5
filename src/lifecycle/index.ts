/**
 * The scheduled side of the lifecycle: backups (with onBackupStartup / onBackupShutdown), restore,
 * and cron schedules that fire once per tick in the whole cluster. Started by the node after its
 * workers, stopped before them. The node hands it a {@link LifecycleHost}: the lifecycle sees
 * nothing else of the node (docs/ARCHITECTURE.md#backups-and-restore).
 */
import type { Queue } from 'bullmq';
import { AutomaticBackupPolicy } from './automatic-backups.js';
import { BackupService, type BackupHost } from './backup.js';
import { restoreBackup, type RestoreRequest, type RestoreSummary } from './restore.js';
import { Schedules, type ScheduleHost } from './schedule.js';

export { BACKUP_STATUS, type BackupTrigger } from './backup-status.js';
export type { BackupRecord } from './backup-history.js';
export type { BackupHookContext } from './backup.js';
export type { RestoreRequest, RestoreSummary } from './restore.js';

/** What the lifecycle needs of the node's executions (the node's Executions fits as it is). */
interface LifecycleExecutions {
  /** Queues an execution: a scheduled procedure's tick. */
  execute(
    procedure: string,
    params: unknown,
    options: { name: string },
  ): Promise<{ execution: { number: number } }>;
  /** The procedures queue of execution `number`'s shard: a restore queues the backed-up executions again. */
  queueOf(number: number): Queue;
  /** Makes every node forget the execution numbers it reserved (after a restore raised the counter). */
  forgetNumbersEverywhere(): Promise<void>;
}

/**
 * What the lifecycle (backups, restore, schedules) needs of its node; node.ts builds one. The
 * union of what the backups ({@link BackupHost}) and the schedules ({@link ScheduleHost}) declare,
 * with the executions a restore puts back.
 */
export interface LifecycleHost extends BackupHost, ScheduleHost {
  readonly settings: BackupHost['settings'] & ScheduleHost['settings'];
  readonly executions: LifecycleExecutions;
}

/** What the node holds of the lifecycle services. */
export interface LifecycleServices {
  /** Backups: run one, read the history. */
  readonly backups: BackupService;
  /** The lifecycle queue, its worker and the schedulers. */
  readonly schedules: Schedules;
  /** Checks and restores the backup file the request streams (no backup hooks run). */
  restore(request: RestoreRequest): Promise<RestoreSummary>;
  /** Stops schedules and interrupts a running backup (it ends with status 1406). */
  close(): Promise<void>;
}

/**
 * Starts the lifecycle services on `host`: clears a stop of automatic backups (a node restart
 * resumes them), sets up the schedulers and starts the lifecycle worker.
 */
export async function startLifecycle(host: LifecycleHost): Promise<LifecycleServices> {
  const policy = new AutomaticBackupPolicy(host);
  const backups = new BackupService(host, policy);
  if (!backups.key) {
    host.log.warn(
      'SPROCD_BACKUP_KEY is not set: backups are written unsigned, and a restore needs the explicit allowUnsigned override',
    );
  }
  const schedules = new Schedules(host, backups, policy);
  try {
    await policy.resume();
    await schedules.start();
  } catch (err) {
    await schedules.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    backups,
    schedules,
    restore: async (request) => {
      const summary = await restoreBackup(backups, (n) => host.executions.queueOf(n), request);
      // Numbers this cluster's nodes reserved may now belong to restored executions.
      await host.executions.forgetNumbersEverywhere();
      return summary;
    },
    close() {
      // The worker stops taking ticks, the running backup is interrupted (1406), then all closes.
      closing ??= schedules.close().finally(() => backups.close());
      return closing;
    },
  };
}

/**
 * The scheduled side of the lifecycle: backups (with onBackupStartup / onBackupShutdown), restore,
 * and cron schedules that fire once per tick in the whole cluster. Started by the node after its
 * workers, stopped before them.
 */
import type { SprocdNode } from '../node.js';
import { NotReadyError } from '../errors.js';
import { BackupService } from './backup.js';
import { restoreBackup, type RestoreSummary } from './restore.js';
import { Schedules, procedureSchedules, type ProcedureSchedule } from './schedule.js';

export { BACKUP_STATUS, type BackupRecord, type BackupHookContext, type BackupTrigger } from './backup.js';
export type { RestoreSummary } from './restore.js';

/** What the node holds of the lifecycle services. */
export interface LifecycleServices {
  /** Backups: run one, read the history. */
  readonly backups: BackupService;
  /** The lifecycle queue, its worker and the schedulers. */
  readonly schedules: Schedules;
  /** Checks and restores a backup file's bytes (no backup hooks run). */
  restore(bytes: Buffer): Promise<RestoreSummary>;
  /** Stops schedules and interrupts a running backup (it ends with status 1406). */
  close(): Promise<void>;
}

/**
 * Starts the lifecycle services of `node`: clears a stop of automatic backups (a node restart
 * resumes them), sets up the schedulers and starts the lifecycle worker. A bad procedure
 * `schedule` throws ModuleLoadError naming its file, which stops the start.
 */
export async function startLifecycle(node: SprocdNode): Promise<LifecycleServices> {
  // The node checked these right after loading jobs/ (a bad one stopped the start there).
  const procedures: Map<string, ProcedureSchedule> = procedureSchedules(node.registry);
  const backups = new BackupService(node);
  const schedules = new Schedules(node, backups, () => node.open('worker'));
  try {
    await backups.start();
    await schedules.start(procedures);
  } catch (err) {
    await schedules.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    backups,
    schedules,
    restore: (bytes) => {
      const executions = node.executions;
      if (!executions) {
        throw new NotReadyError();
      }
      return restoreBackup(backups, executions.queue, bytes).then(async (summary) => {
        // Numbers this cluster's nodes reserved may now belong to restored executions.
        await executions.forgetNumbersEverywhere();
        return summary;
      });
    },
    close() {
      // The worker stops taking ticks, the running backup is interrupted (1406), then all closes.
      closing ??= schedules.close().finally(() => backups.close());
      return closing;
    },
  };
}

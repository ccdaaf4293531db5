/**
 * The scheduled side of the lifecycle: backups (with onBackupStartup / onBackupShutdown), restore,
 * and cron schedules that fire once per tick in the whole cluster. Started by the node after its
 * workers, stopped before them.
 */
import type { SprocdNode } from '../node.js';
import { NotReadyError } from '../errors.js';
import { AutomaticBackupPolicy } from './automatic-backups.js';
import { BackupService, type BackupHost } from './backup.js';
import { checkProcedureSchedules } from './procedure-schedules.js';
import { restoreBackup, type RestoreSummary } from './restore.js';
import { Schedules, type ScheduleHost } from './schedule.js';

export { BACKUP_STATUS, type BackupTrigger } from './backup-status.js';
export type { BackupRecord } from './backup-history.js';
export type { BackupHookContext } from './backup.js';
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
  const executions = node.executions;
  if (!executions) {
    throw new NotReadyError();
  }
  const host: BackupHost & ScheduleHost = {
    name: node.name,
    settings: node.settings,
    keys: node.keys,
    redis: node.redis,
    log: node.log,
    runHook: (name, log, extra, ...args) =>
      node.hooks.run(name, log, (l) => ({ ...node.hookContext(l), ...extra }), ...args),
    emitSystemEvent: (event) => node.emitSystemEvent(event),
    openWorkerConnection: () => node.open('worker'),
    procedureSchedules: () => checkProcedureSchedules(node.registry),
    hasProcedure: (name) => node.registry.get(name) !== undefined,
    executions,
  };
  const policy = new AutomaticBackupPolicy(host);
  const backups = new BackupService(host, policy);
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
    restore: (bytes) =>
      restoreBackup(backups, executions.queue, bytes).then(async (summary) => {
        // Numbers this cluster's nodes reserved may now belong to restored executions.
        await executions.forgetNumbersEverywhere();
        return summary;
      }),
    close() {
      // The worker stops taking ticks, the running backup is interrupted (1406), then all closes.
      closing ??= schedules.close().finally(() => backups.close());
      return closing;
    },
  };
}

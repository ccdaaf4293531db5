/**
 * Schedules: the backup cron (SPROCD_BACKUP_CRON) and the `schedule` of procedures, as BullMQ job
 * schedulers with stable ids on a second queue, "lifecycle", that every node works with one Worker
 * (concurrency 1). BullMQ keeps exactly one pending job per scheduler and creates the next when a
 * worker takes the current one, so a tick goes to one node; on top of that each tick is claimed
 * with SET NX before it runs, so a job delivered twice (a node killed mid-tick) never fires twice.
 * BullMQ computes the ticks with the cron-parser it bundles, the very version the settings and the
 * procedures' schedules are checked with when a node starts (package.json pins both alike).
 *
 * A node started with SPROCD_BACKUP_CRON sets the cluster's schedule when it differs from the
 * stored one (an identical one is left alone: re-upserting would replace the pending tick), `off`
 * removes it, unset leaves it as it is. What a backup tick does (missed ticks, retries, the stop
 * after too many failures) is the automatic-backup policy's (automatic-backups.ts).
 * See docs/ARCHITECTURE.md#schedules.
 */
import { Job, Queue, WaitingError, Worker } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { describeError } from '../errors.js';
import { parseSchedulerJobId, schedulerJobId } from '../redis/bullmq-internals.js';
import type { Keys } from '../redis/keys.js';
import { settleWithin } from '../redis/connections.js';
import type { AutomaticBackupPolicy, BackupRetry, PolicyActions } from './automatic-backups.js';
import type { BackupService } from './backup.js';
import { liveNodes } from './heartbeat.js';
import type { ProcedureSchedule } from './procedure-schedules.js';

/** The BullMQ queue of schedule ticks and backup retries (keys `{prefix}:lifecycle:*`). */
const LIFECYCLE_QUEUE = 'lifecycle';
/** Scheduler id of the backup cron. */
const BACKUP_SCHEDULER = 'backup';
/**
 * Scheduler id prefix of procedure schedules: `procedure@<name>`. No ":" in scheduler ids: BullMQ
 * reads ids with colons as legacy repeatable-job keys in places.
 */
const PROCEDURE_SCHEDULER_PREFIX = 'procedure@';
/**
 * Tick claims live this long: far beyond BullMQ's redelivery of a job whose node died (a lease or
 * two), and short enough that a one-second cron keeps at most 3,600 of them.
 */
const TICK_CLAIM_TTL_MS = 3600 * 1000;
/** Finished lifecycle jobs kept (a finished tick's job also blocks a second job for that tick). */
const KEEP_FINISHED = { age: 24 * 3600, count: 1000 };

/** What a lifecycle job carries. */
type LifecycleJobData =
  | { kind: 'backup' }
  | { kind: 'procedure'; procedure: string; params?: unknown }
  | ({ kind: 'backup-retry' } & BackupRetry);

/** What the schedules need of their node. */
export interface ScheduleHost {
  readonly name: string;
  readonly keys: Keys;
  readonly redis: RedisConnection;
  readonly log: Logger;
  readonly settings: Pick<
    Settings,
    | 'backupCron'
    | 'backupTimezone'
    | 'executionLeaseMs'
    | 'maxRecoveries'
    | 'redisTimeoutMs'
    | 'nodeTimeoutMs'
  >;
  /** A new connection for the lifecycle worker's blocking commands; the node closes it. */
  openWorkerConnection(): RedisConnection;
  /** The procedures' schedules, as checked when jobs/ last loaded. */
  procedureSchedules(): ReadonlyMap<string, ProcedureSchedule>;
  /** Whether this node has procedure `name` loaded now. */
  hasProcedure(name: string): boolean;
  /** The executions: a scheduled procedure's tick queues one. */
  readonly executions: {
    execute(
      procedure: string,
      params: unknown,
      options: { name: string },
    ): Promise<{ execution: { number: number } }>;
  };
}

/** The schedules of one node: the lifecycle queue, its worker, and the set-up of the schedulers. */
export class Schedules {
  /** The lifecycle queue (its job schedulers are the cluster's schedules). */
  readonly queue: Queue<LifecycleJobData>;
  private worker: Worker<LifecycleJobData> | undefined;
  private stopping = false;
  private readonly actions: PolicyActions;

  constructor(
    private readonly host: ScheduleHost,
    private readonly backups: BackupService,
    private readonly policy: AutomaticBackupPolicy,
  ) {
    this.queue = new Queue<LifecycleJobData>(LIFECYCLE_QUEUE, {
      connection: host.redis,
      prefix: host.keys.bullPrefix,
    });
    this.queue.on('error', () => undefined);
    this.actions = {
      run: (trigger, options) => this.backups.run(trigger, options),
      queueRetry: (retry, delayMs) => this.queueRetry(retry, delayMs),
    };
  }

  /** Sets up the schedulers, then starts the worker. */
  async start(): Promise<void> {
    // Let BullMQ finish its connection set-up first: closing a queue in the middle of it leaves a
    // rejected command behind.
    await this.queue.waitUntilReady();
    await this.sync();
    const s = this.host.settings;
    this.worker = new Worker<LifecycleJobData>(LIFECYCLE_QUEUE, (job, token) => this.process(job, token), {
      connection: this.host.openWorkerConnection(),
      prefix: this.host.keys.bullPrefix,
      concurrency: 1,
      name: this.host.name,
      // BullMQ schedules a scheduler's next tick just after a worker takes the current one. A node
      // killed in between leaves the tick active and the schedule without a next one until the tick's
      // lease runs out: keep that lease as short as the executions' (SPROCD_EXECUTION_LEASE_MS).
      lockDuration: s.executionLeaseMs,
      stalledInterval: s.executionLeaseMs,
      maxStalledCount: s.maxRecoveries,
    });
    this.worker.on('error', (err) => this.host.log.debug({ err }, 'lifecycle worker connection error'));
    // As for the queue: a worker closed while its connections are still being set up leaves a
    // rejected command behind, so the start waits for them.
    await this.worker.waitUntilReady();
  }

  /** When the backup schedule fires next (ISO), if there is one. */
  async nextBackupAt(): Promise<string | undefined> {
    const scheduler = await this.queue.getJobScheduler(BACKUP_SCHEDULER);
    return scheduler?.next ? new Date(scheduler.next).toISOString() : undefined;
  }

  /**
   * Brings the cluster's schedulers in line with this node's settings and procedures (also after a
   * reload). Nodes starting together take turns (a short Redis lock), so check-then-set is not raced.
   */
  async sync(): Promise<void> {
    const redis = this.host.redis;
    const key = this.host.keys.backup.scheduleSync;
    const token = `${this.host.name}:${Date.now()}`;
    const deadline = Date.now() + 10_000;
    while ((await redis.set(key, token, 'PX', 10_000, 'NX')) !== 'OK') {
      if (Date.now() > deadline) {
        break; // a node died holding it; it expires anyway
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      await this.syncBackup();
      await this.syncProcedures(this.host.procedureSchedules());
    } finally {
      if ((await redis.get(key)) === token) {
        await redis.del(key);
      }
    }
  }

  /**
   * Stops the worker: it takes no more ticks (one fetched meanwhile goes back to the queue for
   * another node), the running backup is interrupted (1406), then the worker and queue close.
   */
  async close(): Promise<void> {
    this.stopping = true;
    const ms = this.host.settings.redisTimeoutMs;
    const worker = settleWithin(this.worker?.close(), ms);
    await this.backups.close();
    await worker;
    await settleWithin(this.queue.close(), ms);
  }

  private async syncBackup(): Promise<void> {
    const s = this.host.settings;
    if (s.backupCron === undefined) {
      await this.ensureNext(BACKUP_SCHEDULER, 'backup', { kind: 'backup' });
      return;
    }
    if (s.backupCron === 'off') {
      if (await this.queue.removeJobScheduler(BACKUP_SCHEDULER)) {
        this.host.log.info('backup schedule removed (SPROCD_BACKUP_CRON=off)');
      }
      return;
    }
    await this.upsert(BACKUP_SCHEDULER, s.backupCron, s.backupTimezone, 'backup', { kind: 'backup' });
  }

  private async syncProcedures(schedules: ReadonlyMap<string, ProcedureSchedule>): Promise<void> {
    for (const [name, schedule] of schedules) {
      const data: LifecycleJobData = { kind: 'procedure', procedure: name };
      if (schedule.params !== undefined) {
        data.params = schedule.params;
      }
      await this.upsert(
        `${PROCEDURE_SCHEDULER_PREFIX}${name}`,
        schedule.cron,
        schedule.tz,
        'procedure',
        data,
      );
    }
    const existing = await this.queue.getJobSchedulers(0, -1);
    for (const scheduler of existing) {
      const id = scheduler.key;
      if (
        id.startsWith(PROCEDURE_SCHEDULER_PREFIX) &&
        !schedules.has(id.slice(PROCEDURE_SCHEDULER_PREFIX.length))
      ) {
        await this.queue.removeJobScheduler(id);
        this.host.log.info({ scheduler: id }, 'schedule removed: no loaded procedure declares it');
      }
    }
  }

  /** Creates or changes a scheduler, unless the stored one is the same (then only checks its next job). */
  private async upsert(
    id: string,
    cron: string,
    tz: string | undefined,
    jobName: string,
    data: LifecycleJobData,
  ): Promise<void> {
    const existing = await this.queue.getJobScheduler(id);
    const same =
      existing !== undefined &&
      existing.pattern === cron &&
      (existing.tz ?? undefined) === tz &&
      JSON.stringify(existing.template?.data ?? null) === JSON.stringify(data);
    if (same) {
      await this.ensureNext(id, jobName, data);
      return;
    }
    await this.queue.upsertJobScheduler(
      id,
      { pattern: cron, ...(tz ? { tz } : {}) },
      {
        name: jobName,
        data,
        opts: { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED },
      },
    );
    this.host.log.info({ scheduler: id, cron, tz }, 'schedule set');
  }

  /**
   * A scheduler whose pending job is gone or finished would never fire again (the "scheduler that
   * stops" BullMQ users report): give it its next job.
   */
  private async ensureNext(id: string, jobName: string, data: LifecycleJobData): Promise<void> {
    const existing = await this.queue.getJobScheduler(id);
    if (!existing?.pattern || existing.next === undefined) {
      return;
    }
    const state = await this.queue.getJobState(schedulerJobId(id, existing.next));
    if (state === 'unknown' || state === 'completed' || state === 'failed') {
      await this.queue
        .upsertJobScheduler(
          id,
          { pattern: existing.pattern, ...(existing.tz ? { tz: existing.tz } : {}) },
          {
            name: jobName,
            data,
            opts: { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED },
          },
        )
        .catch((err: unknown) => this.host.log.warn({ err, scheduler: id }, 'could not revive a schedule'));
      this.host.log.warn({ scheduler: id, state }, 'schedule had no pending tick; given its next one');
    }
  }

  /** Queues a retry of a failed automatic backup (one job per tick and attempt). */
  private async queueRetry(retry: BackupRetry, delayMs: number): Promise<void> {
    await this.queue.add(
      'backup-retry',
      { kind: 'backup-retry', ...retry },
      {
        jobId: `backup-retry-${retry.scheduledAt}-${retry.attempt}`,
        delay: delayMs,
        removeOnComplete: KEEP_FINISHED,
        removeOnFail: KEEP_FINISHED,
      },
    );
  }

  // ---- ticks ----------------------------------------------------------------------------------

  private async process(job: Job<LifecycleJobData>, token: string | undefined): Promise<unknown> {
    if (this.stopping && token !== undefined) {
      // Taken while this node stops: give it back untouched, another node (or the next start) runs it.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    try {
      const data = job.data;
      if (data.kind === 'backup-retry') {
        const { scheduledAt, attempt, failedAt } = data;
        return await this.policy.onRetry(this.actions, { scheduledAt, attempt, failedAt });
      }
      const tick = parseSchedulerJobId(job.id);
      if (!tick) {
        return { ignored: 'not a schedule tick' };
      }
      const { scheduler, millis } = tick;
      const claim = await this.claim(scheduler, millis);
      if (claim === 'done' || claim === 'running') {
        return { ignored: `tick already ${claim}` };
      }
      try {
        if (data.kind === 'procedure') {
          // A claimed-but-orphaned procedure tick may or may not have queued its execution: at most once.
          return claim === 'claimed' ? await this.procedureTick(data, millis) : { ignored: 'tick orphaned' };
        }
        return claim === 'orphaned'
          ? await this.policy.onOrphanedTick(this.actions, millis)
          : await this.policy.onTick(this.actions, millis);
      } finally {
        await this.host.redis
          .set(this.host.keys.backup.tick(scheduler, millis), 'done', 'KEEPTTL')
          .catch(() => undefined);
      }
    } catch (err) {
      // Never let BullMQ retry a tick: it would fire again.
      this.host.log.error({ err, job: job.id }, 'schedule tick failed');
      return { error: describeError(err) };
    }
  }

  /**
   * Claims a tick: "claimed" (run it), "done" (it already ran), "running" (a live node runs it),
   * "orphaned" (the node that claimed it is gone: it was cut short).
   */
  private async claim(
    scheduler: string,
    millis: number,
  ): Promise<'claimed' | 'done' | 'running' | 'orphaned'> {
    const { redis, keys, name, settings } = this.host;
    const key = keys.backup.tick(scheduler, millis);
    if ((await redis.set(key, name, 'PX', TICK_CLAIM_TTL_MS, 'NX')) === 'OK') {
      return 'claimed';
    }
    const holder = await redis.get(key);
    if (holder === null || holder === 'done') {
      return 'done';
    }
    const live = await liveNodes(redis, keys, settings.nodeTimeoutMs);
    if (live.some((n) => n.node === holder) && holder !== name) {
      return 'running';
    }
    await redis.set(key, name, 'KEEPTTL');
    return 'orphaned';
  }

  private async procedureTick(
    data: { procedure: string; params?: unknown },
    millis: number,
  ): Promise<unknown> {
    if (!this.host.hasProcedure(data.procedure)) {
      this.host.log.warn(
        { procedure: data.procedure },
        'schedule tick for a procedure this node does not have',
      );
      return { ignored: 'unknown procedure' };
    }
    const { execution } = await this.host.executions.execute(data.procedure, data.params, {
      name: `schedule:${data.procedure}`,
    });
    this.host.log.info(
      { procedure: data.procedure, execution: execution.number, scheduledAt: new Date(millis).toISOString() },
      'scheduled execution queued',
    );
    return { execution: execution.number };
  }
}

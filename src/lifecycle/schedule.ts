/**
 * Schedules: the backup cron (SPROCD_BACKUP_CRON) and the `schedule` of procedures, as BullMQ job
 * schedulers with stable ids on a second queue, "lifecycle", that every node works with one Worker
 * (concurrency 1). BullMQ keeps exactly one pending job per scheduler and creates the next when a
 * worker takes the current one, so a tick goes to one node; on top of that each tick is claimed
 * with SET NX before it runs, so a job delivered twice (a node killed mid-tick) never fires twice.
 *
 * Rules (docs/BACKUPS.md):
 * - a node started with SPROCD_BACKUP_CRON sets the cluster's schedule when it differs from the
 *   stored one (an identical one is left alone: re-upserting would replace the pending tick),
 *   `off` removes it, unset leaves it as it is;
 * - a backup tick taken more than {@link MISSED_GRACE_MS} late while every live node started after
 *   its time is "missed": recorded as failed (1402), then the backup runs at once;
 * - a failed scheduled backup is retried after SPROCD_BACKUP_RETRY_DELAY_MS, up to
 *   SPROCD_BACKUP_RETRIES times; the failure count and the stop are in backup.ts.
 */
import { isValidTimezone } from '../config.js';
import { Job, Queue, WaitingError, Worker, type RepeatStrategy } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import type { Redis } from 'ioredis';
import { settleWithin } from '../redis/connections.js';
import { ModuleLoadError, describeError } from '../errors.js';
import type { SprocdNode } from '../node.js';
import { assertJson } from '../procedures/json.js';
import type { ProcedureRegistry } from '../procedures/registry.js';
import { liveNodes } from './heartbeat.js';
import { BACKUP_STATUS, backupKeys, type BackupRecord, type BackupService } from './backup.js';

/** The BullMQ queue of schedule ticks and backup retries (keys `{prefix}:lifecycle:*`). */
export const LIFECYCLE_QUEUE = 'lifecycle';
/** Scheduler id of the backup cron. */
export const BACKUP_SCHEDULER = 'backup';
/**
 * Scheduler id prefix of procedure schedules: `procedure@<name>`. No ":" in scheduler ids: BullMQ
 * reads ids with colons as legacy repeatable-job keys in places.
 */
export const PROCEDURE_SCHEDULER_PREFIX = 'procedure@';
/** A backup tick later than this, with no node running at its time, is missed (1402). */
export const MISSED_GRACE_MS = 2000;
/**
 * Tick claims live this long: far beyond BullMQ's redelivery of a job whose node died (a lease or
 * two), and short enough that a one-second cron keeps at most 3,600 of them.
 */
const TICK_CLAIM_TTL_MS = 3600 * 1000;
/** Finished lifecycle jobs kept (a finished tick's job also blocks a second job for that tick). */
const KEEP_FINISHED = { age: 24 * 3600, count: 1000 };

/** A procedure's `schedule`: a cron string, or the cron with its time zone and params. */
export interface ProcedureSchedule {
  cron: string;
  tz?: string;
  params?: unknown;
}

/** What a lifecycle job carries. */
export type LifecycleJobData =
  | { kind: 'backup' }
  | { kind: 'procedure'; procedure: string; params?: unknown }
  | { kind: 'backup-retry'; scheduledAt: number; attempt: number; failedAt: number };

/** Next occurrence after `millis`, with cron-parser 5 (the parser config.ts checks the setting with). */
export const repeatStrategy: RepeatStrategy = (millis, opts) => {
  if (!opts.pattern) {
    return undefined;
  }
  const expression = CronExpressionParser.parse(opts.pattern, {
    currentDate: new Date(millis),
    ...(opts.tz ? { tz: opts.tz } : {}),
  });
  return expression.next().getTime();
};

/**
 * Reads the `schedule` of every loaded procedure (a field defineProcedure keeps as it is) and checks
 * it: cron syntax, time zone, JSON params that pass the procedure's params schema. A bad one throws
 * ModuleLoadError naming the file, which stops the start.
 */
export function procedureSchedules(registry: ProcedureRegistry): Map<string, ProcedureSchedule> {
  const out = new Map<string, ProcedureSchedule>();
  for (const name of registry.names()) {
    const definition = registry.get(name);
    if (!definition) {
      continue;
    }
    const raw = (definition as { schedule?: unknown }).schedule;
    if (raw === undefined) {
      continue;
    }
    const fail = (reason: string): never => {
      throw new ModuleLoadError(definition.file, `schedule: ${reason}`);
    };
    let schedule: ProcedureSchedule;
    if (typeof raw === 'string') {
      schedule = { cron: raw };
    } else if (
      typeof raw === 'object' &&
      raw !== null &&
      typeof (raw as { cron?: unknown }).cron === 'string'
    ) {
      const r = raw as { cron: string; tz?: unknown; params?: unknown };
      if (r.tz !== undefined && typeof r.tz !== 'string') {
        fail('tz must be an IANA time zone name such as "Europe/Paris"');
      }
      schedule = { cron: r.cron, ...(r.tz === undefined ? {} : { tz: r.tz as string }) };
      if (r.params !== undefined) {
        schedule.params = r.params;
      }
    } else {
      return fail('must be a cron string or { cron, tz?, params? }');
    }
    if (schedule.tz !== undefined && !isValidTimezone(schedule.tz)) {
      fail(`tz ${JSON.stringify(schedule.tz)} is not a known IANA time zone`);
    }
    try {
      CronExpressionParser.parse(schedule.cron, schedule.tz ? { tz: schedule.tz } : {}).next();
    } catch (err) {
      fail(`${JSON.stringify(schedule.cron)} is not a cron expression: ${(err as Error).message}`);
    }
    if (schedule.params !== undefined) {
      try {
        assertJson(schedule.params, 'schedule.params');
      } catch (err) {
        fail((err as Error).message);
      }
    }
    if (definition.params) {
      const parsed = definition.params.safeParse(schedule.params);
      if (!parsed.success) {
        fail(
          `params do not match the procedure's params schema: ${parsed.error.issues
            .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
            .join('; ')}`,
        );
      }
    }
    out.set(name, schedule);
  }
  return out;
}

/** The schedules of one node: the lifecycle queue, its worker, and the set-up of the schedulers. */
export class Schedules {
  readonly queue: Queue<LifecycleJobData>;
  private worker: Worker<LifecycleJobData> | undefined;
  private stopping = false;
  private readonly bk: ReturnType<typeof backupKeys>;

  constructor(
    private readonly node: SprocdNode,
    private readonly backups: BackupService,
    private readonly openWorkerConnection: () => Redis,
  ) {
    this.bk = backupKeys(node.keys);
    this.queue = new Queue<LifecycleJobData>(LIFECYCLE_QUEUE, {
      connection: node.redis,
      prefix: node.keys.bullPrefix,
      settings: { repeatStrategy },
    });
    this.queue.on('error', () => undefined);
  }

  /** Sets up the schedulers (checked beforehand by {@link procedureSchedules}), then starts the worker. */
  async start(schedules: Map<string, ProcedureSchedule>): Promise<void> {
    // Let BullMQ finish its connection set-up first: closing a queue in the middle of it leaves a
    // rejected command behind.
    await this.queue.waitUntilReady();
    await this.sync(schedules);
    this.worker = new Worker<LifecycleJobData>(LIFECYCLE_QUEUE, (job, token) => this.process(job, token), {
      connection: this.openWorkerConnection(),
      prefix: this.node.keys.bullPrefix,
      concurrency: 1,
      settings: { repeatStrategy },
      name: this.node.name,
      // BullMQ schedules a scheduler's next tick just after a worker takes the current one. A node
      // killed in between leaves the tick active and the schedule without a next one until the tick's
      // lease runs out: keep that lease as short as the executions' (SPROCD_EXECUTION_LEASE_MS).
      lockDuration: this.node.settings.executionLeaseMs,
      stalledInterval: this.node.settings.executionLeaseMs,
      maxStalledCount: this.node.settings.maxRecoveries,
    });
    this.worker.on('error', (err) => this.node.log.debug({ err }, 'lifecycle worker connection error'));
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
  async sync(schedules = procedureSchedules(this.node.registry)): Promise<void> {
    const redis = this.node.redis;
    const token = `${this.node.name}:${Date.now()}`;
    const deadline = Date.now() + 10_000;
    while ((await redis.set(this.bk.scheduleSync, token, 'PX', 10_000, 'NX')) !== 'OK') {
      if (Date.now() > deadline) {
        break; // a node died holding it; it expires anyway
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      await this.syncBackup();
      await this.syncProcedures(schedules);
    } finally {
      if ((await redis.get(this.bk.scheduleSync)) === token) {
        await redis.del(this.bk.scheduleSync);
      }
    }
  }

  /**
   * Stops the worker: it takes no more ticks (one fetched meanwhile goes back to the queue for
   * another node), the running backup is interrupted (1406), then the worker and queue close.
   */
  async close(): Promise<void> {
    this.stopping = true;
    const ms = this.node.settings.redisTimeoutMs;
    const worker = settleWithin(this.worker?.close(), ms);
    await this.backups.close();
    await worker;
    await settleWithin(this.queue.close(), ms);
  }

  private async syncBackup(): Promise<void> {
    const s = this.node.settings;
    if (s.backupCron === undefined) {
      await this.ensureNext(BACKUP_SCHEDULER, 'backup', { kind: 'backup' });
      return;
    }
    if (s.backupCron === 'off') {
      if (await this.queue.removeJobScheduler(BACKUP_SCHEDULER)) {
        this.node.log.info('backup schedule removed (SPROCD_BACKUP_CRON=off)');
      }
      return;
    }
    await this.upsert(BACKUP_SCHEDULER, s.backupCron, s.backupTimezone, 'backup', { kind: 'backup' });
  }

  private async syncProcedures(schedules: Map<string, ProcedureSchedule>): Promise<void> {
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
        this.node.log.info({ scheduler: id }, 'schedule removed: no loaded procedure declares it');
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
    this.node.log.info({ scheduler: id, cron, tz }, 'schedule set');
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
    const state = await this.queue.getJobState(`repeat:${id}:${existing.next}`);
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
        .catch((err: unknown) => this.node.log.warn({ err, scheduler: id }, 'could not revive a schedule'));
      this.node.log.warn({ scheduler: id, state }, 'schedule had no pending tick; given its next one');
    }
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
        return await this.retry(data);
      }
      const tick = /^repeat:(.+):(\d+)$/.exec(job.id ?? '');
      if (!tick) {
        return { ignored: 'not a schedule tick' };
      }
      const scheduler = tick[1] as string;
      const millis = Number(tick[2]);
      const claim = await this.claim(scheduler, millis);
      if (claim === 'done' || claim === 'running') {
        return { ignored: `tick already ${claim}` };
      }
      try {
        if (data.kind === 'procedure') {
          // A claimed-but-orphaned procedure tick may or may not have queued its execution: at most once.
          return claim === 'claimed' ? await this.procedureTick(data, millis) : { ignored: 'tick orphaned' };
        }
        if (claim === 'orphaned') {
          // The node that took this tick died during its backup: that attempt failed (1406).
          const record = await this.backups.run('schedule', {
            scheduledAt: millis,
            attempt: 0,
            failWith: {
              status: BACKUP_STATUS.interrupted,
              message: 'interrupted: the node running this scheduled backup died',
            },
          });
          return await this.afterAutomatic(record, millis, 0);
        }
        return await this.backupTick(millis);
      } finally {
        await this.node.redis.set(this.bk.tick(scheduler, millis), 'done', 'KEEPTTL').catch(() => undefined);
      }
    } catch (err) {
      // Never let BullMQ retry a tick: it would fire again.
      this.node.log.error({ err, job: job.id }, 'schedule tick failed');
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
    const redis = this.node.redis;
    const key = this.bk.tick(scheduler, millis);
    if ((await redis.set(key, this.node.name, 'PX', TICK_CLAIM_TTL_MS, 'NX')) === 'OK') {
      return 'claimed';
    }
    const holder = await redis.get(key);
    if (holder === null || holder === 'done') {
      return 'done';
    }
    const live = await liveNodes(redis, this.node.keys, this.node.settings.nodeTimeoutMs);
    if (live.some((n) => n.node === holder) && holder !== this.node.name) {
      return 'running';
    }
    await redis.set(key, this.node.name, 'KEEPTTL');
    return 'orphaned';
  }

  private async backupTick(millis: number): Promise<unknown> {
    if (await this.backups.automaticStopped()) {
      this.node.log.info(
        { scheduledAt: new Date(millis).toISOString() },
        'backup tick ignored: automatic backups are stopped',
      );
      return { ignored: 'automatic backups stopped' };
    }
    if (Date.now() - millis > MISSED_GRACE_MS && (await this.noNodeRanAt(millis))) {
      const missed = await this.backups.run('schedule', {
        scheduledAt: millis,
        attempt: 0,
        failWith: {
          status: BACKUP_STATUS.missed,
          message: `missed: no node was running at ${new Date(millis).toISOString()}, the scheduled time`,
        },
      });
      if (missed.outcome === 'skipped' || missed.status === BACKUP_STATUS.automaticStopped) {
        return missed;
      }
      // 4D: a missed backup counts as failed and the "if backup fails" rules apply: run it now.
      const record = await this.backups.run('missed', { scheduledAt: millis, attempt: 0 });
      return this.afterAutomatic(record, millis, 0);
    }
    const record = await this.backups.run('schedule', { scheduledAt: millis, attempt: 0 });
    return this.afterAutomatic(record, millis, 0);
  }

  private async retry(data: { scheduledAt: number; attempt: number; failedAt: number }): Promise<unknown> {
    if (await this.backups.automaticStopped()) {
      return { ignored: 'automatic backups stopped' };
    }
    if ((await this.backups.lastSuccessAt()) > data.failedAt) {
      return { ignored: 'a backup succeeded since the failure' };
    }
    const record = await this.backups.run('retry', { scheduledAt: data.scheduledAt, attempt: data.attempt });
    return this.afterAutomatic(record, data.scheduledAt, data.attempt);
  }

  /** Queues the next retry of a failed automatic backup, while the policy allows one. */
  private async afterAutomatic(
    record: BackupRecord,
    scheduledAt: number,
    attempt: number,
  ): Promise<BackupRecord> {
    const s = this.node.settings;
    if (
      record.outcome !== 'failed' ||
      record.status === BACKUP_STATUS.automaticStopped ||
      attempt >= s.backupRetries
    ) {
      return record;
    }
    const next = attempt + 1;
    await this.queue.add(
      'backup-retry',
      { kind: 'backup-retry', scheduledAt, attempt: next, failedAt: Date.now() },
      {
        jobId: `backup-retry-${scheduledAt}-${next}`,
        delay: s.backupRetryDelayMs,
        removeOnComplete: KEEP_FINISHED,
        removeOnFail: KEEP_FINISHED,
      },
    );
    this.node.log.info(
      { backup: record.number, retry: next, of: s.backupRetries, delayMs: s.backupRetryDelayMs },
      'failed backup will be retried',
    );
    return record;
  }

  /** True when every live node started after `millis`: nobody could have taken the tick on time. */
  private async noNodeRanAt(millis: number): Promise<boolean> {
    const nodes = await liveNodes(this.node.redis, this.node.keys, this.node.settings.nodeTimeoutMs);
    return nodes.every((n) => Date.parse(n.startedAt) > millis);
  }

  private async procedureTick(
    data: { procedure: string; params?: unknown },
    millis: number,
  ): Promise<unknown> {
    const executions = this.node.executions;
    if (!executions || !this.node.registry.get(data.procedure)) {
      this.node.log.warn(
        { procedure: data.procedure },
        'schedule tick for a procedure this node does not have',
      );
      return { ignored: 'unknown procedure' };
    }
    const { execution } = await executions.execute(data.procedure, data.params, {
      name: `schedule:${data.procedure}`,
    });
    this.node.log.info(
      { procedure: data.procedure, execution: execution.number, scheduledAt: new Date(millis).toISOString() },
      'scheduled execution queued',
    );
    return { execution: execution.number };
  }
}

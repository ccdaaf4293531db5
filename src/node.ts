/**
 * A sprocd node: wires settings, Redis, the session, procedures, hooks, workers and the API, and
 * owns the order in which they start and stop (docs/ARCHITECTURE.md#a-nodes-life).
 *
 * This is the one module that sees the whole node. Every other part gets the small interface it
 * declares (the API an {@link ApiContext}, the lifecycle a {@link LifecycleHost}, the workers their
 * options), built here; the node's own fields stay private. The file is long because of that: the
 * start and stop order and every interface it hands out stay together, so a change to what a part
 * sees of the node, or when, is made and read in one place.
 */
import path from 'node:path';
import type { RedisConnection } from './redis/redis-connection.js';
import type { Logger } from 'pino';
import { buildApi, type Api, type ApiContext } from './api/app.js';
import { AuditTrail } from './auth/audit.js';
import { CallerDirectory, reloadCallers } from './auth/callers.js';
import type { Settings } from './config.js';
import { NotReadyError, StoppingError } from './errors.js';
import { EventLog } from './events/event-log.js';
import { EventHub, hubStreams } from './events/hub.js';
import { readProcedureFigures } from './stats/procedure-counts.js';
import { SeriesRecorder, readSeries } from './stats/series.js';
import { Heartbeat, liveNodes } from './lifecycle/heartbeat.js';
import { LifecycleHooks, type HookName } from './lifecycle/hooks.js';
import { OnErrorCalls } from './lifecycle/on-error.js';
import { startLifecycle, type LifecycleHost, type LifecycleServices } from './lifecycle/index.js';
import { checkProcedureSchedules, type ProcedureSchedule } from './lifecycle/procedure-schedules.js';
import { SystemEvents, type SystemEvent } from './lifecycle/system-events.js';
import { redactUrl } from './logger.js';
import { NodeMetrics } from './metrics.js';
import { assertServes, serves, type Access, type NodeState } from './node-state.js';
import { executeOnServerBatchWith, executeOnServerWith } from './procedures/execute.js';
import { HISTORY_LIMIT, readHistory } from './lifecycle/backup-history.js';
import { nextTicks, readSchedules } from './lifecycle/schedule-report.js';
import { ExecutionAdmin } from './procedures/execution-admin.js';
import { readExecutionLogs } from './procedures/execution-logs.js';
import { Executions, type ControlMessage } from './procedures/executions.js';
import { ProcessSync } from './procedures/process-sync.js';
import { ProcessControl } from './procedures/processes.js';
import { ProcedureRegistry, type ProcedureListing } from './procedures/registry.js';
import { WorkerPool } from './procedures/worker-pool.js';
import { WorkerRunner } from './procedures/workers/runner.js';
import { Workers } from './procedures/workers/workers.js';
import { isCluster } from './redis/cluster.js';
import { closeConnection, openConnection, type ConnectionRole } from './redis/connections.js';
import { ReplicaAcks } from './redis/replica-acks.js';
import { startRedisServer, type RedisServer } from './redis/embedded.js';
import { withRedisTimeout } from './redis/errors.js';
import { createKeys, type Keys } from './redis/keys.js';
import { checkShardCount } from './redis/shard-count.js';
import { QueueShards, shardPlacement } from './redis/shards.js';
import { openSession, type SessionService } from './session/index.js';
import { replaceEntry } from './session/entry-edit.js';
import { storageReport } from './session/lock-report.js';
import type { SlotKeys } from './session/slots.js';
import { startTracing, type Tracing } from './tracing/index.js';
import type { HookContext, Session } from './types.js';

/** The node's parts, for this repository's tests and benchmarks only (see {@link SprocdNode.internals}). */
export interface NodeInternals {
  readonly redis: RedisConnection;
  readonly keys: Keys;
  /** The queue shards (SPROCD_QUEUE_SHARDS, redis/shards.ts). */
  readonly shards: QueueShards;
  readonly executions: Executions;
  readonly lifecycle: LifecycleServices | undefined;
  /** Signals and semaphores (bench/signals.ts wakes one node's waiter from another). */
  readonly sync: ProcessSync | undefined;
}

/** A node: create it with `createNode`, then `start()`, and `stop()` it. */
export class SprocdNode {
  private current: NodeState = 'starting';
  private readonly keys: Keys;
  private readonly shards: QueueShards;
  private readonly registry: ProcedureRegistry;
  private readonly hooks: LifecycleHooks;
  /** lifecycle/onError, called for each execution that failed for good here. */
  private readonly onErrorCalls: OnErrorCalls;
  private readonly metrics: NodeMetrics;
  /** The procedures' schedules, checked each time jobs/ loads. */
  private schedules: ReadonlyMap<string, ProcedureSchedule> = new Map();
  private api: Api | undefined;
  private executions: Executions | undefined;
  private sessionService: SessionService | undefined;
  private lifecycle: LifecycleServices | undefined;
  private redisUrl: string | undefined;
  private embedded: RedisServer | undefined;
  private connections: RedisConnection[] = [];
  private command: RedisConnection | undefined;
  /** SPROCD_REPLICA_ACKS: the writes it acknowledges wait for replicas (on the command connection). */
  private acks: ReplicaAcks | undefined;
  /** SPROCD_REPLICA_ACKS per storage data slot: on a Cluster, WAIT goes to each slot's master. */
  private workers: WorkerPool | undefined;
  /** CALL WORKER, KILL WORKER and the listing; and the workers this node runs. */
  private workerCalls: Workers | undefined;
  private workerRunner: WorkerRunner | undefined;
  /** Signals and semaphores of the executions running here. */
  private sync: ProcessSync | undefined;
  private heartbeat: Heartbeat | undefined;
  private events: SystemEvents | undefined;
  /** GET /v1/events: the one reader of the event streams, and sprocd's own event log. */
  private eventHub: EventHub | undefined;
  private eventLog: EventLog | undefined;
  /** Executions ended here, added to the cluster's history in Redis (GET /v1/stats). */
  private series: SeriesRecorder | undefined;
  /** Tracing, when the OTEL_* variables turn it on (src/tracing). */
  private tracing: Tracing | undefined;
  /** Who may call the API (SPROCD_TOKEN, SPROCD_CALLERS_FILE), and the audit trail of what they change. */
  private callers: CallerDirectory | undefined;
  private auditTrail: AuditTrail | undefined;
  private readonly shutdownController = new AbortController();
  private stopPromise: Promise<void> | undefined;

  constructor(
    /** The settings it runs with. */
    readonly settings: Readonly<Settings>,
    private readonly log: Logger,
  ) {
    this.keys = createKeys(settings.prefix, settings.queueShards);
    this.shards = this.keys.queues;
    this.registry = new ProcedureRegistry(settings.jobsDir);
    this.hooks = new LifecycleHooks(settings.lifecycleDir);
    this.onErrorCalls = new OnErrorCalls({
      log: this.log,
      hasHook: () => this.hooks.has('onError'),
      runHook: (log, info) => this.hooks.run('onError', log, (l) => this.hookContext(l), info),
      find: (number) => this.part(this.executions).find(number),
    });
    this.metrics = new NodeMetrics(
      settings.nodeName,
      // Redis away: the scrape still answers, without the queue's depth.
      async () =>
        this.executions
          ? await withRedisTimeout(this.executions.counts(), settings.redisTimeoutMs).catch(() => ({}))
          : {},
      () => this.workers?.activeCount ?? 0,
    );
  }

  /** The node's name (SPROCD_NODE_NAME, or host-pid). */
  get name(): string {
    return this.settings.nodeName;
  }

  /** Where the node is in its life. */
  get state(): NodeState {
    return this.current;
  }

  /** The URL its API listens on; empty before start() has opened it. */
  get url(): string {
    return this.api?.url ?? '';
  }

  /** The shared session; throws NotReadyError before the node has opened it. */
  get session(): Session {
    return this.part(this.sessionService).session;
  }

  /** Whether the node answers /readyz with 200: started, not stopping, and Redis answering. */
  async isReady(): Promise<{ ready: boolean; reason?: string }> {
    if (!serves(this.current, 'work')) {
      return { ready: false, reason: this.current };
    }
    try {
      await this.redis().ping();
      return { ready: true };
    } catch {
      return { ready: false, reason: 'redis unavailable' };
    }
  }

  /**
   * The node's parts, for this repository's tests and benchmarks; not part of the public API.
   * Throws NotReadyError before the start has opened them.
   * @internal
   */
  internals(): NodeInternals {
    return {
      redis: this.redis(),
      keys: this.keys,
      shards: this.shards,
      executions: this.part(this.executions),
      lifecycle: this.lifecycle,
      sync: this.sync,
    };
  }

  /**
   * Starts the node: API (health only) → jobs/ and lifecycle/ → Redis → session → onServerStartup →
   * workers → ready. Throws (and cleans up) when any step fails.
   */
  async start(): Promise<void> {
    const s = this.settings;
    try {
      this.tracing = await startTracing();
      this.callers = new CallerDirectory({ token: s.token, file: s.callersFile });
      this.api = await buildApi(this.apiContext());
      await this.api.listen();
      this.log.info({ url: this.api.url }, 'api listening');
      if (this.callers.open) {
        this.log.warn(
          `No SPROCD_TOKEN: the API listens on ${s.host} (loopback) only, asks for no token, and answers same-origin requests only.`,
        );
      }
      await this.loadProcedures(); // a bad `schedule` stops the start before anything opens
      await this.hooks.load();
      this.log.info({ procedures: this.registry.names().length, jobsDir: s.jobsDir }, 'procedures loaded');

      if (s.redisUrl) {
        this.redisUrl = s.redisUrl;
      } else {
        this.embedded = await startRedisServer({
          dir: path.join(s.dataDir, 'redis'),
          password: true,
          unixSocket: true,
        });
        // The socket when there is one: on the same machine it skips the TCP stack.
        this.redisUrl = this.embedded.socketUrl ?? this.embedded.url;
        this.log.info({ dir: this.embedded.dir, port: this.embedded.port }, 'embedded redis-server started');
      }
      const command = this.open('command');
      this.command = command;
      // A number block taken before a reconnect may come from a master that is no longer the one (a
      // fail-over, a frozen master): its numbers can overlap a block of the new master, so take afresh.
      command.on('ready', () => this.executions?.forgetNumbers());
      const acks = new ReplicaAcks(command, {
        replicas: s.replicaAcks,
        timeoutMs: s.replicaAckTimeoutMs,
        routeKey: this.keys.sequence,
      });
      this.acks = acks;
      this.events = new SystemEvents({ emitSystemEvent: (event) => this.emitSystemEvent(event) }, command);
      this.eventLog = new EventLog(command, this.keys.eventLog, this.log);
      this.auditTrail = new AuditTrail(command, this.keys.audit, s.auditMax);
      this.series = new SeriesRecorder(command, this.keys.stats, this.log);
      this.series.start();
      this.eventHub = new EventHub({
        redis: command,
        openReader: () => this.open('events'),
        streams: hubStreams(this.keys),
        logger: this.log.child({ part: 'events' }),
      });
      await this.waitForRedis();
      this.log.info({ redis: redactUrl(this.redisUrl) }, 'connected to Redis');
      // Before anything is queued: a node with another shard count would look in other queues.
      await checkShardCount(command, this.keys, s.queueShards);
      if (isCluster(command)) {
        // Which master serves each shard: shards add capacity only on different masters.
        this.log.info({ shards: shardPlacement(command, this.shards.all) }, 'queue shards');
      }

      this.sessionService = await openSession({
        command,
        redisUrl: this.redisUrl,
        keys: this.keys,
        userName: s.userName,
        lockLeaseMs: s.lockLeaseMs,
        lockTimeoutMs: s.lockTimeoutMs,
        maxEntryBytes: s.storageMaxEntryBytes,
        connectionName: `sprocd:${s.prefix}:${this.name}`,
        logger: this.log.child({ part: 'session' }),
        nodeName: this.name,
        acks: this.acks,
        storageSlots: s.storageSlots,
        // A slot's writes are confirmed by the master of that slot (one group commit per slot).
        ...(s.replicaAcks > 0 ? { slotAcks: (slot: SlotKeys) => acks.routed(slot.data) } : {}),
      });
      const executions = new Executions(
        command,
        this.keys,
        this.registry,
        s,
        () => this.open('events'),
        this.tracing?.bullmq,
        this.acks,
      );
      this.executions = executions;
      this.workerCalls = new Workers(command, this.keys, this.registry);

      await this.runHook('onServerStartup');
      // A stop asked for while the startup hook ran: start nothing more (stop() releases what is open).
      if (this.stopPromise) {
        throw new StoppingError();
      }

      this.sync = new ProcessSync(command, this.keys, s.lockLeaseMs, this.log.child({ part: 'sync' }));
      this.sync.start();
      this.workers = new WorkerPool({
        connection: this.open('worker'),
        keys: this.keys,
        registry: this.registry,
        executions,
        session: (owner, check, fence) => this.part(this.sessionService).sessionFor(owner, check, fence),
        logger: this.log,
        node: this.name,
        concurrency: s.concurrency,
        workerBatch: s.workerBatch,
        executionLeaseMs: s.executionLeaseMs,
        maxRecoveries: s.maxRecoveries,
        observer: {
          onEnd: (procedure, outcome, ms) => {
            this.metrics.onEnd(procedure, outcome, ms);
            this.series?.onEnd(procedure, outcome, ms);
          },
        },
        telemetry: this.tracing?.bullmq,
        onRecovered: (number) => this.emitSystemEvent({ type: 'execution.recovered', execution: number }),
        onFailed: (number, job) => this.onErrorCalls.failed(number, job),
        elsewhere: async (procedure) =>
          (await liveNodes(command, this.keys, s.nodeTimeoutMs)).some(
            (n) => n.node !== this.name && n.procedures?.includes(procedure),
          ),
        sync: this.sync,
        workers: this.workerCalls,
      });
      this.workerRunner = new WorkerRunner({
        redis: command,
        keys: this.keys,
        node: this.name,
        registry: this.registry,
        leaseMs: s.executionLeaseMs,
        maxRecoveries: s.maxRecoveries,
        logger: this.log.child({ part: 'workers' }),
        services: this.workers.services,
      });
      await this.subscribeControl();
      await this.workers.start();
      this.workerRunner.start();
      this.heartbeat = new Heartbeat(
        {
          name: this.name,
          keys: this.keys,
          settings: s,
          registry: this.registry,
          emitSystemEvent: (event) => this.emitSystemEvent(event),
        },
        command,
        () => this.workers?.activeCount ?? 0,
      );
      await this.heartbeat.start();
      this.lifecycle = await startLifecycle(this.lifecycleHost(command, executions));
      this.current = 'ready';
      this.log.info({ url: this.api.url, node: this.name, concurrency: s.concurrency }, 'sprocd node ready');
    } catch (err) {
      if (this.stopPromise) {
        // The caller asked for the stop, so this is not a failed start. stop() released what was open
        // when it ran; release again for what the start opened after that (an embedded Redis, say).
        await this.stopPromise;
        await this.release();
        return;
      }
      this.current = 'stopped';
      await this.release();
      throw err;
    }
  }

  /**
   * Stops the node: refuse new executions → onServerShutdown → fire ctx.signal of running
   * executions → wait up to the grace period → give back the rest → close everything.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  /** Reloads jobs/ and lifecycle/ (SIGHUP): new executions use the new code, running ones keep the old. */
  async reload(): Promise<void> {
    if (this.callers) {
      reloadCallers(this.callers, this.log);
    }
    await this.loadProcedures();
    await this.hooks.load();
    await this.lifecycle?.schedules.sync();
    this.log.info({ procedures: this.registry.names().length }, 'procedures and hooks reloaded');
    this.emitSystemEvent({ type: 'procedures.reloaded', procedures: this.registry.names() });
  }

  private async doStop(): Promise<void> {
    if (this.current === 'stopped') {
      return;
    }
    const wasReady = this.current === 'ready';
    this.current = 'stopping';
    this.log.info('stopping: new executions are refused');
    await this.workers?.beginStop();
    this.workerRunner?.beginStop();
    if (wasReady) {
      await this.runHook('onServerShutdown').catch((err: unknown) =>
        this.log.error({ err }, 'onServerShutdown threw; stopping anyway'),
      );
    }
    this.shutdownController.abort();
    await this.lifecycle
      ?.close()
      .catch((err: unknown) => this.log.error({ err }, 'closing backups and schedules failed'));
    const graceEnds = Date.now() + this.settings.shutdownGraceMs;
    this.workers?.signalAll();
    this.workerRunner?.signalAll();
    const workersStopped = this.workerRunner?.stop(this.settings.shutdownGraceMs);
    if (this.workers) {
      const { finished, givenBack } = await this.workers.stop(
        this.settings.shutdownGraceMs,
        this.settings.redisTimeoutMs,
      );
      this.log.info({ finished, givenBack }, 'executions settled');
    }
    if (workersStopped) {
      this.log.info(await workersStopped, 'workers given back');
    }
    // onError calls still running (their ctx.signal has fired): the rest of the grace, at least a Redis time-out.
    if (this.onErrorCalls.size > 0) {
      await this.onErrorCalls.settle(Math.max(graceEnds - Date.now(), this.settings.redisTimeoutMs));
      this.log.info({ unfinished: this.onErrorCalls.size }, 'onError calls settled');
    }
    await this.release();
    this.current = 'stopped';
    this.log.info('stopped');
  }

  /** Loads jobs/ and checks the procedures' schedules (a bad one throws, naming its file). */
  private async loadProcedures(): Promise<void> {
    await this.registry.load();
    this.schedules = checkProcedureSchedules(this.registry);
  }

  /**
   * `part` when the node serves `access` now (see assertServes, the one readiness rule); without
   * `access`, only that the part exists (hooks use the session and executions while starting).
   */
  private part<T>(part: T | undefined, access?: Access): T {
    if (access !== undefined) {
      assertServes(this.current, access);
    }
    if (part === undefined) {
      throw new NotReadyError();
    }
    return part;
  }

  /** The command connection; throws NotReadyError before Redis is set up. */
  private redis(): RedisConnection {
    return this.part(this.command);
  }

  /** What the API needs of the node. */
  private apiContext(): ApiContext {
    const s = this.settings;
    return {
      name: this.name,
      settings: s,
      callers: this.callers,
      audit: () => this.part(this.auditTrail),
      log: this.log.child({ part: 'api' }),
      redisTimeoutMs: s.redisTimeoutMs,
      rateLimitRedis: () => ({ redis: this.redis(), keys: this.keys }),
      restoreMaxBytes: s.restoreMaxBytes,
      metrics: this.metrics.exposition,
      observeRequest: (method, route, status, ms) => this.metrics.onRequest(method, route, status, ms),
      tracing: this.tracing?.fastify,
      state: () => this.current,
      isReady: () => this.isReady(),
      executions: (access) => this.part(this.executions, access),
      workers: (access) => this.part(this.workerCalls, access),
      signals: () => this.part(this.sync, 'read').signals,
      semaphores: () => this.part(this.sync, 'read').semaphores,
      processes: () =>
        new ProcessControl(
          () => this.part(this.executions, 'read'),
          () => this.part(this.command, 'read'),
          this.keys,
        ),
      procedures: () => this.procedureListing(),
      procedureSchemas: () => this.registry.names().flatMap((name) => this.registry.get(name) ?? []),
      session: () => {
        const service = this.part(this.sessionService, 'read');
        return { describe: () => service.describe(), storage: service.session.storage };
      },
      liveNodes: () => liveNodes(this.part(this.command, 'read'), this.keys, s.nodeTimeoutMs),
      events: () => this.part(this.eventHub, 'read'),
      lockTimeoutMs: s.lockTimeoutMs,
      schedules: () => {
        const lifecycle = this.part(this.lifecycle, 'read');
        const command = this.part(this.command, 'read');
        const executions = this.part(this.executions, 'read');
        return readSchedules({
          schedulers: () => lifecycle.schedules.queue.getJobSchedulers(0, -1),
          backupHistory: () => readHistory(command, this.keys.backup.history, HISTORY_LIMIT),
          lastScheduledRun: async (procedure) =>
            (await executions.list({ name: `schedule:${procedure}`, limit: 1 })).items[0],
        });
      },
      backupRecord: async (number) =>
        (await readHistory(this.part(this.command, 'read'), this.keys.backup.history, HISTORY_LIMIT)).find(
          (r) => r.number === number,
        ),
      executionLogs: (number) => readExecutionLogs(this.part(this.command, 'read'), this.keys, number),
      executionAdmin: (access) =>
        new ExecutionAdmin(this.part(this.command, access), this.keys, this.part(this.executions, access)),
      storageAdmin: () => {
        const service = this.part(this.sessionService, 'read');
        const command = this.part(this.command, 'read');
        return {
          entries: (query) => storageReport(command, service.layout, query),
          replace: (key, value, expect) =>
            replaceEntry(service.sessionFor({ owner: 'console' }).storage, key, value, expect),
        };
      },
      stats: () => {
        const command = this.part(this.command, 'read');
        const executions = this.part(this.executions, 'read');
        const log = this.part(this.eventLog, 'read');
        return {
          counts: () => executions.counts(),
          // This node's own counts go to Redis first, so what it just ran shows at once.
          series: async (minutes) => {
            await this.series?.flush();
            return readSeries(command, this.keys.stats, minutes);
          },
          systemEvents: async (limit) =>
            (await log.newest('system', limit)).map((e) => e.data as unknown as SystemEvent),
        };
      },
      backups: (access) => {
        const lifecycle = this.part(this.lifecycle, access);
        return {
          status: (limit) => lifecycle.backups.status(limit),
          nextBackupAt: () => lifecycle.schedules.nextBackupAt(),
          runManual: () => lifecycle.backups.run('manual'),
          restore: (bytes) => lifecycle.restore(bytes),
        };
      },
    };
  }

  /**
   * GET /v1/procedures: each loaded procedure with its schedule's next ticks, its counts and failure
   * rate (src/stats/procedure-counts.ts; left out while Redis does not answer).
   */
  private async procedureListing(): Promise<ProcedureListing[]> {
    const listings = this.registry.list();
    const figures = this.command
      ? await withRedisTimeout(
          readProcedureFigures(
            this.command,
            this.keys,
            listings.map((l) => l.name),
          ),
          this.settings.redisTimeoutMs,
        ).catch(() => undefined)
      : undefined;
    return listings.map((listing) => {
      const schedule = this.schedules.get(listing.name);
      const out: ProcedureListing = { ...listing };
      if (schedule) {
        out.schedule = {
          cron: schedule.cron,
          ...(schedule.tz ? { tz: schedule.tz } : {}),
          next: nextTicks(schedule.cron, schedule.tz),
        };
      }
      const figure = figures?.get(listing.name);
      if (figure) {
        out.counts = figure.counts;
        out.failureRate = figure.failureRate;
      }
      return out;
    });
  }

  /** What the lifecycle (backups, restore, schedules) needs of the node. */
  private lifecycleHost(command: RedisConnection, executions: Executions): LifecycleHost {
    return {
      name: this.name,
      settings: this.settings,
      keys: this.keys,
      redis: command,
      log: this.log,
      runHook: (name, log, extra, ...args) =>
        this.hooks.run(name, log, (l) => ({ ...this.hookContext(l), ...extra }), ...args),
      emitSystemEvent: (event) => this.emitSystemEvent(event),
      publish: (type, data) => this.eventLog?.append(type, data),
      ...(this.acks ? { acks: this.acks } : {}),
      openWorkerConnection: () => this.open('worker'),
      procedureSchedules: () => this.schedules,
      hasProcedure: (name) => this.registry.get(name) !== undefined,
      executions,
    };
  }

  /** Runs a lifecycle hook of the node (onServerStartup, onServerShutdown, onSystemEvent). */
  private runHook(name: HookName, ...args: unknown[]): Promise<unknown> {
    return this.hooks.run(name, this.log, (log) => this.hookContext(log), ...args);
  }

  /** Emits a system event to this node's onSystemEvent hook (never throws). */
  private emitSystemEvent(event: { type: string } & Record<string, unknown>): void {
    const full: SystemEvent = { ...event, at: new Date().toISOString(), node: this.name };
    this.log.info({ event: full }, `system event ${event.type}`);
    this.eventLog?.append('system', full);
    if (this.hooks.has('onSystemEvent') && this.sessionService) {
      this.runHook('onSystemEvent', full).catch(() => undefined);
    }
  }

  /** The context a hook gets. */
  private hookContext(log: Logger): HookContext {
    return {
      session: this.session,
      log,
      signal: this.shutdownController.signal,
      node: this.name,
      // Hooks may queue while the node starts (onServerStartup) and stops (onServerShutdown).
      executeOnServer: executeOnServerWith(() => this.part(this.executions)),
      executeOnServerBatch: executeOnServerBatchWith(() => this.part(this.executions)),
      callWorker: async (worker, procedure, params) => {
        await this.part(this.workerCalls).call(worker, procedure, params);
      },
      killWorker: async (name) => {
        await this.part(this.workerCalls).killQuietly(name);
      },
    };
  }

  /** Opens a connection of `role`, counted so the node closes all it opened. */
  private open(role: ConnectionRole): RedisConnection {
    if (!this.redisUrl) {
      throw new NotReadyError();
    }
    const conn = openConnection(role, {
      url: this.redisUrl,
      timeoutMs: this.settings.redisTimeoutMs,
      name: `sprocd:${this.settings.prefix}:${this.name}`,
    });
    this.connections.push(conn);
    return conn;
  }

  private async waitForRedis(): Promise<void> {
    let warned = false;
    for (;;) {
      if (this.stopPromise) {
        throw new StoppingError();
      }
      try {
        await this.redis().ping();
        return;
      } catch (err) {
        if (!warned) {
          this.log.warn(
            { err: (err as Error).message, redis: redactUrl(this.redisUrl ?? '') },
            'waiting for Redis',
          );
          warned = true;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async subscribeControl(): Promise<void> {
    const sub = this.open('subscriber');
    const sync = this.sync;
    const channels = [this.keys.controlChannel, this.keys.workers.channel, ...(sync?.channels ?? [])];
    sub.on('message', (channel: string, payload: string) => {
      if (channel === this.keys.workers.channel) {
        this.workerRunner?.onNudge(payload);
        return;
      }
      if (channel !== this.keys.controlChannel) {
        sync?.onMessage(channel, payload);
        return;
      }
      try {
        const message = JSON.parse(payload) as ControlMessage;
        if (message.op === 'restored') {
          // A restore raised the counter past restored numbers and may have put back another session.
          this.executions?.forgetNumbers();
          this.sessionService?.describe().catch(() => undefined);
          return;
        }
        this.workers?.onControl(message);
      } catch (err) {
        this.log.warn({ err, payload }, 'bad control message');
      }
    });
    await sub.subscribe(...channels);
    // Back after a reconnect: once the channels are subscribed again (ioredis resubscribes first, and
    // this SUBSCRIBE is answered after it), signals, semaphores and pauses read what they may have missed.
    const resubscribed = () => {
      void sub
        .subscribe(...channels)
        .then(() => {
          this.workerRunner?.recheck();
          return Promise.all([sync?.recheck(), this.workers?.recheckPauses()]);
        })
        .catch((err: unknown) =>
          this.log.warn({ err }, 'signals, semaphores and pauses not re-read after a reconnect'),
        );
    };
    sub.on('ready', resubscribed);
    if (isCluster(sub)) {
      // A Cluster client subscribes through one node and moves to another when that node leaves,
      // without a 'ready': a node leaving may have cost messages too. A fail-over drops several node
      // connections in a row, so the re-read waits until they have stopped for a moment.
      let settle: NodeJS.Timeout | undefined;
      sub.on('-node', () => {
        clearTimeout(settle);
        settle = setTimeout(resubscribed, 500);
        settle.unref();
      });
    }
  }

  private async release(): Promise<void> {
    await this.lifecycle?.close().catch(() => undefined);
    this.heartbeat?.stop();
    await this.heartbeat?.leave().catch(() => undefined);
    this.sync?.stop();
    this.workerRunner?.beginStop();
    await this.workers?.close();
    await this.executions?.close();
    await this.sessionService?.close().catch(() => undefined);
    this.eventHub?.close();
    await this.series?.stop().catch(() => undefined);
    const api = this.api;
    this.api = undefined;
    await api?.close().catch(() => undefined);
    this.events?.close();
    this.acks?.close();
    await Promise.all(this.connections.map((c) => closeConnection(c)));
    this.connections = [];
    await this.embedded?.stop();
    await this.tracing?.flush().catch(() => undefined);
  }
}

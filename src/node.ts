/**
 * A sprocd node: wires settings, Redis, the session, procedures, hooks, workers and the API, and
 * owns the order in which they start and stop (DESIGN.md, "A node's life").
 */
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { buildApi, type Api } from './api/app.js';
import type { Settings } from './config.js';
import { NotReadyError, StoppingError } from './errors.js';
import { LifecycleHooks, type HookName } from './lifecycle/hooks.js';
import { startLifecycle, type LifecycleServices } from './lifecycle/index.js';
import { procedureSchedules } from './lifecycle/schedule.js';
import { Heartbeat, liveNodes } from './lifecycle/heartbeat.js';
import { SystemEvents, type SystemEvent } from './lifecycle/system-events.js';
import { redactUrl } from './logger.js';
import { NodeMetrics } from './metrics.js';
import { withRedisTimeout } from './redis/errors.js';
import { Executions, type ControlMessage } from './procedures/executions.js';
import { ProcedureRegistry } from './procedures/registry.js';
import { WorkerPool } from './procedures/worker-pool.js';
import { closeConnection, openConnection, type ConnectionRole } from './redis/connections.js';
import { startRedisServer, type RedisServer } from './redis/embedded.js';
import { createKeys, type Keys } from './redis/keys.js';
import { openSession, type SessionService } from './session/index.js';
import type { ExecuteOptions, HookContext, Session } from './types.js';

/** Where a node is in its life. */
export type NodeState = 'starting' | 'ready' | 'stopping' | 'stopped';

/** A running node. */
export class SprocdNode {
  state: NodeState = 'starting';
  readonly keys: Keys;
  readonly registry: ProcedureRegistry;
  readonly hooks: LifecycleHooks;
  api: Api | undefined;
  executions: Executions | undefined;
  sessionService: SessionService | undefined;
  redisUrl: string | undefined;
  private embedded: RedisServer | undefined;
  private connections: Redis[] = [];
  private command: Redis | undefined;
  private workers: WorkerPool | undefined;
  private heartbeat: Heartbeat | undefined;
  private events: SystemEvents | undefined;
  /** Prometheus metrics (GET /metrics). */
  readonly metrics: NodeMetrics;
  /** Backups, restore and schedules (src/lifecycle/index.ts). */
  lifecycle: LifecycleServices | undefined;
  private readonly shutdownController = new AbortController();
  private stopPromise: Promise<void> | undefined;

  constructor(
    readonly settings: Settings,
    readonly log: Logger,
  ) {
    this.keys = createKeys(settings.prefix);
    this.registry = new ProcedureRegistry(settings.jobsDir);
    this.hooks = new LifecycleHooks(settings.lifecycleDir);
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

  /** The shared session; throws NotReadyError before the node has opened it. */
  get session(): Session {
    if (!this.sessionService) {
      throw new NotReadyError();
    }
    return this.sessionService.session;
  }

  /** The command connection; throws NotReadyError before Redis is set up. */
  get redis(): Redis {
    if (!this.command) {
      throw new NotReadyError();
    }
    return this.command;
  }

  /** Executions, once the node can queue them; refuses while starting and stopping. */
  executionsForRequests(): Executions {
    if (this.state === 'stopping' || this.state === 'stopped') {
      throw new StoppingError();
    }
    if (this.state !== 'ready' || !this.executions) {
      throw new NotReadyError();
    }
    return this.executions;
  }

  /** Executions for reads, abort and wake: allowed while stopping, not before the start is done. */
  executionsReadable(): Executions {
    if (!this.executions || this.state === 'starting' || this.state === 'stopped') {
      throw new NotReadyError();
    }
    return this.executions;
  }

  /** Whether the node answers /readyz with 200: started, not stopping, and Redis answering. */
  async isReady(): Promise<{ ready: boolean; reason?: string }> {
    if (this.state !== 'ready') {
      return { ready: false, reason: this.state };
    }
    try {
      await this.redis.ping();
      return { ready: true };
    } catch {
      return { ready: false, reason: 'redis unavailable' };
    }
  }

  /**
   * Starts the node: API (health only) → jobs/ and lifecycle/ → Redis → session → onServerStartup →
   * workers → ready. Throws (and cleans up) when any step fails.
   */
  async start(): Promise<void> {
    const s = this.settings;
    try {
      this.api = await buildApi(this);
      await this.api.listen();
      this.log.info({ url: this.api.url }, 'api listening');
      if (!s.token) {
        this.log.warn(`No SPROCD_TOKEN: the API listens on ${s.host} (loopback) only and asks for no token.`);
      }
      await this.registry.load();
      procedureSchedules(this.registry); // a bad `schedule` stops the start before anything opens
      await this.hooks.load();
      this.log.info({ procedures: this.registry.names().length, jobsDir: s.jobsDir }, 'procedures loaded');

      if (s.redisUrl) {
        this.redisUrl = s.redisUrl;
      } else {
        this.embedded = await startRedisServer({ dir: path.join(s.dataDir, 'redis') });
        this.redisUrl = this.embedded.url;
        this.log.info({ dir: this.embedded.dir, port: this.embedded.port }, 'embedded redis-server started');
      }
      this.command = this.open('command');
      this.events = new SystemEvents(this, this.command);
      await this.waitForRedis();
      this.log.info({ redis: redactUrl(this.redisUrl) }, 'connected to Redis');

      this.sessionService = await openSession({
        command: this.command,
        redisUrl: this.redisUrl,
        keys: this.keys,
        userName: s.userName,
        lockLeaseMs: s.lockLeaseMs,
        lockTimeoutMs: s.lockTimeoutMs,
        maxEntryBytes: s.storageMaxEntryBytes,
        connectionName: `sprocd:${s.prefix}:${this.name}`,
        logger: this.log.child({ part: 'session' }),
      });
      this.executions = new Executions(this.command, this.keys, this.registry, s, () => this.open('events'));

      await this.runHook('onServerStartup');
      // A stop asked for while the startup hook ran: start nothing more (stop() releases what is open).
      if (this.stopPromise) {
        throw new StoppingError();
      }

      this.workers = new WorkerPool({
        connection: this.open('worker'),
        keys: this.keys,
        registry: this.registry,
        executions: this.executions,
        session: () => this.session,
        logger: this.log,
        node: this.name,
        concurrency: s.concurrency,
        executionLeaseMs: s.executionLeaseMs,
        maxRecoveries: s.maxRecoveries,
        observer: this.metrics,
        onRecovered: (number) => this.emitSystemEvent({ type: 'execution.recovered', execution: number }),
        elsewhere: async (procedure) =>
          (await liveNodes(this.redis, this.keys, s.nodeTimeoutMs)).some(
            (n) => n.node !== this.name && n.procedures?.includes(procedure),
          ),
      });
      await this.subscribeControl();
      await this.workers.start();
      this.heartbeat = new Heartbeat(this, this.command, () => this.workers?.activeCount ?? 0);
      await this.heartbeat.start();
      this.lifecycle = await startLifecycle(this);
      this.state = 'ready';
      this.log.info({ url: this.api.url, node: this.name, concurrency: s.concurrency }, 'sprocd node ready');
    } catch (err) {
      if (this.stopPromise) {
        // The caller asked for the stop, so this is not a failed start. stop() released what was open
        // when it ran; release again for what the start opened after that (an embedded Redis, say).
        await this.stopPromise;
        await this.release();
        return;
      }
      this.state = 'stopped';
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

  private async doStop(): Promise<void> {
    if (this.state === 'stopped') {
      return;
    }
    const wasReady = this.state === 'ready';
    this.state = 'stopping';
    this.log.info('stopping: new executions are refused');
    await this.workers?.beginStop();
    if (wasReady) {
      await this.runHook('onServerShutdown').catch((err: unknown) =>
        this.log.error({ err }, 'onServerShutdown threw; stopping anyway'),
      );
    }
    this.shutdownController.abort();
    await this.lifecycle
      ?.close()
      .catch((err: unknown) => this.log.error({ err }, 'closing backups and schedules failed'));
    this.workers?.signalAll();
    if (this.workers) {
      const { finished, givenBack } = await this.workers.stop(
        this.settings.shutdownGraceMs,
        this.settings.redisTimeoutMs,
      );
      this.log.info({ finished, givenBack }, 'executions settled');
    }
    await this.release();
    this.state = 'stopped';
    this.log.info('stopped');
  }

  /** Reloads jobs/ and lifecycle/ (SIGHUP): new executions use the new code, running ones keep the old. */
  async reload(): Promise<void> {
    await this.registry.load();
    await this.hooks.load();
    await this.lifecycle?.schedules.sync();
    this.log.info({ procedures: this.registry.names().length }, 'procedures and hooks reloaded');
    this.emitSystemEvent({ type: 'procedures.reloaded', procedures: this.registry.names() });
  }

  /** Runs a lifecycle hook in the stored-procedure session. */
  async runHook(name: HookName, ...args: unknown[]): Promise<unknown> {
    if (!this.hooks.has(name)) {
      return undefined;
    }
    const log = this.log.child({ hook: name });
    const started = Date.now();
    try {
      const result = await this.hooks.run(name, this.hookContext(log), ...args);
      log.info({ durationMs: Date.now() - started }, 'hook done');
      return result;
    } catch (err) {
      log.error({ err, durationMs: Date.now() - started }, 'hook threw');
      throw err;
    }
  }

  /** Emits a system event to this node's onSystemEvent hook (never throws). */
  emitSystemEvent(event: { type: string } & Record<string, unknown>): void {
    const full: SystemEvent = { ...event, at: new Date().toISOString(), node: this.name };
    this.log.info({ event: full }, `system event ${event.type}`);
    if (this.hooks.has('onSystemEvent') && this.sessionService) {
      this.runHook('onSystemEvent', full).catch(() => undefined);
    }
  }

  /** The context a hook gets. */
  hookContext(log: Logger): HookContext {
    return {
      session: this.session,
      log,
      signal: this.shutdownController.signal,
      node: this.name,
      executeOnServer: async (procedure: string, params?: unknown, options?: ExecuteOptions) => {
        if (!this.executions) {
          throw new NotReadyError();
        }
        const { execution, existing } = await this.executions.execute(procedure, params, options);
        return { ...execution, existing };
      },
    };
  }

  /** Opens a connection of `role`, counted so the node closes all it opened. */
  open(role: ConnectionRole): Redis {
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
        await this.redis.ping();
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
    sub.on('message', (channel: string, payload: string) => {
      if (channel !== this.keys.controlChannel) {
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
    await sub.subscribe(this.keys.controlChannel);
  }

  private async release(): Promise<void> {
    await this.lifecycle?.close().catch(() => undefined);
    this.heartbeat?.stop();
    await this.heartbeat?.leave().catch(() => undefined);
    await this.workers?.close();
    await this.executions?.close();
    await this.sessionService?.close().catch(() => undefined);
    const api = this.api;
    this.api = undefined;
    await api?.close().catch(() => undefined);
    this.events?.close();
    await Promise.all(this.connections.map((c) => closeConnection(c)));
    this.connections = [];
    await this.embedded?.stop();
  }
}

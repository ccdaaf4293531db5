/**
 * The HTTP API (fastify): health routes that answer from the first moment, and /metrics and /v1
 * behind the bearer token. Routes live one plugin per resource, each declaring what it needs of the
 * node as its options; node.ts assembles them into one {@link ApiContext}. Errors are mapped once,
 * in ./errors.ts. Requests are checked by the routes' zod schemas (./schemas/), which also make the
 * OpenAPI document (./openapi.ts).
 */
import Fastify, {
  type FastifyInstance,
  type FastifyPluginCallback,
  type FastifyReply,
  type RouteOptions,
} from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import type { AuditTrail } from '../auth/audit.js';
import { CallerDirectory } from '../auth/callers.js';
import { auditRoutes, type AuditRouteDeps } from './audit.js';
import { guardRoutes } from './auth.js';
import { backupRoutes, type BackupsRouteDeps } from './backups.js';
import { consoleRoutes } from './console.js';
import { fail, toHttpError } from './errors.js';
import { eventRoutes, type EventsRouteDeps } from './events.js';
import { statsRoutes, type StatsRouteDeps } from './stats.js';
import { sessionEntriesRoutes, type SessionEntriesRouteDeps } from './session-entries.js';
import { executionAdminRoutes, type ExecutionAdminRouteDeps } from './execution-admin.js';
import { executionLogRoutes, type ExecutionLogsRouteDeps } from './execution-logs.js';
import { scheduleRoutes, type SchedulesRouteDeps } from './schedules.js';
import { executionRoutes, type ExecutionsRouteDeps } from './executions.js';
import { healthRoutes, type HealthRouteDeps } from './health.js';
import {
  WaitGate,
  guardConnections,
  registerRateLimit,
  retryAfterOf,
  serverOptions,
  type LimitSettings,
  type LimitsDeps,
} from './limits.js';
import { metricsRoutes, type MetricsRouteDeps } from './metrics.js';
import { nodeRoutes, type NodesRouteDeps } from './nodes.js';
import { registerOpenApi, type OpenApiRouteDeps } from './openapi.js';
import { procedureRoutes, type ProceduresRouteDeps } from './procedures.js';
import { processRoutes, type ProcessesRouteDeps } from './processes.js';
import { sessionRoutes, type SessionRouteDeps } from './session.js';
import { syncRoutes, type SyncRouteDeps } from './sync.js';
import { jsonSerializerCompiler, zodValidatorCompiler } from './validation.js';
import { workerRoutes, type WorkersRouteDeps } from './workers.js';

/** Everything the API needs of its node: what each route plugin declares, and how to listen. */
export interface ApiContext
  extends
    HealthRouteDeps,
    MetricsRouteDeps,
    ExecutionsRouteDeps,
    ProcessesRouteDeps,
    ProceduresRouteDeps,
    SessionRouteDeps,
    NodesRouteDeps,
    BackupsRouteDeps,
    EventsRouteDeps,
    StatsRouteDeps,
    SessionEntriesRouteDeps,
    ExecutionAdminRouteDeps,
    ExecutionLogsRouteDeps,
    SchedulesRouteDeps,
    AuditRouteDeps,
    WorkersRouteDeps,
    SyncRouteDeps,
    OpenApiRouteDeps,
    LimitsDeps {
  /**
   * Where to listen, the body limit, the bearer token (none: every request passes), and the limits
   * (./limits.ts; a missing one sets none).
   */
  readonly settings: Pick<Settings, 'host' | 'port' | 'token' | 'bodyLimit'> & Partial<LimitSettings>;
  /** Who may call (src/auth/callers.ts); absent: SPROCD_TOKEN of `settings` alone. */
  readonly callers?: CallerDirectory;
  /** The audit trail state-changing routes write to; absent: nothing is recorded. */
  readonly audit?: () => AuditTrail;
  /** Unexpected errors (500) are logged here. */
  readonly log: Logger;
  /** Told of every answer (metrics): the route's pattern (undefined when none matched), never the URL. */
  readonly observeRequest?: (method: string, route: string | undefined, status: number, ms: number) => void;
  /** While tracing is on (src/tracing), the @fastify/otel plugin: one span per request. */
  readonly tracing?: FastifyPluginCallback;
}

/** The node's HTTP server. */
export interface Api {
  readonly app: FastifyInstance;
  /** The URL it listens on (after listen()). */
  readonly url: string;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link buildApi}. */
export interface BuildOptions {
  /** Called for each route as it is registered (the OpenAPI test checks every one is documented). */
  onRoute?: (route: RouteOptions) => void;
}

/** Builds the API on `ctx` (not listening yet). */
export async function buildApi(ctx: ApiContext, options: BuildOptions = {}): Promise<Api> {
  const s = ctx.settings;
  const app = Fastify({
    // Time-outs for slow clients (./limits.ts).
    ...serverOptions(s),
    bodyLimit: s.bodyLimit,
    // A path parameter may be a whole worker name (255 characters, each up to 12 once percent-encoded);
    // fastify's default of 100 would answer 414 before the name's own rules could say what is wrong.
    routerOptions: { maxParamLength: 4096 },
    // Requests are not logged one by one (executions are); unexpected errors are, below.
    logger: false,
    return503OnClosing: true,
    // Errors fastify raises before a route runs (a URL that does not decode) get our error shape too.
    frameworkErrors: (err, _request, reply) => {
      const { status, body } = toHttpError(err);
      void (reply as unknown as FastifyReply).status(status).send(body);
    },
  });
  guardConnections(app, s, ctx.log);
  if (options.onRoute) {
    app.addHook('onRoute', options.onRoute);
  }
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(jsonSerializerCompiler);
  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toHttpError(err);
    if (body.error.code === 'INTERNAL') {
      ctx.log.error({ err, method: request.method, url: request.url }, 'request failed');
    }
    const retryAfter = retryAfterOf(err);
    if (retryAfter !== undefined) {
      void reply.header('retry-after', String(retryAfter));
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const { status, body } = fail('NOT_FOUND', `No route ${request.method} ${request.url}.`);
    void reply.status(status).send(body);
  });

  const observe = ctx.observeRequest;
  if (observe) {
    app.addHook('onResponse', (request, reply, done) => {
      observe(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime);
      done();
    });
  }
  // Before any route: the plugin wraps the routes registered after it.
  if (ctx.tracing) {
    await app.register(ctx.tracing);
  }
  // First: the document's generator sees only the routes registered after it.
  await registerOpenApi(app, ctx);
  await app.register(healthRoutes, ctx);
  await app.register(consoleRoutes);
  await app.register(async (secured) => {
    // Scopes, the audit trail, and without a token loopback and same-origin only (./auth.ts).
    guardRoutes(secured, {
      callers: ctx.callers ?? new CallerDirectory({ token: s.token }),
      audit: ctx.audit,
      node: ctx.name,
      log: ctx.log,
    });
    // After the token check above: each caller has its own rate limit.
    await registerRateLimit(secured, ctx);
    await secured.register(metricsRoutes, ctx);
    await secured.register(
      async (v1) => {
        await v1.register(executionRoutes, {
          ...ctx,
          waits: s.maxWaits ? new WaitGate(s.maxWaits) : undefined,
        });
        await v1.register(procedureRoutes, ctx);
        await v1.register(sessionRoutes, ctx);
        await v1.register(nodeRoutes, ctx);
        await v1.register(backupRoutes, ctx);
        await v1.register(eventRoutes, ctx);
        await v1.register(statsRoutes, ctx);
        await v1.register(sessionEntriesRoutes, ctx);
        await v1.register(executionAdminRoutes, ctx);
        await v1.register(executionLogRoutes, ctx);
        await v1.register(processRoutes, ctx);
        await v1.register(scheduleRoutes, ctx);
        await v1.register(auditRoutes, ctx);
        await v1.register(workerRoutes, ctx);
        await v1.register(syncRoutes, ctx);
      },
      { prefix: '/v1' },
    );
  });

  let url = '';
  return {
    app,
    get url() {
      return url;
    },
    async listen() {
      url = await app.listen({ host: s.host, port: s.port });
      const address = app.server.address();
      if (address && typeof address === 'object') {
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        url = `http://${host}:${address.port}`;
      }
    },
    async close() {
      await app.close();
    },
  };
}

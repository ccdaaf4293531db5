/**
 * What keeps clients from exhausting a node: the HTTP server's time-outs (a request's headers, a
 * whole request, an idle connection) and its cap on connections, a per-caller rate limit counted in
 * Redis by every node together, and the cap on requests waiting for an execution to end. Each
 * refusal has its code, and Retry-After says when to try again. See
 * docs/ARCHITECTURE.md#bounded-resources.
 *
 * The rate limit is not counted in Redis request by request: each node counts locally and adds its
 * counts to the shared counter in batches, asking Redis for every request only near the limit
 * (./rate-counts.ts). A cluster can so admit a little more than SPROCD_RATE_LIMIT in a window: at
 * most `nodes × batch` more, the batch being 1 % of the limit (0 under a limit of 100, which is
 * then exact).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { SprocdError } from '../errors.js';
import type { Keys } from '../redis/keys.js';
import { withRedisTimeout } from '../redis/errors.js';
import { rateLimitAdd } from '../redis/scripts.js';
import { RateCounts } from './rate-counts.js';
import { MAX_WAIT_MS, isBatchBody } from './schemas/executions.js';

/** The settings of the limits. */
export type LimitSettings = Pick<
  Settings,
  | 'rateLimit'
  | 'rateLimitWindowMs'
  | 'maxWaits'
  | 'maxConnections'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
>;

/** What the limits need of the node. */
export interface LimitsDeps {
  /** The limits' settings; a missing one sets no limit (fastify's own default). */
  readonly settings: Partial<LimitSettings>;
  /**
   * Where the rate-limit counters live: the node's command connection and keys. Throws while the
   * node has none; requests then pass uncounted, as they do when Redis fails to answer.
   */
  readonly rateLimitRedis?: () => { redis: RedisConnection; keys: Keys };
  readonly log: Logger;
}

/** A socket that moves no byte for this long is closed: longer than the longest `wait`. */
const IDLE_SOCKET_MS = MAX_WAIT_MS + 60_000;

/** A caller sent more requests in a window than SPROCD_RATE_LIMIT allows (429). */
export class RateLimitedError extends SprocdError {
  constructor(limit: number, windowMs: number, retryAfterSeconds: number) {
    super(
      'RATE_LIMITED',
      `More than ${limit} requests in ${windowMs} ms from this caller (SPROCD_RATE_LIMIT, SPROCD_RATE_LIMIT_WINDOW_MS); retry in ${retryAfterSeconds} s.`,
      { details: { limit, windowMs, retryAfterSeconds } },
    );
  }
}

/** The node already holds SPROCD_MAX_WAITS requests waiting for an execution (503). */
export class TooManyWaitsError extends SprocdError {
  constructor(max: number) {
    super(
      'TOO_MANY_WAITS',
      `This node already holds ${max} requests waiting for an execution to end (SPROCD_MAX_WAITS); nothing was queued. Retry later, or send the request without \`wait\` and follow the execution (GET /v1/executions/:number, /v1/events).`,
      { details: { max, retryAfterSeconds: 1 } },
    );
  }
}

/** The seconds an error's answer gives in Retry-After (its `details.retryAfterSeconds`), if any. */
export function retryAfterOf(err: unknown): number | undefined {
  if (err instanceof SprocdError) {
    const seconds = (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    return typeof seconds === 'number' ? seconds : undefined;
  }
  return undefined;
}

/** The time-outs of the HTTP server, as fastify takes them (none without the settings). */
export function serverOptions(s: Partial<LimitSettings>): {
  http?: ServerOptions;
  requestTimeout?: number;
  keepAliveTimeout?: number;
  connectionTimeout?: number;
} {
  const options: ReturnType<typeof serverOptions> = {};
  if (s.headersTimeoutMs !== undefined) {
    options.http = {
      headersTimeout: s.headersTimeoutMs,
      // Node looks for late headers every connectionsCheckingInterval (30 s by default).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(s.headersTimeoutMs / 4))),
    };
    options.connectionTimeout = IDLE_SOCKET_MS;
  }
  if (s.requestTimeoutMs !== undefined) {
    options.requestTimeout = s.requestTimeoutMs;
  }
  if (s.keepAliveTimeoutMs !== undefined) {
    options.keepAliveTimeout = s.keepAliveTimeoutMs;
  }
  return options;
}

/**
 * Guards the connections of `app`'s server: past SPROCD_MAX_CONNECTIONS Node closes new ones at once
 * (logged); a connection that sends no request within SPROCD_HEADERS_TIMEOUT_MS is closed (Node's
 * own headers time-out only starts with the first byte); and when the app closes, the connections
 * that never sent a request are closed, and the others as their answer ends, instead of holding
 * the close.
 */
export function guardConnections(app: FastifyInstance, s: Partial<LimitSettings>, log: Logger): void {
  const server = app.server;
  if (s.maxConnections !== undefined) {
    const max = s.maxConnections;
    server.maxConnections = max;
    let lastWarning = 0;
    server.on('drop', () => {
      // One line a minute at most: a flood must not flood the log as well.
      if (Date.now() - lastWarning > 60_000) {
        lastWarning = Date.now();
        log.warn({ maxConnections: max }, 'connection refused: SPROCD_MAX_CONNECTIONS reached');
      }
    });
  }
  const quiet = new Set<Socket>();
  let closing = false;
  server.on('connection', (socket: Socket) => {
    quiet.add(socket);
    socket.once('close', () => quiet.delete(socket));
    if (s.headersTimeoutMs !== undefined) {
      socket.setTimeout(s.headersTimeoutMs);
    }
  });
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (quiet.delete(request.socket) && s.headersTimeoutMs !== undefined) {
      request.socket.setTimeout(IDLE_SOCKET_MS);
    }
    // Node's close ends the connections idle at that moment only: one whose answer ends later is
    // ended then, or it would hold the close until its keep-alive time-out.
    response.once('finish', () => {
      if (closing) {
        request.socket.end();
      }
    });
  });
  app.addHook('preClose', (done) => {
    closing = true;
    quiet.forEach((socket) => socket.destroy());
    done();
  });
}

/**
 * The key a request counts under: its caller (src/auth), else a hash of its Authorization header,
 * else its client address.
 */
export function callerKey(request: FastifyRequest): string {
  const caller = (request as { caller?: { name: string } | null }).caller;
  if (caller) {
    return `caller:${caller.name}`;
  }
  const header = request.headers.authorization;
  if (header) {
    return `token:${createHash('sha256').update(header).digest('hex').slice(0, 32)}`;
  }
  return `address:${request.ip}`;
}

/** How long a rate-limit count waits for Redis before its requests pass uncounted. */
const COUNT_TIMEOUT_MS = 250;
/** How long requests pass uncounted after Redis failed to answer a count. */
const COUNT_PAUSE_MS = 2000;

/**
 * Adds the per-caller rate limit to the routes of `scope`: an onRequest hook counting through
 * ./rate-counts.ts (locally, and in Redis in batches through rateLimitAdd-1.lua). Added after the
 * scope's token check, it runs after it, so the caller is known. Every answer gets
 * `x-ratelimit-limit`, `-remaining` and `-reset` (seconds); one past the limit is 429 RATE_LIMITED
 * with Retry-After (app.ts's error handler).
 */
export async function registerRateLimit(scope: FastifyInstance, deps: LimitsDeps): Promise<void> {
  const { rateLimit: max, rateLimitWindowMs: window } = deps.settings;
  const target = deps.rateLimitRedis;
  if (!max || !window || !target) {
    return;
  }
  const windowMs: number = window;
  let countingPausedUntil = 0;
  const paused = new Error('Redis did not answer a rate-limit count lately; request not counted');
  const counts = new RateCounts({
    limit: max,
    windowMs,
    async add(key, n) {
      // A Redis that is away (or frozen) must not add its time-out to the route's own: the requests
      // pass uncounted at once and the route answers REDIS_UNAVAILABLE if it needs Redis. After a
      // count that failed, requests pass uncounted for a while instead of each paying the wait again.
      if (Date.now() < countingPausedUntil) {
        throw paused;
      }
      try {
        const { redis, keys } = target();
        if (redis.status !== 'ready') {
          throw new Error('Redis is not answering; request not counted');
        }
        return await withRedisTimeout(rateLimitAdd(redis, keys, key, n, windowMs), COUNT_TIMEOUT_MS);
      } catch (err) {
        countingPausedUntil = Math.max(countingPausedUntil, Date.now() + COUNT_PAUSE_MS);
        throw err;
      }
    },
  });
  scope.addHook('onClose', async () => {
    counts.close();
    await counts.flushAll();
  });
  const limitHeader = String(max);
  /** Answers a request past the limit, or sets the headers and lets it go on. */
  const decide = (reply: FastifyReply, current: number, ttlMs: number, done: (err?: Error) => void): void => {
    const reset = Math.ceil(ttlMs / 1000);
    void reply.header('x-ratelimit-limit', limitHeader);
    void reply.header('x-ratelimit-remaining', current > max ? '0' : String(max - current));
    void reply.header('x-ratelimit-reset', String(reset));
    done(current > max ? new RateLimitedError(max, windowMs, Math.max(1, reset)) : undefined);
  };
  // A hook of the scope, added after its token check: the caller is known. Most requests are
  // decided here without waiting for anything.
  scope.addHook('onRequest', (request, reply, done) => {
    // Redis unreachable: the request passes uncounted, and the route answers REDIS_UNAVAILABLE if it
    // needs Redis.
    if (Date.now() < countingPausedUntil) {
      decide(reply, 0, 0, done);
      return;
    }
    const counted = counts.count(callerKey(request));
    if (counted instanceof Promise) {
      counted.then(
        ({ current, ttlMs }) => decide(reply, current, ttlMs, done),
        () => decide(reply, 0, 0, done),
      );
    } else {
      decide(reply, counted.current, counted.ttlMs, done);
    }
  });
  // A batch's weight is known once its body is parsed: the rest of it is counted then, before
  // anything is queued (the request itself counted one above).
  scope.addHook('preHandler', (request, reply, done) => {
    const extra = requestWeight(request.method, request.routeOptions.url, request.body) - 1;
    if (extra <= 0 || Date.now() < countingPausedUntil) {
      done();
      return;
    }
    const counted = counts.count(callerKey(request), extra);
    if (counted instanceof Promise) {
      counted.then(
        ({ current, ttlMs }) => decide(reply, current, ttlMs, done),
        () => decide(reply, 0, 0, done),
      );
    } else {
      decide(reply, counted.current, counted.ttlMs, done);
    }
  });
}

/**
 * A batch of executions counts as one request per this many executions (rounded up): a batch costs
 * the node far less than as many requests, and Redis about as much per execution as a request does,
 * so a caller that batches gets more done within its limit without escaping it.
 */
export const EXECUTIONS_PER_COUNTED_REQUEST = 10;

/** How many requests a request counts as: 1, or for a batch of executions its share (see above). */
export function requestWeight(method: string, url: string | undefined, body: unknown): number {
  if (method !== 'POST' || url !== '/v1/executions' || !isBatchBody(body)) {
    return 1;
  }
  return Math.max(1, Math.ceil(body.executions.length / EXECUTIONS_PER_COUNTED_REQUEST));
}

/** The cap on requests of this node waiting for an execution to end (SPROCD_MAX_WAITS). */
export class WaitGate {
  private open = 0;

  constructor(private readonly max: number) {}

  /** Requests waiting now. */
  get size(): number {
    return this.open;
  }

  /** Takes a place, or throws TooManyWaitsError; call the returned function to give it back. */
  enter(): () => void {
    if (this.open >= this.max) {
      throw new TooManyWaitsError(this.max);
    }
    this.open++;
    let left = false;
    return () => {
      if (!left) {
        left = true;
        this.open--;
      }
    };
  }
}

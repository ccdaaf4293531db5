/**
 * The guard of every route behind the token (/v1 and /metrics), as hooks of their fastify scope:
 *
 * - at registration, each route must have a rule in src/auth/route-scopes.ts (else the API does not
 *   build), and its OpenAPI answers gain 403 and the scope it needs;
 * - on a node without a token, a request must be addressed to a loopback host and come from the same
 *   origin (`Host`, `Origin`, `Sec-Fetch-Site`): a web page cannot drive the node (DNS rebinding, CSRF);
 * - the bearer token names the caller (401 when it names none), set on `request.caller`;
 * - the caller must hold the route's scope (403 naming the scope), and for `execute:PATTERN` the
 *   procedure must match (checked once the body is parsed, before it is validated);
 * - a route that changes state appends an audit entry naming the caller before the answer leaves.
 *
 * All of it runs before the body is read, except the procedure check and the audit entry.
 */
import type {
  FastifyInstance,
  FastifyRequest,
  onSendHookHandler,
  preSerializationHookHandler,
  preValidationHookHandler,
} from 'fastify';
import type { Logger } from 'pino';
import type { AuditTrail } from '../auth/audit.js';
import type { Caller, CallerDirectory } from '../auth/callers.js';
import { CrossSiteRequestError, ForbiddenError, HostNotAllowedError } from '../auth/errors.js';
import { ruleOf } from '../auth/route-scopes.js';
import { isLoopbackHost } from '../config.js';
import { errors } from './schemas/common.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who sent the request (routes behind the token; null elsewhere, and before the guard ran).
     * Per-caller limits key on `caller.name`.
     */
    caller: Caller | null;
  }
}

/** What the guard needs of the node. */
export interface GuardOptions {
  /** The callers (SPROCD_TOKEN and the callers file; none: loopback only). */
  readonly callers: CallerDirectory;
  /** The audit trail; throws NotReadyError until Redis is there. Without it, nothing is recorded. */
  readonly audit?: () => AuditTrail;
  /** The node's name, written in each audit entry. */
  readonly node: string;
  /** Where refusals (403) and audit entries that could not be written are logged. */
  readonly log: Logger;
}

/** Requests whose caller passed the scope check: the ones an audit entry is written for. */
const allowed = new WeakSet<FastifyRequest>();
/** The answer of an audited route as an object, kept before it is serialized: not parsed back. */
const answers = new WeakMap<FastifyRequest, unknown>();

const FORBIDDEN_ANSWER = errors(403)[403];

/** `METHOD url` of a route, as the table and the messages name it. */
function routeName(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url}`;
}

/** The host part (`name:port`) of an origin or Host header, normalised; undefined when unreadable. */
function originHost(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses what a web page could send to a node without a token: a `Host` that is not loopback (a
 * rebound DNS name), and a request from another origin (`Origin` or `Sec-Fetch-Site` say so).
 */
function refuseForeign(request: FastifyRequest): void {
  const host = request.headers.host;
  if (host === undefined || !isLoopbackHost(host)) {
    throw new HostNotAllowedError();
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new CrossSiteRequestError(`Sec-Fetch-Site: ${String(site).slice(0, 20)}`);
  }
  const origin = request.headers.origin;
  if (origin !== undefined) {
    const from = originHost(origin);
    if (from === undefined || from !== originHost(`http://${host}`)) {
      throw new CrossSiteRequestError('its Origin is another site');
    }
  }
}

/** A route's hooks of one kind as a list (fastify takes one function or several). */
function hookList<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

/**
 * Guards the routes of `app` (the scope behind the token): see the module comment. The caller and
 * scope check is a hook of the scope, so that what is registered after it (rate limits) sees
 * `request.caller`; the procedure check and the audit entry are hooks of the routes that need them
 * only, so the others pay nothing for them.
 */
export function guardRoutes(app: FastifyInstance, options: GuardOptions): void {
  const { callers, log } = options;
  app.decorateRequest('caller', null);

  const refuse = (request: FastifyRequest, caller: Caller, scope: string, what: string): never => {
    log.warn({ caller: caller.name, scope, route: routeName(request) }, 'request refused: scope missing');
    throw new ForbiddenError(caller.name, scope, what);
  };

  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    for (const method of methods) {
      const rule = ruleOf(method, route.url);
      if (rule === undefined) {
        throw new Error(
          `Route ${method} ${route.url} has no scope: add it to ROUTE_SCOPES in src/auth/route-scopes.ts.`,
        );
      }
      const schema = route.schema as { description?: string; response?: Record<number, unknown> } | undefined;
      if (schema?.response && method !== 'HEAD') {
        schema.response[403] ??= FORBIDDEN_ANSWER;
        const needs = `Needs the \`${rule.scope}\` scope.`;
        schema.description = schema.description ? `${schema.description} ${needs}` : needs;
      }
    }
    const rule = ruleOf(methods[0]!, route.url)!;
    const procedureOf = rule.procedure;
    if (procedureOf) {
      // Once the body is parsed, before it is validated: a refused procedure is 403 whatever the rest.
      const check: preValidationHookHandler = (request, _reply, done) => {
        const caller = request.caller;
        // A batch names several: each must be allowed, or none is queued.
        for (const procedure of [procedureOf(request.body)].flat()) {
          if (caller && typeof procedure === 'string' && !caller.grants.allowsProcedure(procedure)) {
            allowed.delete(request);
            refuse(request, caller, `execute:${procedure}`, `procedure ${procedure}`);
          }
        }
        done();
      };
      route.preValidation = [...hookList(route.preValidation), check];
    }
    const audit = options.audit;
    const action = rule.audit;
    if (audit && action) {
      const keep: preSerializationHookHandler<unknown> = (request, _reply, payload, done) => {
        answers.set(request, payload);
        done(null, payload);
      };
      const record: onSendHookHandler = async (request, reply, payload) => {
        // A 5xx changed nothing to record (Redis away, a full queue, a stop), and waiting for an
        // absent Redis here would double the time the caller waits for its error.
        if (!allowed.delete(request) || reply.statusCode >= 500) {
          return payload;
        }
        const entry = {
          caller: request.caller?.name ?? '?',
          action,
          status: reply.statusCode,
          node: options.node,
          ip: request.ip,
          details: rule.describe?.({
            params: (request.params ?? {}) as Record<string, unknown>,
            query: (request.query ?? {}) as Record<string, unknown>,
            body: request.body,
            // What a refusal or failure answered is in its status; only a success's answer is read.
            answer: reply.statusCode < 300 ? answerOf(request, payload) : undefined,
          }),
        };
        try {
          await audit().record(entry);
        } catch (err) {
          // The change is made: the answer goes out, and the log keeps what the trail could not.
          log.error({ err, audit: entry }, 'audit entry not recorded');
        }
        return payload;
      };
      route.preSerialization = [...hookList(route.preSerialization), keep];
      route.onSend = [...hookList(route.onSend), record];
    }
  });

  app.addHook('onRequest', (request, _reply, done) => {
    if (callers.open) {
      refuseForeign(request);
    }
    const caller = callers.authenticate(request.headers.authorization);
    request.caller = caller;
    const rule = ruleOf(request.method, request.routeOptions.url ?? '');
    // A route without a rule cannot be registered (onRoute above); refuse rather than trust.
    const scope = rule?.scope ?? 'admin';
    if (!rule || !caller.grants.has(scope)) {
      refuse(request, caller, scope, routeName(request));
    }
    if (rule?.audit !== undefined) {
      allowed.add(request);
    }
    done();
  });
}

/** A JSON answer's value, or undefined. */
function answerOf(request: FastifyRequest, payload: unknown): unknown {
  if (answers.has(request)) {
    return answers.get(request);
  }
  if (typeof payload !== 'string') {
    return undefined;
  }
  try {
    return JSON.parse(payload);
  } catch {
    return undefined;
  }
}

/**
 * GET /v1/events: the node's events as Server-Sent Events. Filters: `type` (or `types`), `procedure`,
 * `number`, each repeated or comma-separated. `Last-Event-ID` resumes after an event the client saw;
 * when what followed it is no longer kept, the client gets a `reset` event first and should reload.
 */
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';
import { DIGEST_MAX_MS, DIGEST_MIN_MS } from '../events/digest.js';
import { MAX_FILTER_VALUES, listParam } from '../events/filter.js';
import type { EventSink, Subscription } from '../events/hub.js';
import type { Position } from '../events/ids.js';
import { EVENT_TYPES, type EventFilter } from '../events/types.js';
import { errors, otherContent } from './schemas/common.js';
import { EventsQuerySchema } from './schemas/events.js';

/** The node's event hub, as the route uses it. */
export interface EventSource {
  /** Resolves once events can be read (throws while Redis is away, which answers 503). */
  start(): Promise<void>;
  /** The position a Last-Event-ID names for this node's shard count; undefined for a bad id. */
  parsePosition(raw: string | undefined): Position | undefined;
  /** Subscribes a sink to the events that pass the filter, from now or after `from`. */
  subscribe(filter: EventFilter, sink: EventSink, from?: Position): Promise<Subscription>;
}

/** What the event route needs of the node. */
export interface EventsRouteDeps {
  /** The event hub; throws NotReadyError until the node can read events. */
  events(): EventSource;
  /**
   * How often an idle stream gets a comment, so proxies and clients see it is alive.
   * @defaultValue 15000
   */
  readonly eventHeartbeatMs?: number;
}

/** Type filters accepted besides the event types themselves: their families. */
const FAMILIES = ['execution', 'backup', 'restore'];

/** The filter of a GET /v1/events query (its shape checked by the schema); throws ValidationError. */
export function parseEventFilter(query: z.output<typeof EventsQuerySchema>): EventFilter {
  const filter: EventFilter = {};
  const list = (...values: unknown[]): string[] | undefined => {
    const all = values.flatMap((v) => listParam(v) ?? []);
    if (all.length > MAX_FILTER_VALUES) {
      throw new ValidationError(`Bad query: at most ${MAX_FILTER_VALUES} values per filter.`);
    }
    return all.length ? all : undefined;
  };
  const types = list(query.type, query.types);
  if (types) {
    const known = new Set<string>([...EVENT_TYPES, ...FAMILIES]);
    const bad = types.filter((t) => !known.has(t));
    if (bad.length) {
      throw new ValidationError(
        `Bad query: unknown event type ${bad.map((t) => `"${t}"`).join(', ')}; known: ${[...EVENT_TYPES, ...FAMILIES].join(', ')}.`,
      );
    }
    filter.types = types;
  }
  const procedures = list(query.procedure);
  if (procedures) {
    filter.procedures = procedures;
  }
  const numbers = list(query.number);
  if (numbers) {
    filter.numbers = numbers.map((raw) => {
      if (!/^[1-9]\d{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
        throw new ValidationError(
          `Bad query: number: execution numbers are positive integers; got "${raw}".`,
        );
      }
      return Number(raw);
    });
  }
  if (query.digest !== undefined) {
    const ms = Number(query.digest);
    if (!/^\d+$/.test(query.digest) || ms < DIGEST_MIN_MS || ms > DIGEST_MAX_MS) {
      throw new ValidationError(
        `Bad query: digest: a number of milliseconds from ${DIGEST_MIN_MS} to ${DIGEST_MAX_MS}; got "${query.digest}".`,
      );
    }
    filter.digestMs = ms;
  }
  return filter;
}

const DESCRIPTION = [
  'Server-Sent Events: `execution.state` `{ number, procedure?, state, at, attempt?, prev?, delayedUntil?, error? }`,',
  '`execution.progress` `{ number, procedure?, progress, at }`, `execution.removed` `{ number, at }`,',
  '`system` (a system event as onSystemEvent gets it), `backup.started`, `backup.progress`',
  '`{ number, node, phase, done, total, at }`, `backup.finished` (the backup record), `restore.started`,',
  '`restore.progress` `{ node, phase: check|stage|queue, done, total, at }`, `restore.finished`',
  '`{ node, durationMs, summary | error }`, and `reset` when',
  'events after `Last-Event-ID` are no longer kept (reload what you show). Send the last `id:` seen as',
  'the `Last-Event-ID` header to resume; a comment line comes every 15 s. With `digest=ms`, execution',
  'events come as `execution.digest` at most every `ms` instead (see the parameter).',
].join(' ');

/** The /v1/events route (a fastify plugin; register it under /v1, behind the token check). */
export const eventRoutes: FastifyPluginAsyncZod<EventsRouteDeps> = async (app, opts) => {
  const open = new Set<{ reply: FastifyReply; end: () => void }>();
  const heartbeat = setInterval(() => {
    for (const stream of open) {
      stream.reply.raw.write(': ping\n\n');
    }
  }, opts.eventHeartbeatMs ?? 15_000);
  heartbeat.unref();
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    for (const stream of open) {
      stream.end();
    }
  });

  const schema = {
    operationId: 'events',
    summary: "The node's live events (Server-Sent Events), filtered, resumable.",
    description: DESCRIPTION,
    querystring: EventsQuerySchema,
    response: { 200: otherContent('The event stream.', 'text/event-stream'), ...errors(400, 401) },
  };
  app.get('/events', { schema }, async (request, reply) => {
    const filter = parseEventFilter(request.query);
    const header = request.headers['last-event-id'];
    const lastId = Array.isArray(header) ? header[0] : header;
    const events = opts.events();
    const from = events.parsePosition(lastId);
    await events.start();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx and similar proxies would otherwise hold events back in their buffers.
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    if (lastId !== undefined && lastId !== '' && !from) {
      res.write('event: reset\ndata: {}\n\n');
    }
    let subscription: Subscription | undefined;
    let ended = false;
    const stream = {
      reply,
      end: () => {
        if (ended) {
          return;
        }
        ended = true;
        open.delete(stream);
        subscription?.close();
        if (!res.writableEnded) {
          res.end();
        }
      },
    };
    const sink: EventSink = {
      write: (frame) => {
        if (!ended) {
          res.write(frame);
        }
      },
      get backlog() {
        return res.writableLength;
      },
      drained: () =>
        new Promise<void>((resolve) => {
          if (ended || res.writableLength === 0) {
            resolve();
            return;
          }
          res.once('drain', resolve);
          res.once('close', resolve);
        }),
      close: (reason) => {
        if (!ended && reason === 'slow') {
          res.write(': closed: the client did not keep up; reconnect to resume\n\n');
        }
        stream.end();
      },
    };
    open.add(stream);
    res.on('close', stream.end);
    try {
      subscription = await events.subscribe(filter, sink, from);
    } catch (err) {
      request.log.warn({ err }, 'event subscription failed');
      stream.end();
      return;
    }
    if (ended) {
      subscription.close();
    }
  });
};

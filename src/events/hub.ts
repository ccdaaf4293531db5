/**
 * The event hub of one node: one reader of the two event streams (BullMQ's job events and sprocd's
 * event log) on one blocking connection, fanned out in the process to every subscriber (the SSE
 * clients of GET /v1/events). The reader runs only while someone listens. Redis does no extra work
 * per execution: the streams are written anyway, and the hub reads each entry once per node.
 *
 * A subscriber starts "now", or after a position it was given (`Last-Event-ID`): then the hub reads
 * what it missed with XRANGE while it keeps the live events for it aside, and hands those over after.
 * A subscriber that cannot keep up is closed rather than allowed to grow the process's memory.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bullQueueKeys } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';
import { entryNumber, fieldsOf, mapBullEntry, type EntryFields, type ExecutionMeta } from './bull-events.js';
import { logEntryOf } from './event-log.js';
import { matches } from './filter.js';
import {
  ZERO,
  compareStreamIds,
  formatPosition,
  formatStreamId,
  parseStreamId,
  type Position,
  type StreamId,
} from './ids.js';
import type { EventDraft, EventFilter, StreamName } from './types.js';

/** The streams the hub reads, and how to find an execution's job hash. */
export interface HubStreams {
  /** BullMQ's events stream of the procedures queue. */
  readonly bull: string;
  /** sprocd's event log. */
  readonly log: string;
  /** The job hash of execution `number` (its `name` is the procedure, `ats` its starts). */
  job(number: number): string;
}

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  /** A command connection (non-blocking reads). */
  redis: Redis;
  /** Opens the hub's blocking connection, on first use; the opener closes it when the node stops. */
  openReader: () => Redis;
  streams: HubStreams;
  logger?: Logger;
  /**
   * Bytes a subscriber may have waiting to be sent before it is closed as too slow.
   * @defaultValue 1 MiB
   */
  maxBacklogBytes?: number;
}

/** Where a subscriber's events go (an SSE response). */
export interface EventSink {
  /** Sends one SSE frame. */
  write(frame: string): void;
  /** Bytes written but not yet sent. */
  readonly backlog: number;
  /** Resolves when the backlog has been sent (or the sink closed). */
  drained(): Promise<void>;
  /** The hub ends the subscription: the client was too slow, or the node stops. */
  close(reason: 'slow' | 'closing'): void;
}

/** A live subscription. */
export interface Subscription {
  /** Stops the events (the client went away). */
  close(): void;
}

/** Entries read per stream per round trip. */
const READ_COUNT = 1000;
/** How long one blocking read waits; also how long the reader goes on after the last client left. */
const BLOCK_MS = 2000;
/** Pause after a read that found entries, so busy streams are read in batches (adds at most this latency). */
const BATCH_PACE_MS = 10;
/** Executions the hub remembers the procedure of. */
const META_CAPACITY = 50_000;
/** Live events kept aside for a subscriber that is still catching up. */
const MAX_PENDING = 10_000;
/** How long a catching-up subscriber may take to take its backlog. */
const DRAIN_WAIT_MS = 30_000;

/** One entry of either stream, mapped. */
interface Entry {
  stream: StreamName;
  sid: StreamId;
  draft: EventDraft | undefined;
}

/** A mapped entry as fanned out live: shared by every subscriber. */
interface LiveFrame extends Entry {
  position: Position;
  text: string | undefined;
}

class Subscriber {
  /** Live frames kept aside while the subscriber catches up; undefined once it is live. */
  pending: LiveFrame[] | undefined;
  /** Frames of the current read, sent in one write at its end (a write per event costs more). */
  outbox = '';
  closed = false;

  constructor(
    readonly filter: EventFilter,
    readonly sink: EventSink,
    public cursor: Position,
  ) {}
}

/** Reads the event streams once per node and fans them out. */
export class EventHub {
  private readonly subs = new Set<Subscriber>();
  private readonly meta = new Map<number, ExecutionMeta>();
  private readonly maxBacklog: number;
  private reader: Redis | undefined;
  private running = false;
  private starting: Promise<void> | undefined;
  private closed = false;
  /** What the reader has read of each stream, and so handed to every live subscriber. */
  private position: Position = { bull: ZERO, log: ZERO };

  constructor(private readonly opts: EventHubOptions) {
    this.maxBacklog = opts.maxBacklogBytes ?? 1024 * 1024;
  }

  /** Whether the reader runs (it stops soon after the last subscriber left). */
  get reading(): boolean {
    return this.running;
  }

  /** Number of subscribers now. */
  get size(): number {
    return this.subs.size;
  }

  /**
   * Subscribes `sink` to the events that pass `filter`: from now, or after `from`. The first frame
   * it gets names the position it starts at (an `id:` line), so a client that reconnects before any
   * event arrived still resumes from there.
   */
  async subscribe(filter: EventFilter, sink: EventSink, from?: Position): Promise<Subscription> {
    for (;;) {
      if (this.closed) {
        sink.close('closing');
        return { close: () => undefined };
      }
      await this.start();
      // From here to the end of the set-up nothing awaits, so no read is fanned out in between.
      if (this.running) {
        break;
      }
    }
    const upTo = this.position;
    const sub = new Subscriber(filter, sink, from ?? upTo);
    this.subs.add(sub);
    const subscription = { close: () => this.drop(sub) };
    if (!from) {
      sink.write(`id: ${formatPosition(upTo)}\n\n`);
      return subscription;
    }
    sub.pending = [];
    try {
      await this.catchUp(sub, from, upTo);
    } catch (err) {
      this.opts.logger?.warn({ err }, 'could not read the missed events; the client is told to reload');
      sub.cursor = upTo;
      sink.write(resetFrame(upTo));
    }
    this.goLive(sub);
    return subscription;
  }

  /** Ends every subscription and stops reading. */
  close(): void {
    this.closed = true;
    for (const sub of this.subs) {
      this.drop(sub, 'closing');
    }
    this.reader?.disconnect();
  }

  private drop(sub: Subscriber, reason?: 'slow' | 'closing'): void {
    if (sub.closed) {
      return;
    }
    sub.closed = true;
    sub.pending = undefined;
    this.subs.delete(sub);
    if (reason) {
      sub.sink.close(reason);
    }
  }

  /** Starts the reader at the streams' ends, unless it runs; throws while Redis is away. */
  start(): Promise<void> {
    if (this.running) {
      return Promise.resolve();
    }
    this.starting ??= (async () => {
      try {
        const res = await this.opts.redis
          .pipeline()
          .xrevrange(this.opts.streams.bull, '+', '-', 'COUNT', 1)
          .xrevrange(this.opts.streams.log, '+', '-', 'COUNT', 1)
          .exec();
        const last = (i: number): StreamId => {
          const [err, rows] = res?.[i] ?? [];
          if (err) {
            throw err;
          }
          const id = (rows as [string, string[]][] | undefined)?.[0]?.[0];
          return (id && parseStreamId(id)) || ZERO;
        };
        this.position = { bull: last(0), log: last(1) };
        this.reader ??= this.opts.openReader();
        this.running = true;
        void this.loop();
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  private async loop(): Promise<void> {
    const { bull, log } = this.opts.streams;
    try {
      // Checked after each read, not before the first: the subscriber that started the reader is
      // added right after the start.
      do {
        if (!this.reader) {
          break;
        }
        let reply: [string, [string, string[]][]][] | null;
        try {
          reply = (await this.reader.xread(
            'COUNT',
            READ_COUNT,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            bull,
            log,
            formatStreamId(this.position.bull),
            formatStreamId(this.position.log),
          )) as [string, [string, string[]][]][] | null;
        } catch (err) {
          if (this.closed) {
            break;
          }
          this.opts.logger?.debug({ err }, 'event stream read failed; retrying');
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        if (reply) {
          await this.dispatch(reply);
          // While events flow, read them in batches: a reader blocked on the stream is woken by
          // every entry, which would cost Redis work per entry written.
          await new Promise((r) => setTimeout(r, BATCH_PACE_MS));
        }
      } while (!this.closed && this.subs.size > 0);
    } finally {
      this.running = false;
    }
  }

  private async dispatch(reply: [string, [string, string[]][]][]): Promise<void> {
    let bullRows: [string, string[]][] = [];
    let logRows: [string, string[]][] = [];
    for (const [key, rows] of reply) {
      if (key === this.opts.streams.bull) {
        bullRows = rows;
      } else {
        logRows = rows;
      }
    }
    const entries = merge(await this.mapBull(bullRows), mapLog(logRows));
    for (const entry of entries) {
      const { bull, log } = this.position;
      this.position = entry.stream === 'bull' ? { bull: entry.sid, log } : { bull, log: entry.sid };
      if (!entry.draft || this.subs.size === 0) {
        continue;
      }
      const frame: LiveFrame = {
        stream: entry.stream,
        sid: entry.sid,
        draft: entry.draft,
        position: this.position,
        text: undefined,
      };
      for (const sub of this.subs) {
        this.deliverLive(sub, frame);
      }
    }
    for (const sub of this.subs) {
      this.flush(sub);
    }
  }

  /** Sends what the subscriber's outbox holds; drops a subscriber that does not keep up. */
  private flush(sub: Subscriber): void {
    if (sub.outbox === '' || sub.closed) {
      return;
    }
    sub.sink.write(sub.outbox);
    sub.outbox = '';
    if (sub.sink.backlog > this.maxBacklog) {
      this.drop(sub, 'slow');
    }
  }

  private deliverLive(sub: Subscriber, frame: LiveFrame): void {
    if (!frame.draft || !matches(sub.filter, frame.draft)) {
      return;
    }
    if (sub.pending) {
      if (sub.pending.length >= MAX_PENDING) {
        this.drop(sub, 'slow');
      } else {
        sub.pending.push(frame);
      }
      return;
    }
    frame.text ??= eventFrame(frame.position, frame.draft);
    sub.outbox += frame.text;
  }

  /** Hands a caught-up subscriber the live frames kept aside, then the live stream. */
  private goLive(sub: Subscriber): void {
    const pending = sub.pending ?? [];
    sub.pending = undefined;
    for (const frame of pending) {
      if (sub.closed) {
        return;
      }
      if (compareStreamIds(frame.sid, sub.cursor[frame.stream]) > 0) {
        this.deliverLive(sub, frame);
      }
    }
    this.flush(sub);
  }

  /** Sends `sub` what came after `from` up to `upTo`, or a `reset` when some of it is gone. */
  private async catchUp(sub: Subscriber, from: Position, upTo: Position): Promise<void> {
    if (await this.lostSince(from)) {
      sub.cursor = upTo;
      sub.sink.write(resetFrame(upTo));
      return;
    }
    const replay = new Map<number, ExecutionMeta>();
    const readers = {
      bull: new RangeReader(this.opts.redis, this.opts.streams.bull, from.bull, upTo.bull, (rows) =>
        this.mapBull(rows, replay),
      ),
      log: new RangeReader(this.opts.redis, this.opts.streams.log, from.log, upTo.log, async (rows) =>
        mapLog(rows),
      ),
    };
    let out = '';
    for (;;) {
      if ((readers.bull.waiting || readers.log.waiting) && out !== '') {
        sub.sink.write(out); // what was read so far, before the next round trip
        out = '';
      }
      const [b, l] = await Promise.all([readers.bull.peek(), readers.log.peek()]);
      const next = !b ? l : !l ? b : compareStreamIds(l.sid, b.sid) < 0 ? l : b;
      if (!next || sub.closed) {
        if (!sub.closed && out !== '') {
          sub.sink.write(out);
        }
        return;
      }
      readers[next.stream].take();
      sub.cursor =
        next.stream === 'bull'
          ? { bull: next.sid, log: sub.cursor.log }
          : { bull: sub.cursor.bull, log: next.sid };
      if (next.draft && matches(sub.filter, next.draft)) {
        out += eventFrame(sub.cursor, next.draft);
        if (out.length < 64 * 1024) {
          continue;
        }
        sub.sink.write(out);
        out = '';
        if (sub.sink.backlog > this.maxBacklog / 2) {
          const drained = await Promise.race([
            sub.sink.drained().then(() => true),
            new Promise<boolean>((r) => setTimeout(r, DRAIN_WAIT_MS, false).unref()),
          ]);
          if (!drained) {
            this.drop(sub, 'slow');
            return;
          }
        }
      }
    }
  }

  /**
   * Whether entries after `from` were trimmed away (or the streams were replaced, by a restore or a
   * deleted deployment). Trimming drops the oldest entries, so the client missed some when the
   * entry it saw last is older than the first one left.
   */
  private async lostSince(from: Position): Promise<boolean> {
    const { bull, log } = this.opts.streams;
    const res = await this.opts.redis.pipeline().xinfo('STREAM', bull).xinfo('STREAM', log).exec();
    const lost = (i: number, seen: StreamId): boolean => {
      if (compareStreamIds(seen, ZERO) === 0) {
        return false;
      }
      const [err, raw] = res?.[i] ?? [];
      if (err) {
        return true; // no such stream: it was deleted after the client saw an entry of it
      }
      const info = fieldsOfInfo(raw as unknown[]);
      const lastId = parseStreamId(String(info['last-generated-id'] ?? ''));
      if (!lastId || compareStreamIds(seen, lastId) > 0) {
        return true; // an id this stream never gave: another stream by the same name now
      }
      const first = info['first-entry'] as [string, string[]] | null | undefined;
      const firstId = first ? parseStreamId(first[0]) : undefined;
      if (!firstId) {
        return compareStreamIds(seen, lastId) < 0; // emptied by trimming after the client's entry
      }
      return compareStreamIds(seen, firstId) < 0;
    };
    return lost(0, from.bull) || lost(1, from.log);
  }

  /**
   * Maps BullMQ entries, looking up the procedure of executions first seen here in one round trip.
   * Live reads use the hub's memory of executions; a catch-up passes its own (`replay`), since
   * replayed `active` entries must not count starts again: a replayed event carries an attempt only
   * when the replay began before its execution was added.
   */
  private async mapBull(rows: [string, string[]][], replay?: Map<number, ExecutionMeta>): Promise<Entry[]> {
    if (rows.length === 0) {
      return [];
    }
    const parsed: { sid: StreamId; fields: EntryFields; number: number | undefined }[] = [];
    const unknown = new Set<number>();
    const known = (n: number): ExecutionMeta | undefined => {
      if (!replay) {
        return this.meta.get(n);
      }
      let meta = replay.get(n);
      const shared = meta ? undefined : this.meta.get(n);
      if (shared) {
        meta = { procedure: shared.procedure, attempt: undefined };
        replay.set(n, meta);
      }
      return meta;
    };
    for (const [id, raw] of rows) {
      const sid = parseStreamId(id);
      if (!sid) {
        continue;
      }
      const fields = fieldsOf(raw);
      const number = entryNumber(fields);
      parsed.push({ sid, fields, number });
      if (number === undefined) {
        continue;
      }
      // From its `added` entry on, every start of an execution is in the stream: count them.
      if (fields.event === 'added' && (replay || !this.meta.has(number))) {
        this.remember(number, { procedure: fields.name, attempt: 0 }, replay);
      } else if (!known(number)) {
        unknown.add(number);
      }
    }
    if (unknown.size > 0) {
      await this.lookUp([...unknown], parsed, replay);
    }
    const out: Entry[] = [];
    for (const { sid, fields, number } of parsed) {
      const meta = number === undefined ? undefined : known(number);
      out.push({ stream: 'bull', sid, draft: meta ? mapBullEntry(fields, sid.ms, meta) : undefined });
    }
    return out;
  }

  /** Reads the procedure and starts of executions added before the hub started. */
  private async lookUp(
    numbers: number[],
    parsed: { fields: EntryFields; number?: number }[],
    replay: Map<number, ExecutionMeta> | undefined,
  ): Promise<void> {
    const pipeline = this.opts.redis.pipeline();
    for (const n of numbers) {
      pipeline.hmget(this.opts.streams.job(n), 'name', 'ats');
    }
    const res = await pipeline.exec().catch(() => undefined);
    numbers.forEach((n, i) => {
      const [err, value] = res?.[i] ?? [new Error('no answer')];
      const [name, ats] = err ? [] : ((value as (string | null)[] | undefined) ?? []);
      // The starts Redis counts now include the `active` entries of this batch, which count them again.
      const activeHere = parsed.filter((p) => p.number === n && p.fields.event === 'active').length;
      const attempt = replay ? undefined : Math.max(0, Number(ats ?? 0) - activeHere);
      this.remember(n, { procedure: name ?? undefined, attempt }, replay);
    });
  }

  private remember(number: number, meta: ExecutionMeta, replay?: Map<number, ExecutionMeta>): void {
    if (replay) {
      replay.set(number, meta);
      return;
    }
    this.meta.set(number, meta);
    if (this.meta.size > META_CAPACITY) {
      const oldest = this.meta.keys().next();
      if (!oldest.done) {
        this.meta.delete(oldest.value);
      }
    }
  }
}

/** Reads a stream's entries in `(from, upTo]` page by page, mapped. */
class RangeReader {
  private buffer: Entry[] = [];
  private next: StreamId;
  private done: boolean;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    from: StreamId,
    private readonly upTo: StreamId,
    private readonly map: (rows: [string, string[]][]) => Promise<Entry[]>,
  ) {
    this.next = from;
    this.done = compareStreamIds(from, upTo) >= 0;
  }

  async peek(): Promise<Entry | undefined> {
    while (this.buffer.length === 0 && !this.done) {
      const rows = (await this.redis.xrange(
        this.key,
        `(${formatStreamId(this.next)}`,
        formatStreamId(this.upTo),
        'COUNT',
        READ_COUNT,
      )) as [string, string[]][];
      const lastRow = rows[rows.length - 1];
      const lastId = lastRow && parseStreamId(lastRow[0]);
      if (rows.length < READ_COUNT || !lastId) {
        this.done = true;
      } else {
        this.next = lastId;
      }
      this.buffer = await this.map(rows);
    }
    return this.buffer[0];
  }

  take(): void {
    this.buffer.shift();
  }

  /** Whether the next peek reads from Redis (its buffer is empty and the range not done). */
  get waiting(): boolean {
    return this.buffer.length === 0 && !this.done;
  }
}

function mapLog(rows: [string, string[]][]): Entry[] {
  const out: Entry[] = [];
  for (const [id, raw] of rows) {
    const sid = parseStreamId(id);
    if (!sid) {
      continue;
    }
    const entry = logEntryOf(id, raw);
    out.push({ stream: 'log', sid, draft: entry && { type: entry.type, data: entry.data } });
  }
  return out;
}

/** Merges two id-ordered lists of entries into one, in id order. */
function merge(a: Entry[], b: Entry[]): Entry[] {
  if (a.length === 0) {
    return b;
  }
  if (b.length === 0) {
    return a;
  }
  const out: Entry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x && (!y || compareStreamIds(x.sid, y.sid) <= 0)) {
      out.push(x);
      i++;
    } else if (y) {
      out.push(y);
      j++;
    }
  }
  return out;
}

/** The SSE frame of an event at `position`. */
function eventFrame(position: Position, draft: EventDraft): string {
  return `id: ${formatPosition(position)}\nevent: ${draft.type}\ndata: ${JSON.stringify(draft.data)}\n\n`;
}

function resetFrame(position: Position): string {
  return `id: ${formatPosition(position)}\nevent: reset\ndata: {}\n\n`;
}

/** XINFO STREAM's flat reply as an object. */
function fieldsOfInfo(raw: unknown[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; raw && i + 1 < raw.length; i += 2) {
    out[String(raw[i])] = raw[i + 1];
  }
  return out;
}

/** The streams of the deployment `keys`. */
export function hubStreams(keys: Keys): HubStreams {
  const bull = bullQueueKeys(keys);
  return { bull: bull.events, log: keys.eventLog, job: (n) => bull.job(jobIdOf(n)) };
}

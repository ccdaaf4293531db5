/**
 * The event hub of one node: one reader of the two event streams (BullMQ's job events and sprocd's
 * event log) on one blocking connection, fanned out in the process to every subscriber (the SSE
 * clients of GET /v1/events). The reader runs only while someone listens. Redis does no extra work
 * per execution: the streams are written anyway, and the hub reads each entry once per node.
 *
 * A subscriber starts "now", or after a position it was given (`Last-Event-ID`): then the hub reads
 * what it missed with XRANGE while it keeps the live events for it aside, and hands those over after.
 * A subscriber that cannot keep up is closed rather than allowed to grow the process's memory.
 *
 * Fanning out is the hub's cost per event, so it is paid per filter rather than per subscriber:
 * subscribers with the same filter (the consoles on one page, the `sprocd watch` streams) form a
 * group; an event is matched once per group, its SSE text made once, and what one read brings a group
 * is encoded once and handed to each of its live subscribers as the same bytes, in one write each.
 * The file is long because the reader, the catch-up of a resumed subscriber and the groups share one
 * position in the streams and must change it together.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { BullMapper } from './bull-mapper.js';
import { DigestSchedule, digested } from './digest.js';
import { eventFrame, mapLog, merge, resetFrame, type Entry } from './entries.js';
import { filterKey, matches } from './filter.js';
import {
  ZERO,
  compareStreamIds,
  formatPosition,
  formatStreamId,
  parseStreamId,
  type Position,
  type StreamId,
} from './ids.js';
import { READ_COUNT, replay } from './replay.js';
import type { HubStreams } from './streams.js';
import type { EventFilter } from './types.js';

export { hubStreams, type HubStreams } from './streams.js';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  /** A command connection (non-blocking reads). */
  redis: RedisConnection;
  /** Opens the hub's blocking connection, on first use; the opener closes it when the node stops. */
  openReader: () => RedisConnection;
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
  /** Sends SSE frames (the hub passes the same bytes to every subscriber of a group: do not change them). */
  write(frames: string | Uint8Array): void;
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

/** How long one blocking read waits; also how long the reader goes on after the last client left. */
const BLOCK_MS = 2000;
/** Pause after a read that found entries, so busy streams are read in batches (adds at most this latency). */
const BATCH_PACE_MS = 10;
/** Live events kept aside for a subscriber that is still catching up. */
const MAX_PENDING = 10_000;

/** A mapped entry as fanned out live: shared by every subscriber. */
interface LiveFrame extends Entry {
  position: Position;
  text: string | undefined;
}

class Subscriber {
  /** Live frames kept aside while the subscriber catches up; undefined once it is live. */
  pending: LiveFrame[] | undefined;
  /** Frames of a catch-up's end, sent in one write. */
  outbox = '';
  closed = false;

  constructor(
    readonly filter: EventFilter,
    readonly group: Group,
    readonly sink: EventSink,
    public cursor: Position,
  ) {}
}

/** The subscribers of one filter: what a read brings them is matched and encoded once for all. */
interface Group {
  readonly key: string;
  readonly filter: EventFilter;
  readonly members: Set<Subscriber>;
  /** Frames of the current read for the group's live members, sent in one write at its end. */
  outbox: string;
  /** With `digestMs`: its execution events go out as digests (./digest.ts). */
  digest?: DigestSchedule;
}

/** Reads the event streams once per node and fans them out. */
export class EventHub {
  private readonly subs = new Set<Subscriber>();
  private readonly groups = new Map<string, Group>();
  private readonly mapper: BullMapper;
  private readonly maxBacklog: number;
  private reader: RedisConnection | undefined;
  private running = false;
  private starting: Promise<void> | undefined;
  private closed = false;
  /** What the reader has read of each stream, and so handed to every live subscriber. */
  private position: Position = { bull: ZERO, log: ZERO };

  constructor(private readonly opts: EventHubOptions) {
    this.maxBacklog = opts.maxBacklogBytes ?? 1024 * 1024;
    this.mapper = new BullMapper(opts.redis, (n) => opts.streams.job(n));
  }

  /** Whether the reader runs (it stops soon after the last subscriber left). */
  get reading(): boolean {
    return this.running;
  }

  /** Number of subscribers now. */
  get size(): number {
    return this.subs.size;
  }

  /** Number of distinct filters among the subscribers now. */
  get groupCount(): number {
    return this.groups.size;
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
    const key = filterKey(filter);
    let group = this.groups.get(key);
    if (!group) {
      const made: Group = { key, filter, members: new Set(), outbox: '' };
      if (filter.digestMs !== undefined) {
        made.digest = new DigestSchedule(
          filter.digestMs,
          () => this.position,
          (frame) => {
            made.outbox += frame;
            this.flushGroup(made);
          },
        );
      }
      group = made;
      this.groups.set(key, group);
    }
    const sub = new Subscriber(filter, group, sink, from ?? upTo);
    this.subs.add(sub);
    group.members.add(sub);
    const subscription = { close: () => this.drop(sub) };
    if (!from) {
      sink.write(`id: ${formatPosition(upTo)}\n\n`);
      return subscription;
    }
    sub.pending = [];
    try {
      const source = {
        redis: this.opts.redis,
        streams: this.opts.streams,
        mapper: this.mapper,
        maxBacklog: this.maxBacklog,
      };
      if (!(await replay(source, sub, from, upTo))) {
        this.drop(sub, 'slow');
        return subscription;
      }
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
    for (const group of this.groups.values()) {
      group.digest?.stop();
    }
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
    sub.group.members.delete(sub);
    if (sub.group.members.size === 0) {
      this.groups.delete(sub.group.key);
      sub.group.digest?.stop();
    }
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
    const entries = merge(await this.mapper.map(bullRows), mapLog(logRows));
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
      for (const group of this.groups.values()) {
        if (!matches(group.filter, entry.draft)) {
          continue;
        }
        let live = false;
        for (const sub of group.members) {
          if (sub.pending) {
            this.keepAside(sub, frame);
          } else {
            live = true;
          }
        }
        if (!live) {
          continue;
        }
        if (group.digest && digested(entry.draft)) {
          group.digest.add(entry.draft);
        } else {
          frame.text ??= eventFrame(frame.position, entry.draft);
          group.outbox += frame.text;
        }
      }
    }
    for (const group of this.groups.values()) {
      this.flushGroup(group);
      group.digest?.soon();
    }
  }

  /**
   * Sends a group's outbox to its live subscribers: encoded once, the same bytes written to each (a
   * string written to N sockets would be measured and encoded N times); drops one that does not keep up.
   */
  private flushGroup(group: Group): void {
    if (group.outbox === '') {
      return;
    }
    const bytes = Buffer.from(group.outbox, 'utf8');
    group.outbox = '';
    for (const sub of group.members) {
      if (sub.pending || sub.closed) {
        continue;
      }
      sub.sink.write(bytes);
      if (sub.sink.backlog > this.maxBacklog) {
        this.drop(sub, 'slow');
      }
    }
  }

  /** Keeps a live frame for a subscriber still catching up; drops it when it has kept too many. */
  private keepAside(sub: Subscriber, frame: LiveFrame): void {
    if (sub.pending && sub.pending.length >= MAX_PENDING) {
      this.drop(sub, 'slow');
    } else {
      sub.pending?.push(frame);
    }
  }

  /** Hands a caught-up subscriber the live frames kept aside (they passed its filter), then the live stream. */
  private goLive(sub: Subscriber): void {
    const pending = sub.pending ?? [];
    sub.pending = undefined;
    for (const frame of pending) {
      if (sub.closed) {
        return;
      }
      if (frame.draft && compareStreamIds(frame.sid, sub.cursor[frame.stream]) > 0) {
        frame.text ??= eventFrame(frame.position, frame.draft);
        sub.outbox += frame.text;
      }
    }
    if (sub.outbox !== '' && !sub.closed) {
      sub.sink.write(sub.outbox);
      sub.outbox = '';
      if (sub.sink.backlog > this.maxBacklog) {
        this.drop(sub, 'slow');
      }
    }
  }
}

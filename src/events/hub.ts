/**
 * The event hub of one node: one reader of the event streams (BullMQ's job events of each queue
 * shard and sprocd's event log), fanned out in the process to every subscriber (the SSE clients of
 * GET /v1/events). The reader runs only while someone listens. Redis does no extra work per
 * execution: the streams are written anyway, and the hub reads each entry once per node.
 * This file is long because the reader, the catch-up of a resumed subscriber and the groups share one
 * position in the streams and must change it together.
 *
 * On a single Redis one blocking XREAD names every stream, whatever the shard count. On a Cluster an
 * XREAD cannot span hash slots, and with S > 1 each shard's stream and the log are in slots of their
 * own, so each slot's streams get a blocking reader (a connection) of their own: polling them in turn
 * instead would add a block's wait to the latency of every stream but the one blocked on. With S = 1
 * there is one group either way, and the one XREAD of before.
 *
 * A subscriber starts "now", or after a position it was given (`Last-Event-ID`): then the hub reads
 * what it missed with XRANGE while it keeps the live events for it aside, and hands those over after.
 * A subscriber that cannot keep up is closed rather than allowed to grow the process's memory.
 *
 * Fanning out is the hub's cost per event, so it is paid per filter rather than per subscriber:
 * subscribers with the same filter (the consoles on one page, the `sprocd watch` streams) form a
 * group; an event is matched once per group, its SSE text made once, and what one read brings a group
 * is encoded once and handed to each of its live subscribers as the same bytes, in one write each.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { BullMapper } from './bull-mapper.js';
import { DigestSchedule, digested } from './digest.js';
import { eventFrame, mapLog, mergeAll, resetFrame, type Entry } from './entries.js';
import { filterKey, matches } from './filter.js';
import {
  ZERO,
  compareStreamIds,
  formatPosition,
  formatStreamId,
  movedTo,
  parsePosition,
  parseStreamId,
  positionIn,
  zeroPosition,
  type Position,
} from './ids.js';
import { READ_COUNT, replay } from './replay.js';
import { slotGroups, type HubStreams, type StreamRef } from './streams.js';
import type { EventFilter } from './types.js';

export { hubStreams, type HubStreams } from './streams.js';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  /** A command connection (non-blocking reads). */
  redis: RedisConnection;
  /**
   * Opens a blocking connection of the hub, on first use (one per group of streams an XREAD may name
   * together: see above); the opener closes them when the node stops.
   */
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
  /** The groups of streams one XREAD reads, and each one's blocking connection and whether it reads. */
  private readonly groupsOfStreams: StreamRef[][];
  private readonly readers: (RedisConnection | undefined)[];
  private readonly looping: boolean[];
  private running = false;
  private starting: Promise<void> | undefined;
  private closed = false;
  /** What the reader has read of each stream, and so handed to every live subscriber. */
  private position: Position;

  constructor(private readonly opts: EventHubOptions) {
    this.maxBacklog = opts.maxBacklogBytes ?? 1024 * 1024;
    this.mapper = new BullMapper(opts.redis, (n) => opts.streams.job(n));
    this.position = zeroPosition(opts.streams.bull.length);
    this.groupsOfStreams = slotGroups(opts.redis, opts.streams);
    this.readers = this.groupsOfStreams.map(() => undefined);
    this.looping = this.groupsOfStreams.map(() => false);
  }

  /** The position an SSE id (Last-Event-ID) names here, or undefined for a malformed id or one of another shard count. */
  parsePosition(raw: string | undefined): Position | undefined {
    return parsePosition(raw, this.opts.streams.bull.length);
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
    this.readers.forEach((reader) => reader?.disconnect());
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
      // A group's reader that saw nobody listening and stopped while another still read: it goes on
      // from where it was, which every subscriber of now is at or after.
      this.groupsOfStreams.forEach((_, g) => this.startLoop(g));
      return Promise.resolve();
    }
    this.starting ??= (async () => {
      try {
        let position = zeroPosition(this.opts.streams.bull.length);
        // One pipeline per group of streams a pipeline may span: one with one queue shard, as before.
        const replies = await Promise.all(
          this.groupsOfStreams.map((group) => {
            const pipeline = this.opts.redis.pipeline();
            group.forEach(({ key }) => pipeline.xrevrange(key, '+', '-', 'COUNT', 1));
            return pipeline.exec();
          }),
        );
        this.groupsOfStreams.forEach((group, g) => {
          group.forEach((ref, i) => {
            const [err, rows] = replies[g]?.[i] ?? [];
            if (err) {
              throw err;
            }
            const id = (rows as [string, string[]][] | undefined)?.[0]?.[0];
            position = movedTo(position, ref.stream, ref.shard, (id && parseStreamId(id)) || ZERO);
          });
        });
        this.position = position;
        this.groupsOfStreams.forEach((_, g) => {
          this.readers[g] ??= this.opts.openReader();
        });
        this.running = true;
        this.groupsOfStreams.forEach((_, g) => this.startLoop(g));
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  private startLoop(g: number): void {
    if (!this.looping[g]) {
      this.looping[g] = true;
      void this.loop(g);
    }
  }

  /** Reads group `g`'s streams while someone listens. */
  private async loop(g: number): Promise<void> {
    const group = this.groupsOfStreams[g]!;
    try {
      // Checked after each read, not before the first: the subscriber that started the reader is
      // added right after the start.
      do {
        const reader = this.readers[g];
        if (!reader) {
          break;
        }
        let reply: [string, [string, string[]][]][] | null;
        try {
          const ids = group.map(({ stream, shard }) =>
            formatStreamId(positionIn(this.position, stream, shard)),
          );
          reply = (await reader.xread(
            'COUNT',
            READ_COUNT,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            ...group.map(({ key }) => key),
            ...ids,
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
          await this.dispatch(group, reply);
          // While events flow, read them in batches: a reader blocked on the stream is woken by
          // every entry, which would cost Redis work per entry written.
          await new Promise((r) => setTimeout(r, BATCH_PACE_MS));
        }
      } while (!this.closed && this.subs.size > 0);
    } finally {
      this.looping[g] = false;
      if (!this.looping.some(Boolean)) {
        this.running = false;
      }
    }
  }

  /** Fans out what one XREAD of `group`'s streams brought, merged in id order. */
  private async dispatch(group: StreamRef[], reply: [string, [string, string[]][]][]): Promise<void> {
    const rowsOf = new Map(reply);
    const lists = await Promise.all(
      group.map(({ stream, shard, key }) => {
        const rows = rowsOf.get(key) ?? [];
        return stream === 'log' ? mapLog(rows) : this.mapper.map(rows, shard);
      }),
    );
    const entries = mergeAll(lists);
    for (const entry of entries) {
      this.position = movedTo(this.position, entry.stream, entry.shard, entry.sid);
      if (!entry.draft || this.subs.size === 0) {
        continue;
      }
      const frame: LiveFrame = {
        stream: entry.stream,
        shard: entry.shard,
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
      if (frame.draft && compareStreamIds(frame.sid, positionIn(sub.cursor, frame.stream, frame.shard)) > 0) {
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

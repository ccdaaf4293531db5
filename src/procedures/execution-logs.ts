/**
 * The log lines of an execution, kept in Redis for a while so that any node's console shows them
 * (GET /v1/executions/:n/logs), whichever node ran the execution.
 *
 * What is kept: the lines a procedure writes through `ctx.log` (and its children) at a level the
 * node logs, exactly as the node writes them to stdout (redacted, serialized), framed by sprocd's
 * own "execution started" / "execution ended" lines. An execution that never writes through
 * `ctx.log` costs nothing here: its child logger is made on first use, and only then is its stream
 * teed (see {@link ExecutionLogs.attach}); nothing at all is written to Redis for it.
 *
 * How: one list per execution (keys.executionLogs), the newest {@link MAX_LINES} lines of all its
 * attempts, each at most {@link MAX_LINE_BYTES}, expiring {@link LOG_TTL_MS} after its last line.
 * Lines gather in memory and go to Redis in one pipeline every {@link FLUSH_MS} (and at once when
 * the execution ends), so a chatty procedure does not add a round trip per line.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { pino, type Logger } from 'pino';
import { ExecutionNotFoundError, describeError } from '../errors.js';
import { executionJobKey } from '../redis/bullmq-internals.js';
import type { Keys } from '../redis/keys.js';

/** Most lines kept per execution (the newest). */
export const MAX_LINES = 200;
/** Longest stored line (bytes of its JSON); longer ones are cut, their fields replaced by a cut JSON text. */
export const MAX_LINE_BYTES = 2048;
/**
 * How long an execution's lines stay after its last one: long enough to look at a run that just
 * failed, short enough that a busy deployment does not fill Redis with lines nobody reads (the
 * console says "when the node still has them").
 */
export const LOG_TTL_MS = 60 * 60 * 1000;
/** How long lines wait in memory before their pipeline goes out. */
export const FLUSH_MS = 100;

/** One kept line, as GET /v1/executions/:n/logs answers it. */
export interface ExecutionLogLine {
  /** When it was written (ISO). */
  at: string;
  /** pino's level name (`info`, `warn`, ...). */
  level: string;
  msg: string;
  /** The node that ran the attempt. */
  node: string;
  attempt?: number;
  /** The line's other JSON fields (what the procedure passed, trace ids, ...). */
  fields?: Record<string, unknown>;
}

/** The capture of one execution's lines on this node. */
export interface LineCapture {
  /** `ctx.log`: the execution's child logger, its lines also kept for the console. */
  readonly logger: Logger;
  /** Adds sprocd's end line (and the error, when it threw) and sends the lines now. */
  end(outcome: string, durationMs: number, failure?: unknown): void;
}

/** The attempt whose lines a capture keeps. */
export interface CapturedRun {
  readonly number: number;
  /** Its attempt (BullMQ's attemptsStarted). */
  readonly attempt: number;
  /** When the attempt started (ms): the time of the start line. */
  readonly startedAt: number;
  /** The execution's process name, if any. */
  readonly name?: string;
}

/** pino's stream, as the logger writes to it (a destination, a multistream or a transport). */
interface PinoStream {
  write(line: string): unknown;
  flush?(cb: (err?: Error) => void): void;
  [key: symbol]: unknown;
}

const { streamSym, chindingsSym, needsMetadataGsym } = pino.symbols;
/** What pino's multistream reads off its stream before each write (pino/lib/proto.js). */
const METADATA = ['lastLevel', 'lastObj', 'lastMsg', 'lastTime', 'lastLogger'] as const;
/** Fields of every line that the stored line carries elsewhere (at, level, msg) or not at all. */
const LINE_KEYS = new Set(['level', 'time', 'msg']);

/** The log lines of the executions running on one node, on their way to Redis. */
export class ExecutionLogs {
  private pending = new Map<number, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly node: string,
    /** Told when a batch could not be written (the lines are dropped: they are only a diagnostic). */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /**
   * Tees the stream of `child` (the execution's child logger): every line it (or a child of it)
   * writes still goes to the node's stream unchanged, and is also kept for execution `number`.
   * `startedAt`: when the attempt started (the start line's time).
   */
  attach(child: Logger, run: CapturedRun): LineCapture {
    return new Capture(this, child, run);
  }

  /** @internal Queues a line of execution `number`. */
  push(number: number, entry: Omit<ExecutionLogLine, 'node'>): void {
    const line = storedLine({ ...entry, node: this.node });
    let lines = this.pending.get(number);
    if (!lines) {
      lines = [];
      this.pending.set(number, lines);
    }
    lines.push(line);
    // Only the newest MAX_LINES survive in Redis: older ones need not travel.
    if (lines.length > MAX_LINES) {
      lines.shift();
    }
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** @internal Sends what is pending right after this turn of the event loop. */
  soon(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), 0).unref();
  }

  /** Sends every pending line in one pipeline; resolves when it is written (or failed). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) {
      return this.flushing;
    }
    const batch = this.pending;
    this.pending = new Map();
    const pipeline = this.redis.pipeline();
    for (const [number, lines] of batch) {
      const key = this.keys.executionLogs(number);
      pipeline
        .rpush(key, ...lines)
        .ltrim(key, -MAX_LINES, -1)
        .pexpire(key, LOG_TTL_MS);
    }
    this.flushing = pipeline.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err);
        if (failed) {
          this.onError(failed[0]);
        }
      },
      (err: unknown) => this.onError(err),
    );
    return this.flushing;
  }
}

/** One execution's capture: the tee on its child logger's stream. */
class Capture implements LineCapture {
  private ended = false;
  private started = false;
  /** The bindings every line of the child carries (pid, hostname, name, execution, procedure). */
  private readonly base: Record<string, unknown>;
  private readonly labels: Record<string, string>;

  constructor(
    private readonly logs: ExecutionLogs,
    readonly logger: Logger,
    private readonly run: CapturedRun,
  ) {
    const raw = logger as unknown as Record<symbol, unknown>;
    const target = raw[streamSym] as PinoStream;
    const chindings = String(raw[chindingsSym] ?? '');
    this.base = chindings ? (JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>) : {};
    this.labels = logger.levels.labels;
    const tee: PinoStream = {
      write: (s: string) => {
        if (target[needsMetadataGsym] === true) {
          for (const k of METADATA) {
            (target as unknown as Record<string, unknown>)[k] = (tee as unknown as Record<string, unknown>)[
              k
            ];
          }
        }
        const written = target.write(s);
        this.keep(s);
        return written;
      },
      flush: (cb) => (typeof target.flush === 'function' ? target.flush(cb) : cb()),
      [needsMetadataGsym]: target[needsMetadataGsym],
    };
    // pino's children are made with Object.create(parent): children of ctx.log inherit the tee too.
    raw[streamSym] = tee;
  }

  end(outcome: string, durationMs: number, failure?: unknown): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    if (!this.started) {
      return;
    }
    const at = new Date().toISOString();
    if (failure !== undefined) {
      this.add({ at, level: 'warn', msg: 'execution threw', fields: { err: describeError(failure) } });
    }
    this.add({ at, level: 'info', msg: 'execution ended', fields: { durationMs, outcome } });
    this.logs.soon();
  }

  /** Keeps a line pino wrote; lines written after the end (code that goes on) are not kept. */
  private keep(s: string): void {
    if (this.ended) {
      return;
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(s) as Record<string, unknown>;
    } catch {
      return;
    }
    if (!this.started) {
      this.started = true;
      this.add({
        at: new Date(this.run.startedAt).toISOString(),
        level: 'info',
        msg: 'execution started',
        ...(this.run.name ? { fields: { name: this.run.name } } : {}),
      });
    }
    const fields: Record<string, unknown> = {};
    let some = false;
    for (const [k, v] of Object.entries(parsed)) {
      if (LINE_KEYS.has(k) || (k in this.base && this.base[k] === v)) {
        continue;
      }
      fields[k] = v;
      some = true;
    }
    const { time, level, msg } = parsed;
    this.add({
      at: new Date(typeof time === 'number' || typeof time === 'string' ? time : Date.now()).toISOString(),
      level: typeof level === 'number' ? (this.labels[level] ?? String(level)) : String(level ?? 'info'),
      msg: typeof msg === 'string' ? msg : msg === undefined ? '' : JSON.stringify(msg),
      ...(some ? { fields } : {}),
    });
  }

  private add(entry: Omit<ExecutionLogLine, 'node' | 'attempt'>): void {
    const { number, attempt } = this.run;
    this.logs.push(number, attempt > 0 ? { ...entry, attempt } : entry);
  }
}

/** The JSON stored for `entry`, cut to MAX_LINE_BYTES (its msg and fields shortened). */
export function storedLine(entry: ExecutionLogLine): string {
  const line: ExecutionLogLine = {
    at: entry.at,
    level: entry.level,
    msg: entry.msg,
    node: entry.node,
    ...(entry.attempt !== undefined ? { attempt: entry.attempt } : {}),
    ...(entry.fields ? { fields: entry.fields } : {}),
  };
  let json = JSON.stringify(line);
  const fields = entry.fields ? JSON.stringify(entry.fields) : undefined;
  // Escapes make bytes and characters differ: shorten until it fits (a few rounds at most).
  for (let chars = 1000; Buffer.byteLength(json) > MAX_LINE_BYTES && chars > 0; chars >>= 1) {
    line.msg = cut(entry.msg, chars);
    if (fields !== undefined) {
      line.fields = { truncated: cut(fields, chars) };
    }
    json = JSON.stringify(line);
  }
  return json;
}

function cut(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}…`;
}

/**
 * The kept lines of execution `number`, oldest first. Throws ExecutionNotFoundError when it has
 * none and no such execution exists (one round trip either way: see {@link linesAndJob}).
 */
export async function readExecutionLogs(
  redis: RedisConnection,
  keys: Keys,
  number: number,
): Promise<ExecutionLogLine[]> {
  const [listed, exists] = await linesAndJob(redis, keys, number);
  if (listed?.[0]) {
    throw listed[0];
  }
  const raw = (listed?.[1] as string[] | undefined) ?? [];
  if (raw.length === 0 && exists?.[1] !== 1) {
    throw new ExecutionNotFoundError(number);
  }
  const lines: ExecutionLogLine[] = [];
  for (const s of raw) {
    try {
      lines.push(JSON.parse(s) as ExecutionLogLine);
    } catch {
      // A line that is not ours (written by hand): skipped.
    }
  }
  return lines;
}

type Reply = [Error | null, unknown] | undefined;

/**
 * The LRANGE of execution `number`'s lines and the EXISTS of its job. With one queue shard both keys
 * are under `{prefix}`: one pipeline. With more, the job is under its shard's hash tag, and a Cluster's
 * pipeline keeps to one slot: two commands sent together instead, still one round trip of time.
 */
async function linesAndJob(redis: RedisConnection, keys: Keys, number: number): Promise<[Reply, Reply]> {
  const lines = keys.executionLogs(number);
  const job = executionJobKey(keys, number);
  if (keys.queues.count === 1) {
    const [listed, exists] = (await redis.pipeline().lrange(lines, 0, -1).exists(job).exec()) ?? [];
    return [listed, exists];
  }
  const reply = <T>(work: Promise<T>): Promise<[Error | null, unknown]> =>
    work.then(
      (value): [Error | null, unknown] => [null, value],
      (err: unknown): [Error | null, unknown] => [err instanceof Error ? err : new Error(String(err)), null],
    );
  return Promise.all([reply(redis.lrange(lines, 0, -1)), reply(redis.exists(job))]);
}

/**
 * sprocd's own event stream: system events and backup progress, for GET /v1/events (beside
 * BullMQ's job events) and GET /v1/system-events. One Redis stream per deployment, written by every
 * node with XADD and trimmed to about {@link EVENT_LOG_MAX_LEN} entries.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { parseStreamId } from './ids.js';
import { fieldsOf } from './bull-events.js';

/** Entries kept (approximately: Redis trims whole blocks). */
export const EVENT_LOG_MAX_LEN = 20_000;

/** One entry of the log as written. */
export interface LogEntry {
  /** The stream id. */
  id: string;
  /** When Redis took it (ms, from the id). */
  at: number;
  type: string;
  data: Record<string, unknown>;
}

/** Appends to and reads the deployment's event log. */
export class EventLog {
  constructor(
    private readonly redis: RedisConnection,
    /** The stream's key. */
    readonly key: string,
    private readonly logger?: Logger,
  ) {}

  /** Appends an event; never throws (an event lost while Redis is away is only logged). */
  append(type: string, data: Record<string, unknown>): void {
    this.redis
      .xadd(this.key, 'MAXLEN', '~', EVENT_LOG_MAX_LEN, '*', 'type', type, 'data', JSON.stringify(data))
      .catch((err: unknown) => this.logger?.debug({ err, type }, 'event not written to the event log'));
  }

  /** The newest entries of `type`, newest first, at most `limit`; reads at most `scanLimit` entries. */
  async newest(type: string, limit: number, scanLimit = EVENT_LOG_MAX_LEN): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    let end = '+';
    let scanned = 0;
    const page = Math.max(limit * 4, 200);
    while (out.length < limit && scanned < scanLimit) {
      const rows = (await this.redis.xrevrange(this.key, end, '-', 'COUNT', page)) as [string, string[]][];
      for (const [id, raw] of rows) {
        const entry = logEntryOf(id, raw);
        if (entry?.type === type) {
          out.push(entry);
          if (out.length === limit) {
            break;
          }
        }
      }
      scanned += rows.length;
      const last = rows[rows.length - 1];
      if (rows.length < page || !last) {
        break;
      }
      end = `(${last[0]}`;
    }
    return out;
  }
}

/** An entry of the log, or undefined for one this version cannot read. */
export function logEntryOf(id: string, raw: readonly string[]): LogEntry | undefined {
  const fields = fieldsOf(raw);
  const parsed = parseStreamId(id);
  if (!parsed || fields.type === undefined || fields.data === undefined) {
    return undefined;
  }
  try {
    const data = JSON.parse(fields.data) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return undefined;
    }
    return { id, at: parsed.ms, type: fields.type, data: data as Record<string, unknown> };
  } catch {
    return undefined;
  }
}

/**
 * The audit trail: who changed what. One Redis stream per deployment (`{prefix}:audit`), trimmed to
 * SPROCD_AUDIT_MAX entries, so it stays bounded; every node appends to it and reads it (GET /v1/audit,
 * `sprocd audit`, the console). An entry's stream id is its time and its place: pages go back from it.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { auditAppend } from '../redis/scripts.js';
import { ValidationError } from '../errors.js';
import type { JsonValue } from '../types.js';

/** What a caller did; each state-changing route records one (./route-scopes.ts). */
export const AUDIT_ACTIONS = [
  'execute',
  'abort',
  'wake',
  'delay',
  'pause',
  'resume',
  'retry',
  'remove',
  'bulk',
  'backup',
  'restore',
  'storage.write',
  'worker.call',
  'worker.kill',
  'signal.trigger',
] as const;

/** One of {@link AUDIT_ACTIONS}. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** What a node records. */
export interface AuditRecord {
  /** The caller's name (`SPROCD_TOKEN`, `loopback`, or a callers file's name). */
  readonly caller: string;
  readonly action: AuditAction;
  /** The HTTP status of the answer (2xx: done; else refused or failed, as the status says). */
  readonly status: number;
  /** The node that answered. */
  readonly node: string;
  /** The client's address as the node saw it. */
  readonly ip?: string;
  /** What it acted on and what came of it: procedure, execution, key, backup, ... */
  readonly details?: Record<string, JsonValue>;
}

/** A recorded entry: its id (the paging cursor) and time, and the record. */
export interface AuditEntry extends AuditRecord {
  readonly id: string;
  /** When it was recorded (ISO), from Redis's clock. */
  readonly at: string;
}

/** A page of the trail, newest first. */
export interface AuditPage {
  readonly items: AuditEntry[];
  /** Pass as `before` for the next (older) page; absent at the oldest entry. */
  readonly nextCursor?: string;
}

/** What a page asks for. */
export interface AuditQuery {
  /** At most this many entries. @defaultValue 50 */
  readonly limit?: number;
  /** Entries older than this cursor (a previous page's nextCursor). */
  readonly before?: string;
  readonly caller?: string;
  readonly action?: AuditAction;
}

const ID = /^(\d{1,20})-(\d{1,20})$/;
/** Entries read per round while a filter leaves some out. */
const SCAN_CHUNK = 200;

/** The stream id just before `id` (Redis 6.2's exclusive ranges are not assumed). */
function before(id: string): string | undefined {
  const match = ID.exec(id);
  if (!match) {
    throw new ValidationError(`Bad cursor ${JSON.stringify(id.slice(0, 50))}: pass a page's nextCursor.`);
  }
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  if (seq > 0n) {
    return `${ms}-${seq - 1n}`;
  }
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : undefined;
}

/** A record waiting to be written, and its caller's promise. */
interface Pending {
  readonly json: string;
  readonly resolve: (id: string | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/** The audit trail of one deployment. */
export class AuditTrail {
  /**
   * `max` entries are kept (0 keeps none: record() does nothing). `redis` is the node's command
   * connection.
   */
  constructor(
    private readonly redis: RedisConnection,
    private readonly key: string,
    readonly max: number,
  ) {}

  /** Records waiting for the next write. */
  private pending: Pending[] = [];
  /** Whether a write is planned or in flight. */
  private busy = false;

  /**
   * Appends `record`, trimming the oldest beyond `max`; resolves with its id once Redis has it.
   * Writes are group commits: the records of one turn of the event loop go in one round trip, and
   * those that come while it is in flight go in the next, so a busy node makes few round trips and
   * an idle one waits for none.
   */
  record(record: AuditRecord): Promise<string | undefined> {
    if (this.max === 0) {
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ json: JSON.stringify(record), resolve, reject });
      if (!this.busy) {
        this.busy = true;
        setImmediate(() => this.write());
      }
    });
  }

  private write(): void {
    const batch = this.pending;
    this.pending = [];
    const next = () => {
      if (this.pending.length > 0) {
        this.write();
      } else {
        this.busy = false;
      }
    };
    const max = String(this.max);
    if (batch.length === 1) {
      const [one] = batch as [Pending];
      this.redis
        .xadd(this.key, 'MAXLEN', max, '*', 'e', one.json)
        .then(
          (id) => one.resolve(id ?? undefined),
          (err: unknown) => one.reject(err),
        )
        .finally(next);
      return;
    }
    // One script call, not a pipeline (see auditAppend-1.lua: a pipeline costs the node more here).
    auditAppend(
      this.redis,
      this.key,
      this.max,
      batch.map((entry) => entry.json),
    )
      .then(
        (ids) => batch.forEach((entry, i) => entry.resolve(ids[i])),
        (err: unknown) => batch.forEach((entry) => entry.reject(err)),
      )
      .finally(next);
  }

  /** How many entries it holds now. */
  length(): Promise<number> {
    return this.redis.xlen(this.key);
  }

  /** A page of entries, newest first, older than `query.before`, matching its filters. */
  async page(query: AuditQuery = {}): Promise<AuditPage> {
    const limit = query.limit ?? 50;
    const filtered = query.caller !== undefined || query.action !== undefined;
    const items: AuditEntry[] = [];
    let end: string | undefined = query.before === undefined ? '+' : before(query.before);
    let last: string | undefined;
    while (end !== undefined && items.length < limit) {
      const count = filtered ? SCAN_CHUNK : limit - items.length;
      const rows = await this.redis.xrevrange(this.key, end, '-', 'COUNT', count);
      for (const [id, fields] of rows) {
        last = id;
        const entry = parseEntry(id, fields);
        if (
          entry &&
          (query.caller === undefined || entry.caller === query.caller) &&
          (query.action === undefined || entry.action === query.action)
        ) {
          items.push(entry);
          if (items.length === limit) {
            break;
          }
        }
      }
      end = rows.length < count || last === undefined ? undefined : before(last);
    }
    if (items.length === 0 || last === undefined) {
      return { items };
    }
    // One more entry beyond the page's last one means there is an older page.
    const cursor = filtered && items.length < limit ? undefined : last;
    if (cursor === undefined) {
      return { items };
    }
    const older = before(cursor);
    const more =
      older !== undefined && (await this.redis.xrevrange(this.key, older, '-', 'COUNT', 1)).length > 0;
    return more ? { items, nextCursor: cursor } : { items };
  }
}

/** An entry as stored, or undefined for one this version cannot read. */
function parseEntry(id: string, fields: string[]): AuditEntry | undefined {
  const index = fields.indexOf('e');
  const text = index >= 0 ? fields[index + 1] : undefined;
  if (text === undefined) {
    return undefined;
  }
  try {
    const record = JSON.parse(text) as AuditRecord;
    return { id, at: new Date(Number(id.slice(0, id.indexOf('-')))).toISOString(), ...record };
  } catch {
    return undefined;
  }
}

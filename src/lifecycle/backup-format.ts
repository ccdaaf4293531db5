/**
 * The backup file format: a gzip stream of JSON lines (docs/ARCHITECTURE.md#backups-and-restore;
 * docs/BACKUPS.md for operators).
 *
 * ```
 * {"format":"sprocd-backup","version":1,...}              header
 * {"t":"session","fields":{...}}                            the session identity hash
 * {"t":"sequence","value":N}                                the execution-number counter
 * {"t":"entry","k":"name","v":<entry JSON>}                 one line per storage entry
 * {"t":"execution","n":12,"state":"waiting",...}            one line per unfinished execution
 * {"t":"end","entries":E,"executions":X,"sha256":"<hex>"}   trailer
 * ```
 * The trailer's sha256 covers every byte (uncompressed) before it, header included, so a damaged
 * file, a truncated one (no trailer) and a foreign one are all told apart from a good one before a
 * restore changes anything.
 */
import { createHash, type Hash } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { z } from 'zod';
import { SprocdError, formatZodError } from '../errors.js';

/** The `format` of the header line. */
export const BACKUP_FORMAT = 'sprocd-backup';
/** The version this code writes and the only one it reads. */
export const BACKUP_VERSION = 1;
/** File name ending of backup files. */
export const BACKUP_EXTENSION = '.sprocd.gz';
/** Largest uncompressed backup a restore accepts (a gzip bomb stops here). */
const MAX_UNCOMPRESSED_BYTES = 4 * 1024 ** 3;

const gunzip = promisify(zlib.gunzip);

/** A file that is not a sound sprocd backup: damaged, truncated, foreign or of another version. */
export class BackupInvalidError extends SprocdError {
  constructor(reason: string) {
    super('BACKUP_INVALID', `Not a restorable sprocd backup: ${reason}. Nothing was changed.`, {
      details: { reason },
    });
  }
}

/** The first line of a backup file. */
export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
  /** SPROCD_PREFIX of the deployment it was taken from (a restore may go to another one). */
  prefix: string;
  node: string;
  number: number;
  trigger: string;
}

/** Where an execution was when the backup read it (active ones are restored as waiting). */
export type SourceList = 'wait' | 'paused' | 'prioritized' | 'delayed' | 'active';

/** One unfinished execution. */
export interface ExecutionLine {
  t: 'execution';
  /** Execution number (the job id is `e<n>`). */
  n: number;
  /** How it is restored: waiting (also active and prioritized ones) or delayed. */
  state: 'waiting' | 'delayed';
  /** Where it was at the backup. */
  from: SourceList;
  /** BullMQ job name (the procedure). */
  name: string;
  /** The job data: { procedure, params, id, name }. */
  data: unknown;
  /** Job options kept across a restore (attempts, backoff, retention, deduplication). */
  opts: Record<string, unknown>;
  /** Creation time (ms). */
  timestamp: number;
  /** Delayed ones: when they become due (ms). */
  dueAt?: number;
  /** Priority, when it had one. */
  priority?: number;
}

const Header = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.number().int(),
  createdAt: z.string(),
  prefix: z.string(),
  node: z.string(),
  number: z.number().int(),
  trigger: z.string(),
});

const SessionLine = z.object({ t: z.literal('session'), fields: z.record(z.string(), z.string()) });
const SequenceLine = z.object({ t: z.literal('sequence'), value: z.number().int().min(0) });
const EntryLine = z.object({ t: z.literal('entry'), k: z.string().min(1), v: z.unknown() });
const ExecutionLineSchema = z.object({
  t: z.literal('execution'),
  n: z.number().int().positive(),
  state: z.enum(['waiting', 'delayed']),
  from: z.enum(['wait', 'paused', 'prioritized', 'delayed', 'active']),
  name: z.string(),
  data: z.unknown(),
  opts: z.record(z.string(), z.unknown()),
  timestamp: z.number().int().min(0),
  dueAt: z.number().int().min(0).optional(),
  priority: z.number().int().min(0).optional(),
});
const Trailer = z.object({
  t: z.literal('end'),
  entries: z.number().int().min(0),
  executions: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** A backup read back and checked. */
export interface ParsedBackup {
  header: BackupHeader;
  /** The session identity hash (id, createdAtMs, ...). */
  session: Record<string, string>;
  /** The execution-number counter when the backup was taken. */
  sequence: number;
  /** Storage entry name → its JSON text, as the storage keeps it. */
  entries: Map<string, string>;
  executions: ExecutionLine[];
}

/**
 * Builds the lines of a backup and the running checksum. Every line goes through {@link line};
 * {@link trailer} closes the file.
 */
export class BackupEncoder {
  private readonly hash: Hash = createHash('sha256');
  entries = 0;
  executions = 0;

  /** One JSON line (as bytes), counted in the checksum. */
  line(value: unknown): Buffer {
    return this.raw(`${JSON.stringify(value)}\n`);
  }

  /** A storage entry line; `json` is the entry's stored JSON text, embedded as it is. */
  entry(name: string, json: string): Buffer {
    this.entries++;
    return this.raw(`{"t":"entry","k":${JSON.stringify(name)},"v":${json}}\n`);
  }

  /** An execution line. */
  execution(value: ExecutionLine): Buffer {
    this.executions++;
    return this.line(value);
  }

  /** The last line: counts and the checksum of everything before it. */
  trailer(): Buffer {
    const text = JSON.stringify({
      t: 'end',
      entries: this.entries,
      executions: this.executions,
      sha256: this.hash.digest('hex'),
    });
    return Buffer.from(`${text}\n`);
  }

  private raw(text: string): Buffer {
    const bytes = Buffer.from(text);
    this.hash.update(bytes);
    return bytes;
  }
}

/** The gzip level of backup files: speed first, JSON still shrinks several times. */
export const GZIP_LEVEL = 3;

/**
 * Reads a backup file's bytes and checks everything (gzip, format, version, checksum, each line's
 * shape, the counts) before returning it. Throws {@link BackupInvalidError}.
 */
export async function parseBackup(bytes: Buffer): Promise<ParsedBackup> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    throw new BackupInvalidError('it is not gzip data (a sprocd backup is a .sprocd.gz file)');
  }
  let text: Buffer;
  try {
    text = await gunzip(bytes, { maxOutputLength: Math.min(MAX_UNCOMPRESSED_BYTES, 2 ** 31 - 1) });
  } catch (err) {
    throw new BackupInvalidError(`the gzip data is damaged or truncated (${(err as Error).message})`);
  }
  const firstEnd = text.indexOf(10);
  if (firstEnd < 0) {
    throw new BackupInvalidError('it has no header line');
  }
  const header = parseLine(text, 0, firstEnd, 'the header');
  const h = Header.safeParse(header);
  if (
    !h.success &&
    !(
      typeof header === 'object' &&
      header !== null &&
      (header as { format?: unknown }).format === BACKUP_FORMAT
    )
  ) {
    throw new BackupInvalidError('its header is not that of a sprocd backup (a foreign file)');
  }
  const version = (header as { version?: unknown }).version;
  if (version !== BACKUP_VERSION) {
    throw new BackupInvalidError(
      `it is format version ${JSON.stringify(version)}; this sprocd reads version ${BACKUP_VERSION}`,
    );
  }
  if (!h.success) {
    throw new BackupInvalidError('its header is incomplete');
  }
  if (text[text.length - 1] !== 10) {
    throw new BackupInvalidError('it is truncated (no trailer line)');
  }
  const trailerStart = text.lastIndexOf(10, text.length - 2) + 1;
  if (trailerStart <= firstEnd) {
    throw new BackupInvalidError('it is truncated (no trailer line)');
  }
  const t = Trailer.safeParse(parseLine(text, trailerStart, text.length - 1, 'the trailer'));
  if (!t.success) {
    throw new BackupInvalidError('it is truncated or damaged (the last line is not the trailer)');
  }
  const actual = createHash('sha256').update(text.subarray(0, trailerStart)).digest('hex');
  if (actual !== t.data.sha256) {
    throw new BackupInvalidError('its checksum does not match (the file is damaged)');
  }

  let session: Record<string, string> | undefined;
  let sequence: number | undefined;
  const entries = new Map<string, string>();
  const executions: ExecutionLine[] = [];
  let pos = firstEnd + 1;
  let lineNo = 2;
  while (pos < trailerStart) {
    const end = text.indexOf(10, pos);
    const value = parseLine(text, pos, end, `line ${lineNo}`) as { t?: unknown };
    switch (value?.t) {
      case 'session':
        session = checked(SessionLine, value, lineNo).fields;
        break;
      case 'sequence':
        sequence = checked(SequenceLine, value, lineNo).value;
        break;
      case 'entry': {
        const e = checked(EntryLine, value, lineNo);
        entries.set(e.k, JSON.stringify(e.v));
        break;
      }
      case 'execution':
        executions.push(checked(ExecutionLineSchema, value, lineNo) as ExecutionLine);
        break;
      default:
        throw new BackupInvalidError(`line ${lineNo} is of an unknown kind`);
    }
    pos = end + 1;
    lineNo++;
  }
  if (session === undefined || typeof session.id !== 'string') {
    throw new BackupInvalidError('it holds no session identity');
  }
  if (sequence === undefined) {
    throw new BackupInvalidError('it holds no execution counter');
  }
  if (entries.size !== t.data.entries || executions.length !== t.data.executions) {
    throw new BackupInvalidError('its counts do not match its content');
  }
  return { header: h.data as BackupHeader, session, sequence, entries, executions };
}

function parseLine(text: Buffer, start: number, end: number, what: string): unknown {
  try {
    return JSON.parse(text.toString('utf8', start, end)) as unknown;
  } catch {
    throw new BackupInvalidError(`${what} is not JSON`);
  }
}

function checked<T>(schema: z.ZodType<T>, value: unknown, lineNo: number): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BackupInvalidError(`line ${lineNo} is malformed (${formatZodError(parsed.error)})`);
  }
  return parsed.data;
}

/**
 * Reads a backup file as it streams in (gunzip, line by line, sealed segment by segment) with
 * bounded memory: one line at a time, no line longer than the limits allow, the uncompressed size
 * capped. The header is checked first, and decides the trust: a file this node cannot verify
 * (unsigned, another key, version 1) is refused right there unless the caller allows it. Every
 * line is checked by backup-lines.ts; the checkpoints and the trailer by backup-signature.ts. A gzip
 * bomb stops at its first over-long line or at the first checkpoint it cannot show
 * (docs/BACKUPS.md#restore).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import {
  BACKUP_VERSION,
  BackupInvalidError,
  type BackupHeader,
  type ExecutionLine,
} from './backup-format.js';
import {
  MAX_HEADER_BYTES,
  checkEntry,
  checkExecution,
  checkHeader,
  checkSequence,
  checkSession,
  isObject,
  maxLineBytes,
  type RestoreLimits,
} from './backup-lines.js';
import {
  CHECK_INTERVAL_BYTES,
  ContentSeal,
  SIGNATURE_ALGORITHM,
  endLabel,
  sameDigest,
  type BackupKey,
} from './backup-signature.js';

/** The most uncompressed bytes a restore reads, whatever else holds. */
export const MAX_INFLATED_BYTES = 8 * 1024 ** 3;

/**
 * How far a file is trusted: `verified` (signed with this node's key, signature checked),
 * `unsigned` (written without SPROCD_BACKUP_KEY), `other-key` (signed with a key this node does not
 * have, or this node has none), `version-1` (written before backups were signed). Only `verified`
 * restores without the override; the others are still checked for damage.
 */
export type Trust = 'verified' | 'unsigned' | 'other-key' | 'version-1';

/** What reading checks a file against. */
export interface ReadOptions {
  /** SPROCD_BACKUP_KEY of this node, if set. */
  readonly key: BackupKey | undefined;
  /** The admin's explicit override: accept a file whose signature this node cannot verify. */
  readonly allowUnsigned: boolean;
  readonly limits: RestoreLimits;
}

/** A whole backup read into memory (tools and tests; a restore streams instead). */
export interface ParsedBackup {
  header: BackupHeader;
  trust: Trust;
  /** The session identity hash (id, createdAtMs, ...). */
  session: Record<string, string>;
  /** The execution-number counter when the backup was taken. */
  sequence: number;
  /** Storage entry name → its JSON text, as the storage keeps it. */
  entries: Map<string, string>;
  executions: ExecutionLine[];
}

/** How far reading went (for the log of a refusal, and for tests of early refusal). */
export interface ReadProgress {
  /** Uncompressed bytes inflated so far. */
  inflatedBytes: number;
}

/** One checked item of a backup, in file order. */
export type BackupItem =
  | { t: 'header'; header: BackupHeader; trust: Trust }
  | { t: 'session'; fields: Record<string, string> }
  | { t: 'sequence'; value: number }
  | { t: 'entry'; name: string; json: string }
  | { t: 'execution'; line: ExecutionLine }
  | { t: 'end'; entries: number; executions: number };

/**
 * The checked items of the gzip bytes `gzipped`, the header first, the trailer last; throws
 * {@link BackupInvalidError} at the first problem (so nothing after it is read).
 */
export async function* readBackup(
  gzipped: AsyncIterable<Buffer> | Iterable<Buffer>,
  options: ReadOptions,
  progress: ReadProgress = { inflatedBytes: 0 },
): AsyncGenerator<BackupItem> {
  const state = new ReaderState(options);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of inflate(gzipped)) {
    progress.inflatedBytes += chunk.length;
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      if (newline < 0) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        state.checkLength(pendingBytes);
        break;
      }
      const piece = chunk.subarray(start, newline + 1);
      const line = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      state.checkLength(line.length - 1);
      const item = state.line(line);
      if (item) {
        yield item;
      }
      start = newline + 1;
    }
  }
  if (state.lineNo === 0 && pendingBytes === 0) {
    throw new BackupInvalidError('it is empty');
  }
  if (state.lineNo === 0) {
    throw new BackupInvalidError('it has no header line');
  }
  if (pendingBytes > 0 || !state.ended) {
    throw new BackupInvalidError('it is truncated (no trailer line)');
  }
}

/**
 * Reads and checks a whole backup file held in memory, as a restore would (defaults: no key, no
 * override, the default limits). For tools and tests: a restore streams with {@link readBackup}.
 */
export async function parseBackup(bytes: Buffer, options: Partial<ReadOptions> = {}): Promise<ParsedBackup> {
  const parsed: Partial<ParsedBackup> = { entries: new Map(), executions: [] };
  const read = readBackup([bytes], {
    key: options.key,
    allowUnsigned: options.allowUnsigned ?? false,
    limits: options.limits ?? { maxEntryBytes: 1024 * 1024, maxParamsBytes: 1024 * 1024 },
  });
  for await (const item of read) {
    switch (item.t) {
      case 'header':
        parsed.header = item.header;
        parsed.trust = item.trust;
        break;
      case 'session':
        parsed.session = item.fields;
        break;
      case 'sequence':
        parsed.sequence = item.value;
        break;
      case 'entry':
        parsed.entries?.set(item.name, item.json);
        break;
      case 'execution':
        parsed.executions?.push(item.line);
        break;
      default:
        break;
    }
  }
  return parsed as ParsedBackup;
}

/** The line-by-line rules: order, kinds, seals, counts. */
class ReaderState {
  lineNo = 0;
  ended = false;
  private version = BACKUP_VERSION;
  private trust: Trust = 'unsigned';
  private seal = new ContentSeal(undefined);
  private readonly maxLine: number;
  private session: Record<string, string> | undefined;
  private sequence: number | undefined;
  private entries = 0;
  private executions = 0;

  constructor(private readonly options: ReadOptions) {
    this.maxLine = maxLineBytes(options.limits);
  }

  /** Refuses a line (or the unfinished line) longer than the limits allow. */
  checkLength(bytes: number): void {
    const max = this.lineNo === 0 ? MAX_HEADER_BYTES : this.maxLine;
    if (bytes > max) {
      throw new BackupInvalidError(
        this.lineNo === 0
          ? `its first ${max} bytes hold no header line (not a sprocd backup)`
          : `line ${this.lineNo + 1} is longer than ${max} bytes, more than any entry or params this deployment accepts`,
      );
    }
  }

  /** Checks one line (with its newline); returns its item, or undefined for a checkpoint. */
  line(bytes: Buffer): BackupItem | undefined {
    this.lineNo++;
    const at = `line ${this.lineNo}`;
    if (this.ended) {
      throw new BackupInvalidError(`${at} follows the trailer`);
    }
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8', 0, bytes.length - 1));
    } catch {
      throw new BackupInvalidError(`${this.lineNo === 1 ? 'the header' : at} is not JSON`);
    }
    if (this.lineNo === 1) {
      return this.header(value, bytes);
    }
    if (!isObject(value)) {
      throw new BackupInvalidError(`${at} is not a JSON object`);
    }
    if (value.t === 'check' && this.version === BACKUP_VERSION) {
      this.verify(value, 'check', at);
      return undefined;
    }
    if (value.t === 'end') {
      return this.end(value, at);
    }
    this.seal.update(bytes);
    if (this.version === BACKUP_VERSION && this.seal.segmentBytes > CHECK_INTERVAL_BYTES + this.maxLine) {
      throw new BackupInvalidError(`a checkpoint is missing before ${at} (the file was altered)`);
    }
    switch (value.t) {
      case 'session':
        if (this.session) {
          throw new BackupInvalidError(`${at} is a second session line`);
        }
        this.session = checkSession(value, this.lineNo);
        return { t: 'session', fields: this.session };
      case 'sequence':
        if (this.sequence !== undefined) {
          throw new BackupInvalidError(`${at} is a second sequence line`);
        }
        this.sequence = checkSequence(value, this.lineNo);
        return { t: 'sequence', value: this.sequence };
      case 'entry':
        this.entries++;
        return { t: 'entry', ...checkEntry(value, this.lineNo, this.options.limits) };
      case 'execution':
        this.executions++;
        return { t: 'execution', line: checkExecution(value, this.lineNo, this.options.limits) };
      default:
        throw new BackupInvalidError(`${at} is of an unknown kind`);
    }
  }

  private header(value: unknown, bytes: Buffer): BackupItem {
    const header = checkHeader(value);
    const { key, allowUnsigned } = this.options;
    this.version = header.version;
    let refusal: string | undefined;
    if (header.version !== BACKUP_VERSION) {
      this.trust = 'version-1';
      refusal = `it is format version ${header.version}, written before backups were signed`;
    } else if (header.signature !== SIGNATURE_ALGORITHM) {
      this.trust = 'unsigned';
      refusal = 'it is not signed (it was written where SPROCD_BACKUP_KEY was not set)';
    } else if (!key) {
      this.trust = 'other-key';
      refusal = 'it is signed, but this node has no SPROCD_BACKUP_KEY to verify the signature';
    } else if (header.keyId !== key.id) {
      this.trust = 'other-key';
      refusal = `it is signed with another key (key id ${String(header.keyId)}; SPROCD_BACKUP_KEY here has id ${key.id})`;
    } else {
      this.trust = 'verified';
    }
    if (refusal !== undefined && !allowUnsigned) {
      throw new BackupInvalidError(refusal, { override: true });
    }
    this.seal = new ContentSeal(
      this.trust === 'verified' ? key?.secret : undefined,
      header.version !== BACKUP_VERSION,
    );
    this.seal.update(bytes);
    return { t: 'header', header, trust: this.trust };
  }

  /** Checks the seal of the segment a checkpoint or the trailer closes. */
  private verify(value: Record<string, unknown>, label: string, at: string): void {
    const seal = this.seal.seal(label);
    if (!sameDigest(seal.sha256, value.sha256)) {
      throw new BackupInvalidError(
        `its checksum does not match at ${at} (the file is damaged or was altered)`,
      );
    }
    if (seal.hmac !== undefined && !sameDigest(seal.hmac, value.hmac)) {
      throw new BackupInvalidError(
        `its signature does not match at ${at}: the file was altered or forged (it is not what a node with this SPROCD_BACKUP_KEY wrote)`,
      );
    }
  }

  private end(value: Record<string, unknown>, at: string): BackupItem {
    const { entries, executions } = value;
    if (!Number.isSafeInteger(entries) || !Number.isSafeInteger(executions)) {
      throw new BackupInvalidError(`the trailer (${at}) is malformed`);
    }
    const counts = [entries as number, executions as number] as const;
    this.verify(value, this.version === BACKUP_VERSION ? endLabel(...counts) : '', at);
    if (this.session === undefined) {
      throw new BackupInvalidError('it holds no session identity');
    }
    if (this.sequence === undefined) {
      throw new BackupInvalidError('it holds no execution counter');
    }
    if (counts[0] !== this.entries || counts[1] !== this.executions) {
      throw new BackupInvalidError('its counts do not match its content');
    }
    this.ended = true;
    return { t: 'end', entries: this.entries, executions: this.executions };
  }
}

/** The uncompressed bytes of `gzipped`, checked to be gzip and capped at {@link MAX_INFLATED_BYTES}. */
async function* inflate(gzipped: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  const gunzip = zlib.createGunzip();
  const feeding = pipeline(Readable.from(gzipMagic(gzipped)), gunzip);
  // The reading below reports a failure of the feeding too (pipeline destroys gunzip with it).
  feeding.catch(() => undefined);
  let total = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_INFLATED_BYTES) {
        throw new BackupInvalidError(`it is larger than ${MAX_INFLATED_BYTES} bytes uncompressed`);
      }
      yield chunk;
    }
    await feeding;
  } catch (err) {
    throw zlibError(err);
  } finally {
    gunzip.destroy();
  }
}

/** `gzipped` as it is, after checking that it starts as gzip data does. */
async function* gzipMagic(gzipped: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  let head = Buffer.alloc(0);
  let checked = false;
  for await (const chunk of gzipped) {
    if (!checked) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 2) {
        continue;
      }
      if (head[0] !== 0x1f || head[1] !== 0x8b) {
        throw new BackupInvalidError('it is not gzip data (a sprocd backup is a .sprocd.gz file)');
      }
      checked = true;
      yield head;
      continue;
    }
    yield chunk;
  }
  if (!checked) {
    throw new BackupInvalidError('it is not gzip data (a sprocd backup is a .sprocd.gz file)');
  }
}

/** zlib's own errors are a damaged file; anything else stays what it is. */
function zlibError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new BackupInvalidError(`the gzip data is damaged or truncated (${(err as Error).message})`);
  }
  return err;
}

/**
 * The backup file format: a gzip stream of JSON lines (docs/ARCHITECTURE.md#backups-and-restore;
 * docs/BACKUPS.md for operators), and its writer.
 *
 * ```
 * {"format":"sprocd-backup","version":2,...,"signature":"hmac-sha256","keyId":"<16 hex>"}   header
 * {"t":"session","fields":{...}}                            the session identity hash
 * {"t":"sequence","value":N}                                the execution-number counter
 * {"t":"entry","k":"name","v":<entry JSON>}                 one line per storage entry
 * {"t":"execution","n":12,"state":"waiting",...}            one line per unfinished execution
 * {"t":"check","sha256":"<hex>","hmac":"<hex>"}             after every MiB of the lines above
 * {"t":"end","entries":E,"executions":X,"sha256":"<hex>","hmac":"<hex>"}   trailer
 * ```
 * The checkpoints and the trailer seal the lines since the previous one, chained
 * (backup-signature.ts): a reader refuses a damaged or forged file within a MiB of where it goes
 * wrong, and a truncated one (no trailer) before a restore changes anything. `hmac` is there when
 * the file was written under SPROCD_BACKUP_KEY (`"signature":"none"` and no `hmac` otherwise).
 * Version 1 (no checkpoints, no signature, one sha256 in the trailer) is read only with the
 * restore's override (backup-reader.ts).
 */
import { SprocdError } from '../errors.js';
import {
  CHECK_INTERVAL_BYTES,
  ContentSeal,
  SIGNATURE_ALGORITHM,
  endLabel,
  type BackupKey,
} from './backup-signature.js';

/** The `format` of the header line. */
export const BACKUP_FORMAT = 'sprocd-backup';
/** The version this code writes. */
export const BACKUP_VERSION = 2;
/** The version before signatures and checkpoints (read with the restore's override only). */
export const UNSIGNED_VERSION = 1;
/** File name ending of backup files. */
export const BACKUP_EXTENSION = '.sprocd.gz';
/** The gzip level of backup files: speed first, JSON still shrinks several times. */
export const GZIP_LEVEL = 3;

/** A file that is not a sound sprocd backup: damaged, truncated, foreign, unsigned, of another version. */
export class BackupInvalidError extends SprocdError {
  /**
   * `override`: the file is refused only because this node cannot verify its signature (unsigned,
   * another key, version 1); the restore's `allowUnsigned` would take it.
   */
  constructor(reason: string, options: { override?: boolean } = {}) {
    const hint = options.override
      ? ' To restore it anyway, pass allowUnsigned=true (sprocd restore --allow-unsigned) if you trust where it comes from.'
      : '';
    super('BACKUP_INVALID', `Not a restorable sprocd backup: ${reason}. Nothing was changed.${hint}`, {
      details: options.override ? { reason, override: 'allowUnsigned' } : { reason },
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
  /** Version 2: how the content is signed. */
  signature?: typeof SIGNATURE_ALGORITHM | 'none';
  /** Version 2, signed: the id of the key (backup-signature.ts), never the key. */
  keyId?: string;
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

/**
 * Builds the lines of a backup with their seals: every line goes through {@link line} (a checkpoint
 * follows it once a MiB of lines is unsealed); {@link trailer} closes the file.
 */
export class BackupEncoder {
  private readonly seal: ContentSeal;
  entries = 0;
  executions = 0;

  /** `key`: SPROCD_BACKUP_KEY; without it the file is sealed against damage only. */
  constructor(private readonly key: BackupKey | undefined) {
    this.seal = new ContentSeal(key?.secret);
  }

  /** The header's signature fields. */
  signature(): Pick<BackupHeader, 'signature' | 'keyId'> {
    return this.key ? { signature: SIGNATURE_ALGORITHM, keyId: this.key.id } : { signature: 'none' };
  }

  /** One JSON line (as bytes), sealed. */
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

  /** The last line: the counts and the seal of everything since the last checkpoint. */
  trailer(): Buffer {
    const seal = this.seal.seal(endLabel(this.entries, this.executions));
    const text = JSON.stringify({ t: 'end', entries: this.entries, executions: this.executions, ...seal });
    return Buffer.from(`${text}\n`);
  }

  private raw(text: string): Buffer {
    const bytes = Buffer.from(text);
    this.seal.update(bytes);
    if (this.seal.segmentBytes < CHECK_INTERVAL_BYTES) {
      return bytes;
    }
    const check = Buffer.from(`${JSON.stringify({ t: 'check', ...this.seal.seal('check') })}\n`);
    return Buffer.concat([bytes, check]);
  }
}

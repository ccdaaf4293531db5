/**
 * The seals of a backup file: an unkeyed SHA-256 (damage) and, under SPROCD_BACKUP_KEY, an
 * HMAC-SHA256 (forgery), both chained over segments of the content so that a reader checks them
 * as it streams, every {@link CHECK_INTERVAL_BYTES}, instead of only at the end
 * (docs/BACKUPS.md#the-file).
 *
 * Segment i (the content lines since the previous checkpoint) is sealed as
 * `digest_i = H(digest_{i-1} ‖ segment_i ‖ 0x00 ‖ label)` for SHA-256, and with HMAC(key, ...) for the
 * signature; `label` is `check` for a checkpoint and `end:<entries>:<executions>` for the trailer, so
 * a checkpoint cannot be passed off as the end (a truncated file) and the trailer's counts are sealed
 * too. Format version 1 had one segment, no label and no signature: its trailer is
 * `sha256(everything before it)`, which is this rule with an empty label and no 0x00.
 */
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';

/** The signature algorithm a signed header names. */
export const SIGNATURE_ALGORITHM = 'hmac-sha256';
/** Content bytes between two checkpoints (a writer seals once a segment reaches this). */
export const CHECK_INTERVAL_BYTES = 1024 * 1024;

/** SPROCD_BACKUP_KEY ready to sign and verify, with the id a header shows instead of the key. */
export interface BackupKey {
  /** The key's bytes (never logged, never written). */
  readonly secret: Buffer;
  /** 16 hex digits derived from the key: tells "signed with another key" from "forged". */
  readonly id: string;
}

/** The key of SPROCD_BACKUP_KEY, or undefined when it is not set. */
export function backupKey(secret: string | undefined): BackupKey | undefined {
  if (secret === undefined) {
    return undefined;
  }
  const bytes = Buffer.from(secret, 'utf8');
  const id = createHmac('sha256', bytes).update('sprocd backup key id').digest('hex').slice(0, 16);
  return { secret: bytes, id };
}

/** What a checkpoint or the trailer carries. */
export interface Seal {
  sha256: string;
  /** Present when the content is signed. */
  hmac?: string;
}

/** The running seals of a backup's content, segment by segment (see the top of this file). */
export class ContentSeal {
  private sha: Hash;
  private mac: Hmac | undefined;
  /** Content bytes in the open segment. */
  segmentBytes = 0;

  /** `key`: sign as well; `legacy`: the version-1 rule (one segment, no label). */
  constructor(
    private readonly key: Buffer | undefined,
    private readonly legacy = false,
  ) {
    this.sha = createHash('sha256');
    this.mac = key && createHmac('sha256', key);
  }

  /** Adds content bytes to the open segment. */
  update(bytes: Buffer): void {
    this.sha.update(bytes);
    this.mac?.update(bytes);
    this.segmentBytes += bytes.length;
  }

  /** Closes the open segment under `label` and opens the next one, chained to it. */
  seal(label: string): Seal {
    if (!this.legacy) {
      const tail = Buffer.from(`\0${label}`);
      this.sha.update(tail);
      this.mac?.update(tail);
    }
    const sha = this.sha.digest();
    const mac = this.mac?.digest();
    this.sha = createHash('sha256').update(sha);
    this.mac = this.key && mac && createHmac('sha256', this.key).update(mac);
    this.segmentBytes = 0;
    return mac ? { sha256: sha.toString('hex'), hmac: mac.toString('hex') } : { sha256: sha.toString('hex') };
  }
}

/** The label sealing the trailer. */
export function endLabel(entries: number, executions: number): string {
  return `end:${entries}:${executions}`;
}

/** Compares two hex digests in constant time; false for anything that is not one. */
export function sameDigest(expected: string, actual: unknown): boolean {
  if (typeof actual !== 'string' || actual.length !== expected.length || !/^[0-9a-f]+$/.test(actual)) {
    return false;
  }
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(actual, 'hex'));
}

/**
 * Tokens and their hashes. A node keeps only SHA-256 digests of tokens (a callers file holds the hex
 * digest, never the token), and finds a caller by comparing the digest of the token it is given with
 * every known digest in constant time: how long a lookup takes says nothing about how close a guess
 * came, nor which caller it matched.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a new token starts with, so that secret scanners and people recognise one. */
export const TOKEN_PREFIX = 'sprocd_';

/** A new token: the prefix and 32 random bytes (base64url). */
export function newToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** The SHA-256 digest of `token` (its UTF-8 bytes). */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The digest of `token` in hex, as a callers file's `tokenSha256` holds it. */
export function tokenSha256(token: string): string {
  return tokenDigest(token).toString('hex');
}

/** A set of digests, each with what it stands for, searched in constant time. */
export class DigestTable<T> {
  private readonly entries: readonly { digest: Buffer; value: T }[];

  constructor(entries: Iterable<{ digest: Buffer; value: T }>) {
    this.entries = [...entries];
    for (const entry of this.entries) {
      if (entry.digest.length !== 32) {
        throw new TypeError('a token digest is 32 bytes (SHA-256)');
      }
    }
  }

  /** How many digests it holds. */
  get size(): number {
    return this.entries.length;
  }

  /**
   * The value whose digest is `token`'s, or undefined. Compares with every entry, each in constant
   * time (all digests have one length, so timingSafeEqual never throws), and never stops early.
   */
  find(token: string): T | undefined {
    const given = tokenDigest(token);
    let found: T | undefined;
    for (const entry of this.entries) {
      // Both sides run whatever the outcome: `&&` would skip the comparison after a match.
      const equal = timingSafeEqual(given, entry.digest);
      if (equal && found === undefined) {
        found = entry.value;
      }
    }
    return found;
  }
}

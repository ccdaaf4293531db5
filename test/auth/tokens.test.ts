/** Tokens are kept as SHA-256 digests and looked up in constant time. */
import * as crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

// The lookup must use timingSafeEqual, against every digest, whatever matches: counted here.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const { DigestTable, TOKEN_PREFIX, newToken, tokenDigest, tokenSha256 } =
  await import('../../src/auth/tokens.js');

describe('tokens', () => {
  it('makes long random tokens with a recognisable prefix', () => {
    const a = newToken();
    const b = newToken();
    expect(a).not.toBe(b);
    expect(a.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(a.length).toBeGreaterThanOrEqual(TOKEN_PREFIX.length + 43);
    expect(a.slice(TOKEN_PREFIX.length)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('hashes with SHA-256 (hex as the callers file holds it)', () => {
    expect(tokenSha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(tokenDigest('abc').toString('hex')).toBe(tokenSha256('abc'));
  });

  it('compares with timingSafeEqual against every digest, never stopping at a match', () => {
    const names = ['first', 'second', 'third', 'fourth'];
    const table = new DigestTable(
      names.map((name) => ({ digest: tokenDigest(`token-${name}`), value: name })),
    );
    const equal = vi.mocked(crypto.timingSafeEqual);
    for (const [token, expected] of [
      ['token-first', 'first'],
      ['token-fourth', 'fourth'],
      ['token-none', undefined],
      ['', undefined],
      ['x'.repeat(10_000), undefined],
    ] as const) {
      equal.mockClear();
      expect(table.find(token)).toBe(expected);
      expect(equal).toHaveBeenCalledTimes(names.length);
      // Always two 32-byte digests: the token's length never reaches the comparison.
      for (const [a, b] of equal.mock.calls) {
        expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
      }
    }
  });

  it('refuses a digest that is not 32 bytes', () => {
    expect(() => new DigestTable([{ digest: Buffer.alloc(16), value: 'x' }])).toThrow(/32 bytes/);
  });
});

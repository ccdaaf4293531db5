/**
 * The value and key rules of the storage, without Redis: what is JSON, what is refused and how the
 * error names the entry and the path.
 */
import { describe, expect, it } from 'vitest';
import {
  StorageEntryTooLargeError,
  StorageKeyInvalidError,
  StorageValueInvalidError,
} from '../../src/session/errors.js';
import {
  MAX_KEY_LENGTH,
  assertJsonValue,
  assertKey,
  copyJsonValue,
  normalizeKeys,
  serializeEntry,
} from '../../src/session/values.js';

function refusal(value: unknown, key = 'cfg', path = 'cfg.x'): StorageValueInvalidError {
  try {
    assertJsonValue(value, key, path);
  } catch (err) {
    expect(err).toBeInstanceOf(StorageValueInvalidError);
    return err as StorageValueInvalidError;
  }
  throw new Error(`accepted ${String(value)}`);
}

describe('JSON values', () => {
  it('accepts JSON: null, booleans, strings, finite numbers, arrays, plain and null-prototype objects', () => {
    const nullProto = Object.create(null) as Record<string, unknown>;
    nullProto.a = 1;
    for (const v of [
      null,
      true,
      false,
      '',
      'é✓',
      0,
      -0,
      1.5,
      -1e300,
      [],
      [1, 'a', null],
      {},
      { a: { b: [{}] } },
      nullProto,
    ]) {
      expect(() => assertJsonValue(v, 'k', 'k')).not.toThrow();
    }
  });

  it('accepts the same object in two places (not a cycle)', () => {
    const shared = { x: 1 };
    expect(() => assertJsonValue({ a: shared, b: shared, c: [shared, shared] }, 'k', 'k')).not.toThrow();
  });

  it.each([
    ['a function', () => 1, 'is a function'],
    ['a symbol', Symbol('s'), 'is a symbol'],
    ['a BigInt', 10n, 'is a BigInt'],
    ['NaN', NaN, 'is NaN'],
    ['Infinity', Infinity, 'is Infinity'],
    ['-Infinity', -Infinity, 'is -Infinity'],
    ['undefined', undefined, 'is undefined'],
    ['a Date', new Date(0), 'is a Date, not a plain object'],
    ['a Map', new Map(), 'is a Map, not a plain object'],
    ['a class instance', new (class Point {})(), 'is a Point, not a plain object'],
    ['a Buffer', Buffer.from('x'), 'not a plain object'],
    ['a RegExp', /x/, 'is a RegExp'],
  ])('refuses %s, naming key and path', (_label, value, reason) => {
    const err = refusal(value);
    expect(err.code).toBe('STORAGE_VALUE_INVALID');
    expect(err.message).toContain('storage "cfg"');
    expect(err.message).toContain('cfg.x');
    expect(err.message).toContain(reason);
    expect(err.details).toMatchObject({ key: 'cfg', path: 'cfg.x' });
  });

  it('refuses undefined and holes in arrays, with the index in the path', () => {
    expect(refusal({ list: [1, undefined] }, 'cfg', 'cfg').message).toContain(
      'cfg.list[1] is undefined in an array',
    );
    // eslint-disable-next-line no-sparse-arrays
    expect(refusal([1, , 3], 'cfg', 'cfg').message).toContain('cfg[1] is a hole');
  });

  it('accepts undefined object properties (they are removed when stored)', () => {
    expect(() => assertJsonValue({ a: undefined, b: 1 }, 'k', 'k')).not.toThrow();
    expect(copyJsonValue({ a: undefined, b: 1 }, 'k', 'k')).toEqual({ b: 1 });
    expect(Object.keys(copyJsonValue({ a: undefined, b: 1 }, 'k', 'k') as object)).toEqual(['b']);
  });

  it('refuses cycles, deep inside too', () => {
    const a: Record<string, unknown> = { list: [] };
    (a.list as unknown[]).push({ back: a });
    const err = refusal(a, 'cfg', 'cfg');
    expect(err.message).toContain('cfg.list[0].back is a cycle');
  });

  it('refuses symbol keys, getters and Array subclasses', () => {
    expect(refusal({ [Symbol('s')]: 1 }).message).toContain('symbol-keyed');
    expect(
      refusal(
        Object.defineProperty({}, 'g', {
          get: () => 1,
          enumerable: true,
        }),
        'cfg',
        'cfg',
      ).message,
    ).toContain('cfg.g is a getter or setter');
    class MyArray extends Array {}
    expect(refusal(MyArray.from([1])).message).toContain('Array subclass');
  });

  it('names odd property names in bracket form', () => {
    expect(refusal({ 'a b': { 'x-y': () => 0 } }, 'my key', '["my key"]').message).toContain(
      '["my key"]["a b"]["x-y"] is a function',
    );
  });

  it('copies into fresh plain objects, and keeps "__proto__" as an ordinary key', () => {
    const source = JSON.parse('{"__proto__": {"polluted": true}, "a": [1, {"b": 2}]}') as Record<
      string,
      unknown
    >;
    const copy = copyJsonValue(source, 'k', 'k') as Record<string, unknown>;
    expect(copy).not.toBe(source);
    expect((copy.a as unknown[])[1]).not.toBe((source.a as unknown[])[1]);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting deeper than the limit instead of overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) {
      deep = [deep];
    }
    expect(refusal(deep, 'k', 'k').message).toContain('nested deeper than');
  });
});

describe('entries', () => {
  it('serializes within the size limit and refuses above it with the sizes', () => {
    expect(serializeEntry('k', { a: 'x'.repeat(10) }, 100)).toBe('{"a":"xxxxxxxxxx"}');
    try {
      serializeEntry('big', { a: 'é'.repeat(60) }, 100);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(StorageEntryTooLargeError);
      const e = err as StorageEntryTooLargeError;
      expect(e.code).toBe('STORAGE_ENTRY_TOO_LARGE');
      expect(e.message).toContain('"big"');
      expect(e.details).toEqual({ key: 'big', bytes: 128, limit: 100 });
    }
  });
});

describe('keys', () => {
  it('accepts any non-empty string up to the limit', () => {
    for (const k of ['a', 'with space', 'ünïcødé', 'a:b{c}', 'x'.repeat(MAX_KEY_LENGTH)]) {
      expect(() => assertKey(k)).not.toThrow();
    }
  });

  it.each([
    ['empty', ''],
    ['too long', 'x'.repeat(MAX_KEY_LENGTH + 1)],
    ['a number', 42],
    ['a lone surrogate', 'a\uD800'],
  ])('refuses a key that is %s', (_label, key) => {
    expect(() => assertKey(key)).toThrow(StorageKeyInvalidError);
  });

  it('normalizes use() keys', () => {
    expect(normalizeKeys('a')).toEqual(['a']);
    expect(normalizeKeys(['b', 'a'])).toEqual(['b', 'a']);
    expect(() => normalizeKeys([])).toThrow(/names no key/);
    expect(() => normalizeKeys(['a', 3])).toThrow(StorageKeyInvalidError);
    expect(() => normalizeKeys({})).toThrow(StorageKeyInvalidError);
  });
});

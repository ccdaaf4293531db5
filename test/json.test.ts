/**
 * The one JSON rule (src/json.ts), without Redis: what is JSON, depth, size, and the path of the first
 * bad part; the storage's presets of it are tested in test/session/values.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, checkJson, copyJson, pathStep, rootPath, toJsonText } from '../src/json.js';

class Refused extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path} ${reason}`);
  }
}

const options = { path: 'v', refuse: (path: string, reason: string) => new Refused(path, reason) };

function refusal(value: unknown): Refused {
  try {
    checkJson(value, options);
  } catch (err) {
    expect(err).toBeInstanceOf(Refused);
    return err as Refused;
  }
  throw new Error('accepted');
}

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) {
    value = [value];
  }
  return value;
}

describe('checkJson', () => {
  it('accepts JSON, undefined object properties and the same object in two places', () => {
    const shared = { x: 1 };
    for (const v of [
      null,
      true,
      'é',
      0,
      -1.5,
      [],
      {},
      { a: [1, { b: null }] },
      { gone: undefined },
      [shared, shared],
    ]) {
      expect(() => checkJson(v, options)).not.toThrow();
    }
  });

  it.each([
    ['undefined', undefined, 'v', 'is undefined'],
    ['NaN', NaN, 'v', 'is NaN'],
    ['a BigInt deep inside', { a: [1, 2n] }, 'v.a[1]', 'is a BigInt'],
    ['a function', { f: () => 1 }, 'v.f', 'is a function'],
    ['a symbol', [Symbol('s')], 'v[0]', 'is a symbol'],
    ['a Map', { m: new Map() }, 'v.m', 'is a Map, not a plain object'],
    ['a Date', new Date(0), 'v', 'is a Date, not a plain object'],
    ['undefined in an array', [1, undefined], 'v[1]', 'is undefined in an array'],
    ['an odd key', { 'a b': { c: Infinity } }, 'v["a b"].c', 'is Infinity'],
  ])('refuses %s, naming the path', (_label, value, path, reason) => {
    const err = refusal(value);
    expect(err.path).toBe(path);
    expect(err.reason).toContain(reason);
  });

  it('refuses a cycle at the place it closes', () => {
    const a: Record<string, unknown> = { list: [{}] };
    (a.list as Record<string, unknown>[])[0]!.back = a;
    expect(refusal(a)).toMatchObject({ path: 'v.list[0].back', reason: expect.stringContaining('cycle') });
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses one more, with a short path`, () => {
    expect(() => checkJson(nested(MAX_JSON_DEPTH), options)).not.toThrow();
    const err = refusal(nested(MAX_JSON_DEPTH + 1));
    expect(err.reason).toBe(`is nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(err.path.length).toBeLessThanOrEqual(81);
    expect(err.path).toMatch(/^v\[0\]\[0\].*…$/);
  });

  it('refuses what JSON cannot say: symbol keys, getters, holes, Array subclasses', () => {
    expect(refusal({ [Symbol('k')]: 1 }).reason).toContain('symbol-keyed');
    expect(refusal(Object.defineProperty({}, 'g', { get: () => 1, enumerable: true })).path).toBe('v.g');
    // eslint-disable-next-line no-sparse-arrays
    expect(refusal([1, , 3]).reason).toContain('hole');
    class List extends Array {}
    expect(refusal(List.from([1])).reason).toContain('Array subclass');
  });
});

describe('copyJson', () => {
  it('returns a fresh deep copy without undefined properties', () => {
    const source = { a: [1, { b: 2 }], gone: undefined };
    const copy = copyJson(source, options) as typeof source;
    expect(copy).toEqual({ a: [1, { b: 2 }] });
    expect(Object.keys(copy)).toEqual(['a']);
    expect(copy.a).not.toBe(source.a);
  });

  it('reads each object through unwrap', () => {
    const real = { n: 1 };
    const stand = { n: 'stand-in' };
    expect(copyJson({ x: stand }, { ...options, unwrap: (o) => (o === stand ? real : o) })).toEqual({
      x: { n: 1 },
    });
  });
});

describe('toJsonText', () => {
  const text = (value: unknown, maxBytes: number, trusted = false) =>
    toJsonText(value, {
      ...options,
      maxBytes,
      trusted,
      tooLarge: (bytes, limit) => new Error(`${bytes} > ${limit}`),
    });

  it('gives the JSON text within the limit', () => {
    expect(text({ a: 'x' }, 9)).toBe('{"a":"x"}');
  });

  it('measures the limit in UTF-8 bytes, not characters', () => {
    expect(() => text('é'.repeat(4), 9)).toThrow('10 > 9');
    expect(text('é'.repeat(3), 9)).toBe('"ééé"');
  });

  it('checks the value unless it is trusted', () => {
    expect(() => text({ d: new Date(0) }, 100)).toThrow(Refused);
    expect(text({ n: 1 }, 100, true)).toBe('{"n":1}');
  });
});

describe('paths', () => {
  it('names identifiers with dots and the rest in brackets', () => {
    expect(pathStep('v', 'name')).toBe('v.name');
    expect(pathStep('v', 'odd-name')).toBe('v["odd-name"]');
    expect(pathStep('v', 3)).toBe('v[3]');
    expect(rootPath('cfg')).toBe('cfg');
    expect(rootPath('my key')).toBe('["my key"]');
  });
});

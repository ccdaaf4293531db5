/** Params through a procedure's schema, without Redis: what a request stores, what a start runs with. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../../src/errors.js';
import { ParamsMismatchError, requestParams, runParams } from '../../src/procedures/params.js';

const withDefaults = z.object({ who: z.string().min(1).default('world'), times: z.number().default(1) });

describe('requestParams', () => {
  it('stores what the schema produced: defaults filled in', () => {
    expect(requestParams('hello', withDefaults, { who: 'Ada' })).toEqual({ who: 'Ada', times: 1 });
  });

  it('runs a schema whose fields all have defaults with no params', () => {
    expect(requestParams('hello', withDefaults, undefined)).toEqual({ who: 'world', times: 1 });
  });

  it('takes no params for an optional or defaulted schema as the schema says', () => {
    expect(requestParams('p', z.string().default('x'), undefined)).toBe('x');
    expect(requestParams('p', z.number().optional(), undefined)).toBeNull();
  });

  it('names the missing fields when an object schema needs some and none were sent', () => {
    const needs = z.object({ a: z.number(), b: z.number().default(2) });
    expect(() => requestParams('sum', needs, undefined)).toThrow(/params do not match procedure "sum": a: /);
  });

  it('refuses params the schema refuses, naming the path', () => {
    expect(() => requestParams('hello', withDefaults, { who: '' })).toThrow(ValidationError);
    expect(() => requestParams('hello', withDefaults, { who: '' })).toThrow(/who: /);
  });

  it('refuses an explicit null for an object schema (null is not "no params")', () => {
    expect(() => requestParams('hello', withDefaults, null)).toThrow(ValidationError);
  });

  it('keeps params as sent when the procedure has no schema (null when none)', () => {
    expect(requestParams('any', undefined, [1, 'a'])).toEqual([1, 'a']);
    expect(requestParams('any', undefined, undefined)).toBeNull();
  });

  it('refuses params that are not JSON', () => {
    expect(() => requestParams('any', undefined, { when: new Date() })).toThrow(/params must be JSON/);
  });

  it('refuses a schema whose output it would change again when the execution starts', () => {
    const doubling = z.number().transform((n) => n * 2);
    expect(() => requestParams('double', doubling, 2)).toThrow(/does not accept its own output unchanged/);
    const splitting = z.string().transform((s) => s.split(','));
    expect(() => requestParams('split', splitting, 'a,b')).toThrow(/does not accept its own output/);
  });

  it('accepts coercions and trims, which give back their own output', () => {
    expect(
      requestParams('c', z.object({ n: z.coerce.number(), s: z.string().trim() }), { n: '4', s: ' x ' }),
    ).toEqual({
      n: 4,
      s: 'x',
    });
  });
});

describe('runParams', () => {
  it('runs with the stored params through the schema of now', () => {
    expect(runParams('hello', withDefaults, { who: 'Ada', times: 1 })).toEqual({ who: 'Ada', times: 1 });
  });

  it('fills in a field a deploy added with a default', () => {
    const newer = withDefaults.extend({ loud: z.boolean().default(false) });
    expect(runParams('hello', newer, { who: 'Ada', times: 1 })).toEqual({
      who: 'Ada',
      times: 1,
      loud: false,
    });
  });

  it('fails with PARAMS_MISMATCH when the stored params no longer fit', () => {
    const newer = z.object({ who: z.number() });
    let caught: unknown;
    try {
      runParams('hello', newer, { who: 'Ada', times: 1 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParamsMismatchError);
    expect(caught).toMatchObject({ code: 'PARAMS_MISMATCH', details: { procedure: 'hello' } });
    expect((caught as Error).message).toMatch(/no longer match procedure "hello".*who: /);
  });

  it('reads a stored null as "no params" (executions queued before params were stored parsed)', () => {
    expect(runParams('hello', withDefaults, null)).toEqual({ who: 'world', times: 1 });
  });

  it('passes stored params through when the procedure has no schema', () => {
    expect(runParams('any', undefined, { a: 1 })).toEqual({ a: 1 });
  });
});

/**
 * defineProcedure, without Redis: what it accepts, what it refuses at load time (so a mistake stops
 * the start with the file's path), and the mark that tells its result from a bare function.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PROCEDURE_MARK, defineProcedure, type ProcedureDefinition } from '../../src/procedures/define.js';

const run = () => 'ok';

describe('defineProcedure', () => {
  it('returns the definition, frozen and marked', () => {
    const params = z.object({ a: z.number() });
    const procedure = defineProcedure({
      params,
      run,
      attempts: 3,
      backoff: { type: 'fixed', delayMs: 10 },
      timeoutMs: 500,
      description: 'adds',
      schedule: { cron: '*/5 * * * * *', params: { a: 1 } },
    });
    expect(procedure).toMatchObject({ params, run, attempts: 3, timeoutMs: 500, description: 'adds' });
    expect(procedure[PROCEDURE_MARK]).toBe(true);
    expect(Object.isFrozen(procedure)).toBe(true);
  });

  it('uses a global symbol as its mark, so two copies of sprocd agree', () => {
    expect(PROCEDURE_MARK).toBe(Symbol.for('sprocd.procedure'));
  });

  it('does not change the object it was given', () => {
    const definition = { run };
    defineProcedure(definition);
    expect(Object.getOwnPropertySymbols(definition)).toEqual([]);
    expect(Object.isFrozen(definition)).toBe(false);
  });

  it.each([
    ['a fixed delay of 0', 0],
    ['a fixed delay', 250],
    ['an exponential backoff', { type: 'exponential', delayMs: 1000 }],
  ] as const)('accepts %s as backoff', (_what, backoff) => {
    expect(defineProcedure({ run, backoff }).backoff).toEqual(backoff);
  });

  it.each(['inline', 'thread'] as const)("accepts isolation: '%s'", (isolation) => {
    expect(defineProcedure({ run, isolation }).isolation).toBe(isolation);
  });

  it.each([1, 2, 100])('accepts attempts: %i', (attempts) => {
    expect(defineProcedure({ run, attempts }).attempts).toBe(attempts);
  });

  it.each<[string, unknown, RegExp]>([
    ['no object', undefined, /needs an object with a run/],
    ['null', null, /needs an object with a run/],
    ['no run', {}, /needs an object with a run/],
    ['a run that is not a function', { run: 'x' }, /needs an object with a run/],
    ['attempts 0', { run, attempts: 0 }, /attempts must be a whole number of 1 or more/],
    ['fractional attempts', { run, attempts: 1.5 }, /attempts must be a whole number/],
    ['attempts as a string', { run, attempts: '2' }, /attempts must be a whole number/],
    ['timeoutMs 0', { run, timeoutMs: 0 }, /timeoutMs must be a positive number/],
    ['a negative timeoutMs', { run, timeoutMs: -1 }, /timeoutMs must be a positive number/],
    ['an infinite timeoutMs', { run, timeoutMs: Infinity }, /timeoutMs must be a positive number/],
    ['a negative backoff', { run, backoff: -1 }, /backoff must be a delay in ms/],
    ['a backoff without delayMs', { run, backoff: { type: 'fixed' } }, /backoff must be a delay in ms/],
    ['a backoff with a negative delayMs', { run, backoff: { type: 'fixed', delayMs: -5 } }, /backoff/],
    ['params that are not a zod schema', { run, params: { a: 'number' } }, /params must be a zod schema/],
    ['an unknown isolation', { run, isolation: 'process' }, /isolation must be 'inline' or 'thread'/],
  ])('refuses %s with a TypeError that says what is wrong', (_what, definition, message) => {
    expect(() => defineProcedure(definition as ProcedureDefinition)).toThrow(TypeError);
    expect(() => defineProcedure(definition as ProcedureDefinition)).toThrow(message);
  });
});

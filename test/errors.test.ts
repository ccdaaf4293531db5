/** The error classes: stable codes, details, zod's issues on one line, and what is stored of an error. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConflictError,
  ERROR_CODES,
  ExecutionNotFoundError,
  SprocdError,
  ValidationError,
  describeError,
  formatZodError,
} from '../src/errors.js';

describe('SprocdError', () => {
  it('carries its code, message, details and cause, and is named after its class', () => {
    const cause = new Error('under');
    const err = new ConflictError('BACKUP_RUNNING', 'busy', { running: 1 });
    expect(err).toBeInstanceOf(SprocdError);
    expect(err).toMatchObject({
      name: 'ConflictError',
      code: 'BACKUP_RUNNING',
      message: 'busy',
      details: { running: 1 },
    });
    expect(new SprocdError('INTERNAL', 'x', { cause }).cause).toBe(cause);
    expect(new SprocdError('INTERNAL', 'x').details).toBeUndefined();
  });

  it('lists each code once', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(new ExecutionNotFoundError(3).code).toBe('EXECUTION_NOT_FOUND');
  });
});

describe('zod issues', () => {
  const Schema = z.strictObject({
    a: z.number(),
    b: z.object({ list: z.array(z.string()) }),
    'odd key': z.boolean().optional(),
  });

  it('are one line: each issue as "path: message", paths in zod notation', () => {
    const parsed = Schema.safeParse({ a: 'x', b: { list: ['ok', 2] }, 'odd key': 1, extra: true });
    expect(parsed.success).toBe(false);
    const line = formatZodError(parsed.error!);
    expect(line).not.toMatch(/\n/);
    expect(line.split('; ')).toEqual([
      'a: Invalid input: expected number, received string',
      'b.list[1]: Invalid input: expected string, received number',
      '["odd key"]: Invalid input: expected boolean, received number',
      'Unrecognized key: "extra"',
    ]);
  });

  it('show the first five and count the rest', () => {
    const parsed = z.array(z.string()).safeParse([1, 2, 3, 4, 5, 6, 7]);
    expect(formatZodError(parsed.error!)).toMatch(/^\[0\]: .*; \[4\]: [^;]*; and 2 more$/);
  });

  it('make a ValidationError with the issues in its details', () => {
    const parsed = Schema.safeParse({ a: 1, b: { list: [] }, extra: 1 });
    const err = ValidationError.fromZod('Bad body', parsed.error!);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toBe('Bad body: Unrecognized key: "extra"');
    expect(err.details).toEqual({
      issues: [{ path: [], message: 'Unrecognized key: "extra"', code: 'unrecognized_keys' }],
    });
  });
});

describe('describeError', () => {
  it('keeps name, message and code of what was thrown, whatever it is', () => {
    expect(describeError(new ValidationError('bad'))).toEqual({
      name: 'ValidationError',
      message: 'bad',
      code: 'VALIDATION_FAILED',
    });
    const coded = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(describeError(coded)).toEqual({ name: 'Error', message: 'refused', code: 'ECONNREFUSED' });
    expect(describeError(new TypeError('t'))).toEqual({ name: 'TypeError', message: 't' });
    expect(describeError('just a string')).toEqual({ name: 'Error', message: 'just a string' });
  });
});

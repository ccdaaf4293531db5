/** How an execution's error is kept in BullMQ's failedReason, and read back. */
import { describe, expect, it } from 'vitest';
import { AbortedError, ValidationError } from '../../src/errors.js';
import {
  MAX_STACK_CHARS,
  decodeFailure,
  encodeFailure,
  failureError,
  failureHasStack,
} from '../../src/procedures/failure.js';

describe('failure encoding', () => {
  it('round-trips a sprocd error with its code', () => {
    expect(decodeFailure(encodeFailure(new AbortedError()))).toEqual({
      name: 'AbortedError',
      message: 'The execution was aborted.',
      code: 'ABORTED',
    });
  });

  it('round-trips any Error, with a string code when it has one, and a thrown non-error', () => {
    expect(decodeFailure(encodeFailure(new TypeError('boom')))).toEqual({
      name: 'TypeError',
      message: 'boom',
    });
    const coded = Object.assign(new Error('no file'), { code: 'ENOENT' });
    expect(decodeFailure(encodeFailure(coded))).toEqual({
      name: 'Error',
      message: 'no file',
      code: 'ENOENT',
    });
    expect(decodeFailure(encodeFailure('a string'))).toEqual({ name: 'Error', message: 'a string' });
  });

  it('stores JSON, so a message with quotes or newlines survives', () => {
    const reason = encodeFailure(new ValidationError('a "quoted"\nline'));
    expect(() => JSON.parse(reason) as unknown).not.toThrow();
    expect(decodeFailure(reason)?.message).toBe('a "quoted"\nline');
  });

  it("carries a procedure's stack, cut to 8 KiB, and never the stack of sprocd's own errors", () => {
    const thrown = new TypeError('boom');
    const err = failureError(thrown, Error);
    expect(err.stack).toBe(thrown.stack);
    expect(failureHasStack(err.message)).toBe(true);
    expect(decodeFailure(err.message)).toEqual({ name: 'TypeError', message: 'boom' });

    const long = Object.assign(new Error('deep'), {
      stack: `Error: deep\n${'    at f (x.js:1:1)\n'.repeat(1000)}`,
    });
    const cut = failureError(long, Error).stack ?? '';
    expect(cut.startsWith('Error: deep\n')).toBe(true);
    expect(cut.length).toBeLessThan(MAX_STACK_CHARS + 20);

    const own = failureError(new AbortedError(), Error);
    expect(failureHasStack(own.message)).toBe(false);
    expect(own.stack?.startsWith('Error: {')).toBe(true); // the wrapper's own, never shown
    expect(failureHasStack(encodeFailure('a string'))).toBe(false);
    expect(failureHasStack('job stalled more than allowable limit')).toBe(false);
  });

  it('reads nothing from an empty reason', () => {
    expect(decodeFailure(undefined)).toBeUndefined();
    expect(decodeFailure('')).toBeUndefined();
  });

  it("reads BullMQ's own plain-text reasons", () => {
    expect(decodeFailure('job stalled more than allowable limit')).toEqual({
      name: 'RecoveryLimitError',
      message: expect.stringMatching(/SPROCD_MAX_RECOVERIES.*stalled more than allowable limit/),
      code: 'RECOVERY_LIMIT',
    });
    expect(decodeFailure('something else')).toEqual({ name: 'Error', message: 'something else' });
  });

  it('reads text that only looks like JSON as text', () => {
    expect(decodeFailure('{not json')).toEqual({ name: 'Error', message: '{not json' });
    expect(decodeFailure('{"no":"message"}')).toEqual({ name: 'Error', message: '{"no":"message"}' });
  });
});

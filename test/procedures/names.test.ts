/** The naming rules of procedures and process names, without Redis. */
import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../../src/errors.js';
import {
  PROCEDURE_NAME_MAX,
  PROCESS_NAME_MAX,
  SEMAPHORE_NAME_MAX,
  assertProcedureName,
  assertProcessName,
  assertSemaphoreName,
} from '../../src/procedures/names.js';

describe('procedure names', () => {
  it.each(['hello', 'billing/sendInvoices', 'a_b-c/D9/e', 'x'.repeat(PROCEDURE_NAME_MAX)])(
    'accepts %s',
    (name) => {
      expect(() => assertProcedureName(name)).not.toThrow();
    },
  );

  it.each([
    ['an empty name', '', /non-empty/],
    ['a number', 42, /non-empty string/],
    ['a name too long', 'x'.repeat(PROCEDURE_NAME_MAX + 1), /201 characters; at most 200/],
    ['a parent path', '../etc/passwd', /segments/],
    ['a leading slash', '/hello', /segments/],
    ['a trailing slash', 'hello/', /segments/],
    ['an empty segment', 'a//b', /segments/],
    ['a dot', 'a.b', /segments/],
    ['a space', 'a b', /segments/],
  ])('refuses %s with INVALID_NAME', (_label, name, message) => {
    expect(() => assertProcedureName(name)).toThrow(InvalidNameError);
    expect(() => assertProcedureName(name)).toThrow(message);
  });
});

describe('process names', () => {
  it.each(['worker', 'a name with spaces/and:colons', 'x'.repeat(PROCESS_NAME_MAX), 'a$'])(
    'accepts %s',
    (name) => {
      expect(() => assertProcessName(name)).not.toThrow();
    },
  );

  it.each([
    ['an empty name', '', /non-empty/],
    ['not a string', null, /non-empty/],
    ['a name too long', 'x'.repeat(PROCESS_NAME_MAX + 1), /256 characters; at most 255/],
    ['a local process name', '$local', /must not start with "\$"/],
  ])('refuses %s with INVALID_NAME', (_label, name, message) => {
    try {
      assertProcessName(name);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidNameError);
      expect((err as InvalidNameError).code).toBe('INVALID_NAME');
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('semaphore names', () => {
  it.each(['ledger', 'a b/c:d', '4D €', 'x'.repeat(SEMAPHORE_NAME_MAX)])('accepts %j', (name) => {
    expect(() => assertSemaphoreName(name)).not.toThrow();
  });

  it.each([
    ['', /non-empty/],
    [undefined, /non-empty/],
    [7, /non-empty/],
    ['x'.repeat(SEMAPHORE_NAME_MAX + 1), /at most 255/],
    ['$local', /local semaphores/],
  ])('refuses %j with INVALID_NAME', (name, message) => {
    expect(() => assertSemaphoreName(name)).toThrow(InvalidNameError);
    expect(() => assertSemaphoreName(name)).toThrow(message);
  });
});

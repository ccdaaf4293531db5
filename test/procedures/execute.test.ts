/** Execute on server's options, one schema for the API and ctx.executeOnServer; the one executeOnServer. */
import { describe, expect, it } from 'vitest';
import { InvalidNameError, ValidationError } from '../../src/errors.js';
import {
  MAX_ATTEMPTS,
  MAX_DELAY_MS,
  MAX_PRIORITY,
  executeOnServerBatchWith,
  executeOnServerWith,
  parseExecuteOptions,
} from '../../src/procedures/execute.js';
import type { ExecutionView } from '../../src/types.js';

describe('parseExecuteOptions', () => {
  it('accepts the options within their ranges, and none at all', () => {
    const all = {
      name: 'n',
      unique: true,
      delayMs: MAX_DELAY_MS,
      priority: MAX_PRIORITY,
      attempts: MAX_ATTEMPTS,
    };
    expect(parseExecuteOptions(all)).toEqual(all);
    expect(parseExecuteOptions(undefined)).toEqual({});
    expect(parseExecuteOptions({ delayMs: 0, priority: 0, attempts: 1 })).toEqual({
      delayMs: 0,
      priority: 0,
      attempts: 1,
    });
  });

  it.each([
    ['a negative delay', { delayMs: -1 }, /^Bad options: delayMs: /],
    ['a delay over ten years', { delayMs: MAX_DELAY_MS + 1 }, /delayMs: Too big/],
    ['a fractional priority', { priority: 1.5 }, /priority: /],
    ['0 attempts', { attempts: 0 }, /attempts: Too small/],
    ['a string for a number', { attempts: '2' }, /attempts: Invalid input: expected number/],
    ['an unknown option', { delay: 5 }, /Unrecognized key: "delay"/],
    ['unique without a name', { unique: true }, /"unique" needs a "name"/],
  ])('refuses %s with VALIDATION_FAILED', (_label, options, message) => {
    expect(() => parseExecuteOptions(options)).toThrow(ValidationError);
    expect(() => parseExecuteOptions(options)).toThrow(message);
  });

  it('refuses a bad process name with INVALID_NAME', () => {
    expect(() => parseExecuteOptions({ name: '$local' })).toThrow(InvalidNameError);
    expect(() => parseExecuteOptions({ name: '' })).toThrow(InvalidNameError);
  });
});

describe('executeOnServerWith', () => {
  it('executes through the executor it is given, answering the view with "existing"', async () => {
    const view = { number: 4, state: 'waiting' } as ExecutionView;
    const calls: unknown[][] = [];
    const executeOnServer = executeOnServerWith(() => ({
      execute: async (...args: unknown[]) => {
        calls.push(args);
        return { execution: view, existing: true };
      },
      executeBatch: async () => [],
    }));
    expect(await executeOnServer('p', { a: 1 }, { name: 'n' })).toEqual({ ...view, existing: true });
    expect(calls).toEqual([['p', { a: 1 }, { name: 'n' }, undefined]]);
  });

  it('has a batch form that passes the parent link and answers each view with "existing"', async () => {
    const views = [{ number: 5 }, { number: 6 }] as ExecutionView[];
    const calls: unknown[][] = [];
    const batch = executeOnServerBatchWith(
      () => ({
        execute: async () => ({ execution: views[0]!, existing: false }),
        executeBatch: async (...args: unknown[]) => {
          calls.push(args);
          return [
            { execution: views[0]!, existing: false },
            { execution: views[1]!, existing: true },
          ];
        },
      }),
      { parent: 3 },
    );
    const items = [{ procedure: 'p' }, { procedure: 'q', params: 1, name: 'n', unique: true }];
    expect(await batch(items)).toEqual([
      { ...views[0], existing: false },
      { ...views[1], existing: true },
    ]);
    expect(calls).toEqual([[items, { parent: 3 }]]);
  });

  it('asks for the executor at each call, so it can refuse before the node is ready', async () => {
    const executeOnServer = executeOnServerWith(() => {
      throw new Error('not ready');
    });
    await expect(executeOnServer('p')).rejects.toThrow('not ready');
  });
});

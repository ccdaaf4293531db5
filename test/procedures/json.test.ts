/** What an execution carries (params, result, progress) must be JSON: a ValidationError that says where. */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { assertJson } from '../../src/procedures/json.js';

function refusal(value: unknown, label: string): ValidationError {
  try {
    assertJson(value, label);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('accepted');
}

describe('assertJson', () => {
  it('accepts JSON', () => {
    expect(() => assertJson({ a: [1, 'b', null, { c: true }] }, 'params')).not.toThrow();
  });

  it('refuses with a VALIDATION_FAILED that names the value and the path', () => {
    const err = refusal({ when: new Map() }, 'result');
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toBe('result must be JSON: result.when is a Map, not a plain object');
    expect(err.details).toEqual({ path: 'result.when', reason: 'is a Map, not a plain object' });
  });

  it('refuses params nested deeper than 256 levels instead of overflowing the stack', () => {
    const deep = JSON.parse('['.repeat(300) + ']'.repeat(300)) as unknown;
    expect(refusal(deep, 'params').message).toMatch(
      /^params must be JSON: params\[0\].*… is nested deeper than 256 levels$/,
    );
  });

  it('refuses non-JSON numbers and values', () => {
    expect(refusal({ n: NaN }, 'progress').message).toContain('progress.n is NaN');
    expect(refusal([1n], 'params').message).toContain('params[0] is a BigInt');
    expect(refusal(undefined, 'result').message).toBe('result must be JSON: result is undefined');
  });
});

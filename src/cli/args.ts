/**
 * Parsers of option and argument values: each checks the value before anything is sent (no NaN
 * reaches a node) and says what it wants; commander reports them as usage errors (exit 2).
 */
import { InvalidArgumentError } from 'commander';

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `of ${min} or more` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`it must be a whole number ${range}.`);
    }
    return value;
  };
}

/** An execution number: a positive integer. */
export const executionNumber = (raw: string): number => {
  if (!/^[1-9]\d{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new InvalidArgumentError('execution numbers are positive integers.');
  }
  return Number(raw);
};

/** A JSON value (params). */
export const jsonValue = (raw: string): unknown => {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(
      `PARAMS_JSON is not JSON (${(err as Error).message}); quote it: '{"who":"world"}'.`,
    );
  }
};

/** An http(s) URL. */
export const httpUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError('it must be a URL such as http://127.0.0.1:8080.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('it must be an http:// or https:// URL.');
  }
  return raw;
};

/** One of `choices`. */
export function oneOf<const T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw) => {
    if (!(choices as readonly string[]).includes(raw)) {
      throw new InvalidArgumentError(`it must be one of ${choices.join(', ')}.`);
    }
    return raw as T;
  };
}

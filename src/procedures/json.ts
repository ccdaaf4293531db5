/**
 * The JSON rule (src/json.ts) for what an execution carries: params, result and progress. A value
 * that is not JSON is a ValidationError naming the value and the path of its first bad part.
 */
import { ValidationError } from '../errors.js';
import { checkJson } from '../json.js';

type Refuse = (path: string, reason: string) => ValidationError;

/** One refusal per label, made once: every execution's result is checked, and a closure each costs. */
const refusals = new Map<string, Refuse>();

function refusalOf(label: string): Refuse {
  let refuse = refusals.get(label);
  if (!refuse) {
    refuse = (path, reason) =>
      new ValidationError(`${label} must be JSON: ${path} ${reason}`, { path, reason });
    refusals.set(label, refuse);
  }
  return refuse;
}

/** Throws ValidationError unless `value` is JSON; `label` names it ("params", "result"...). */
export function assertJson(value: unknown, label: string): void {
  checkJson(value, { path: label, refuse: refusalOf(label) });
}

/** The one readiness rule: what a node serves in each state of its life. */
import { describe, expect, it } from 'vitest';
import { NotReadyError, StoppingError } from '../src/errors.js';
import { assertServes, serves, type Access, type NodeState } from '../src/node-state.js';

describe('assertServes', () => {
  it.each<[NodeState, Access, (new () => Error) | undefined]>([
    ['starting', 'work', NotReadyError],
    ['starting', 'read', NotReadyError],
    ['ready', 'work', undefined],
    ['ready', 'read', undefined],
    ['stopping', 'work', StoppingError],
    ['stopping', 'read', undefined],
    ['stopped', 'work', StoppingError],
    ['stopped', 'read', NotReadyError],
  ])('a node %s, asked for %s', (state, access, refusal) => {
    if (refusal) {
      expect(() => assertServes(state, access)).toThrow(refusal);
    } else {
      expect(() => assertServes(state, access)).not.toThrow();
    }
  });
});

describe('serves', () => {
  it('says yes exactly where assertServes does not throw', () => {
    for (const state of ['starting', 'ready', 'stopping', 'stopped'] as const) {
      for (const access of ['work', 'read'] as const) {
        let threw = false;
        try {
          assertServes(state, access);
        } catch {
          threw = true;
        }
        expect(serves(state, access), `${state} ${access}`).toBe(!threw);
      }
    }
  });
});

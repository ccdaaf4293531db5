/** Event filters and ids (no Redis). */
import { describe, expect, it } from 'vitest';
import { listParam, matches } from '../../src/events/filter.js';
import { compareStreamIds, formatPosition, parsePosition } from '../../src/events/ids.js';

const state = { type: 'execution.state', number: 7, procedure: 'hello', data: {} };
const system = { type: 'system', data: {} };

describe('matches', () => {
  it('takes types, families, procedures and numbers; numbers and procedures only filter executions', () => {
    expect(matches({}, state)).toBe(true);
    expect(matches({ types: ['execution'] }, state)).toBe(true);
    expect(matches({ types: ['execution.progress'] }, state)).toBe(false);
    expect(matches({ types: ['exec'] }, state)).toBe(false);
    expect(matches({ numbers: [7] }, state)).toBe(true);
    expect(matches({ numbers: [8] }, state)).toBe(false);
    expect(matches({ procedures: ['other'] }, state)).toBe(false);
    expect(matches({ procedures: ['hello'], numbers: [7] }, state)).toBe(true);
    expect(matches({ numbers: [8] }, system)).toBe(true);
    expect(matches({ types: ['execution'] }, { type: 'reset', data: {} })).toBe(true);
    expect(matches({ procedures: ['hello'] }, { ...state, procedure: undefined })).toBe(false);
  });

  it('reads repeated and comma-separated query values', () => {
    expect(listParam(undefined)).toBeUndefined();
    expect(listParam('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(listParam(['a', 'b,c'])).toEqual(['a', 'b', 'c']);
    expect(listParam(',')).toBeUndefined();
  });
});

describe('positions', () => {
  it('round-trip, and refuse anything else', () => {
    const p = { bull: [{ ms: 1700000000000, seq: 3 }], log: { ms: 0, seq: 0 } };
    // With one queue shard, ids are those of before shards (clients hold them as Last-Event-ID).
    expect(formatPosition(p)).toBe('1700000000000-3_0-0');
    expect(parsePosition(formatPosition(p))).toEqual(p);
    const three = {
      bull: [
        { ms: 1, seq: 2 },
        { ms: 3, seq: 4 },
        { ms: 5, seq: 6 },
      ],
      log: { ms: 7, seq: 8 },
    };
    expect(formatPosition(three)).toBe('1-2_3-4_5-6_7-8');
    expect(parsePosition('1-2_3-4_5-6_7-8', 3)).toEqual(three);
    // An id of another shard count is no position here.
    expect(parsePosition('1-2_3-4_5-6_7-8', 1)).toBeUndefined();
    expect(parsePosition('1-2_3-4_5-6_7-8', 2)).toBeUndefined();
    expect(parsePosition('1700000000000-3_0-0', 3)).toBeUndefined();
    expect(parsePosition('1-2_3-4_x-6_7-8', 3)).toBeUndefined();
    for (const bad of [
      '',
      '1-0',
      '1-0_2',
      'x-0_0-0',
      '1-0_0-0_0-0',
      '1-0_0-0 extra',
      '99999999999999999-0_0-0',
    ]) {
      expect(parsePosition(bad), bad).toBeUndefined();
    }
    expect(compareStreamIds({ ms: 1, seq: 2 }, { ms: 1, seq: 10 })).toBeLessThan(0);
  });
});

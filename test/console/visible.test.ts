/** Which events make the console's executions page load again (src/console/lib/visible.js), under Node. */
import { describe, expect, it } from 'vitest';
import { changesPage } from '../../src/console/lib/visible.js';

const items = [{ number: 10 }, { number: 9 }, { number: 7 }];
const state = (number: number, s: string, procedure = 'alpha') => ({
  type: 'execution.state',
  data: { number, procedure, state: s },
});
const removed = (number: number) => ({ type: 'execution.removed', data: { number } });

describe('changesPage', () => {
  it('without filters, any state change may reorder the first page (active first, newest finish first)', () => {
    expect(changesPage(state(3, 'active'), {}, true, items)).toBe(true);
    expect(changesPage(state(11, 'waiting'), {}, true, items)).toBe(true);
  });

  it("skips another procedure's executions", () => {
    expect(changesPage(state(11, 'waiting', 'beta'), { procedure: 'alpha' }, true, items)).toBe(false);
    expect(changesPage(state(11, 'waiting', 'alpha'), { procedure: 'alpha' }, true, items)).toBe(true);
    // an event that does not name its procedure may be about one shown
    expect(
      changesPage(
        { type: 'execution.state', data: { number: 11, state: 'waiting' } },
        { procedure: 'alpha' },
        true,
        items,
      ),
    ).toBe(true);
  });

  it('with a state filter, only executions entering that state or leaving the page', () => {
    const failed = { state: 'failed' };
    expect(changesPage(state(3, 'active'), failed, true, items)).toBe(false);
    expect(changesPage(state(3, 'failed'), failed, true, items)).toBe(true);
    expect(changesPage(state(9, 'waiting'), failed, true, items)).toBe(true); // 9 is shown, and leaves
  });

  it('a removal only when one shown goes, or on a page after a cursor', () => {
    expect(changesPage(removed(3), {}, true, items)).toBe(false);
    expect(changesPage(removed(7), {}, true, items)).toBe(true);
    expect(changesPage(removed(3), {}, false, items)).toBe(true);
  });

  it('always for a reset, an event without a number, or before the first page came', () => {
    expect(changesPage({ type: 'reset', data: {} }, { state: 'failed' }, true, items)).toBe(true);
    expect(changesPage({ type: 'execution.state', data: null }, { state: 'failed' }, true, items)).toBe(true);
    expect(changesPage(state(3, 'active'), { state: 'failed' }, true, undefined)).toBe(true);
  });
});

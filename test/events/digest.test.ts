/** Digests of execution events (src/events/digest.ts) and the `digest` query of GET /v1/events. */
import { describe, expect, it } from 'vitest';
import { parseEventFilter } from '../../src/api/events.js';
import { DIGEST_ITEMS, EventDigest, digested, type DigestData } from '../../src/events/digest.js';
import { parseFrame } from '../support/sse.js';

const at = { bull: [{ ms: 5, seq: 1 }], log: { ms: 3, seq: 0 } };
const state = (number: number, value: string, procedure = 'hello') => ({
  type: 'execution.state',
  number,
  procedure,
  data: { number, procedure, state: value },
});

function take(digest: EventDigest): { id: string | undefined; type: string | undefined; data: DigestData } {
  const frame = parseFrame(digest.take(at));
  return { id: frame.id, type: frame.type, data: frame.data as unknown as DigestData };
}

describe('EventDigest', () => {
  it('counts every event and names the latest change of each execution, in the order of those changes', () => {
    const digest = new EventDigest();
    expect(digest.empty).toBe(true);
    digest.add(state(1, 'waiting'));
    digest.add(state(2, 'waiting', 'other'));
    digest.add(state(1, 'active'));
    digest.add({
      type: 'execution.progress',
      number: 1,
      procedure: 'hello',
      data: { number: 1, progress: 50 },
    });
    digest.add(state(1, 'completed'));
    expect(digest.empty).toBe(false);
    const { id, type, data } = take(digest);
    expect(type).toBe('execution.digest');
    expect(id).toBe('5-1_3-0');
    expect(data).toEqual({
      count: 5,
      more: false,
      items: [
        { type: 'execution.state', number: 2, procedure: 'other', state: 'waiting' },
        { type: 'execution.state', number: 1, procedure: 'hello', state: 'completed' },
      ],
    });
    // Taking it starts a new one.
    expect(digest.empty).toBe(true);
    digest.add({ type: 'execution.removed', number: 2, data: { number: 2 } });
    expect(take(digest).data).toEqual({
      count: 1,
      more: false,
      items: [{ type: 'execution.removed', number: 2 }],
    });
  });

  it(`says "more" and only counts once more than ${DIGEST_ITEMS} executions changed`, () => {
    const digest = new EventDigest();
    for (let n = 1; n <= DIGEST_ITEMS; n++) {
      digest.add(state(n, 'waiting'));
    }
    digest.add(state(1, 'active')); // one it names already: still not more
    const full = new EventDigest();
    for (let n = 1; n <= DIGEST_ITEMS + 1; n++) {
      full.add(state(n, 'waiting'));
    }
    full.add(state(1, 'active'));
    const named = take(digest).data;
    expect(named.more).toBe(false);
    expect(named.items).toHaveLength(DIGEST_ITEMS);
    expect(named.items.at(-1)).toMatchObject({ number: 1, state: 'active' });
    expect(take(full).data).toEqual({ count: DIGEST_ITEMS + 2, more: true, items: [] });
  });

  it('stands for execution events only', () => {
    expect(digested(state(1, 'waiting'))).toBe(true);
    expect(digested({ type: 'execution.progress', data: {} })).toBe(true);
    expect(digested({ type: 'system', data: {} })).toBe(false);
    expect(digested({ type: 'backup.progress', data: {} })).toBe(false);
  });
});

describe('GET /v1/events?digest=', () => {
  it('takes milliseconds from 100 to 60000 and refuses anything else with a clear message', () => {
    expect(parseEventFilter({ digest: '1000' })).toEqual({ digestMs: 1000 });
    expect(parseEventFilter({ digest: '100' }).digestMs).toBe(100);
    expect(parseEventFilter({ digest: '60000' }).digestMs).toBe(60_000);
    expect(parseEventFilter({})).toEqual({});
    for (const bad of ['99', '60001', '1e3', '-5', 'soon', '']) {
      expect(() => parseEventFilter({ digest: bad })).toThrow(
        /digest: a number of milliseconds from 100 to 60000/,
      );
    }
  });
});

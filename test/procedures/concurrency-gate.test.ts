import { describe, expect, it } from 'vitest';
import { ConcurrencyGate } from '../../src/procedures/concurrency-gate.js';

/** A stand-in for a shard's BullMQ Worker: its concurrency, and how often it was woken. */
function member(concurrency = 1) {
  return {
    concurrency,
    wakes: 0,
    wake() {
      this.wakes++;
    },
  };
}

/** Whether `promise` has settled after pending callbacks ran, and with what. */
async function settled<T>(promise: Promise<T>): Promise<{ value?: T; done: boolean }> {
  let state: { value?: T; done: boolean } = { done: false };
  void promise.then((value) => (state = { value, done: true }));
  await new Promise((r) => setImmediate(r));
  return state;
}

describe('ConcurrencyGate', () => {
  it('gives every member the free slots of the node, at least 1', () => {
    const members = [member(), member(), member()];
    const gate = new ConcurrencyGate(2, members);
    expect(members.map((m) => m.concurrency)).toEqual([2, 2, 2]);

    const a = gate.hold(0);
    expect(members.map((m) => m.concurrency)).toEqual([2, 1, 1]);
    const b = gate.hold(1);
    expect(members.map((m) => m.concurrency)).toEqual([1, 1, 1]);
    // Beyond the limit (a race): no member fetches more than it holds, and none below 1.
    const c = gate.hold(1);
    expect(members.map((m) => m.concurrency)).toEqual([1, 1, 1]);
    expect(gate.holding).toBe(3);

    c.end();
    b.end();
    expect(members.map((m) => m.concurrency)).toEqual([2, 1, 1]);
    a.end();
    expect(members.map((m) => m.concurrency)).toEqual([2, 2, 2]);
    expect(gate.holding).toBe(0);
  });

  it('wakes a member whose concurrency it raised, and only then', () => {
    const members = [member(), member()];
    const gate = new ConcurrencyGate(2, members);
    const woken = () => members.map((m) => m.wakes);
    const before = woken();
    const a = gate.hold(0);
    const b = gate.hold(1);
    expect(woken()).toEqual(before); // lowered only
    b.end(); // a slot is free again: member 0 may fetch one more while it holds its job
    expect(members[0]!.concurrency).toBe(2);
    // Member 1 holds nothing now and keeps its one fetch: not raised, not woken.
    expect(members[1]!.concurrency).toBe(1);
    expect(woken()).toEqual([before[0]! + 1, before[1]]);
    a.end();
  });

  it('runs no more than the limit: a hold beyond it waits for a permit, first come first served', async () => {
    const gate = new ConcurrencyGate(2, [member(), member(), member()]);
    const holds = [gate.hold(0), gate.hold(1), gate.hold(2), gate.hold(0)];
    const permits = holds.map((h) => h.permit());
    expect((await settled(permits[0]!)).value).toBe(true);
    expect((await settled(permits[1]!)).value).toBe(true);
    expect((await settled(permits[2]!)).done).toBe(false);
    expect((await settled(permits[3]!)).done).toBe(false);
    expect(gate.running).toBe(2);

    holds[1]!.end();
    expect((await settled(permits[2]!)).value).toBe(true);
    expect((await settled(permits[3]!)).done).toBe(false);
    expect(gate.running).toBe(2);

    holds[0]!.end();
    expect((await settled(permits[3]!)).value).toBe(true);
    holds[2]!.end();
    holds[3]!.end();
    holds[3]!.end(); // a second end counts nothing
    expect(gate.running).toBe(0);
    expect(gate.holding).toBe(0);
  });

  it('tryPermit takes a free permit at once, and none while the node is full or others wait', async () => {
    const gate = new ConcurrencyGate(1, [member(), member()]);
    const first = gate.hold(0);
    expect(first.tryPermit()).toBe(true);
    const second = gate.hold(1);
    expect(second.tryPermit()).toBe(false);
    const waiting = second.permit();
    const third = gate.hold(0);
    first.end();
    // The freed permit went to the waiting hold, not to a later try.
    expect(third.tryPermit()).toBe(false);
    expect(await waiting).toBe(true);
    second.end();
    expect(third.tryPermit()).toBe(true);
    third.end();
    expect(gate.running).toBe(0);
  });

  it('a hold that ends while it waits gives its late permit back', async () => {
    const gate = new ConcurrencyGate(1, [member(), member()]);
    const first = gate.hold(0);
    await first.permit();
    const second = gate.hold(1);
    const waiting = second.permit();
    second.end();
    first.end();
    expect(await waiting).toBe(false);
    expect(gate.running).toBe(0);
    const third = gate.hold(0);
    expect(await third.permit()).toBe(true);
    third.end();
  });

  it('once closed, grants nothing: the waiting and later holds get false', async () => {
    const gate = new ConcurrencyGate(1, [member(), member()]);
    const first = gate.hold(0);
    expect(await first.permit()).toBe(true);
    const second = gate.hold(1);
    const waiting = second.permit();
    gate.close();
    expect(await waiting).toBe(false);
    const late = gate.hold(0);
    expect(await late.permit()).toBe(false);
    late.end();
    first.end();
    second.end();
    expect(gate.running).toBe(0);
  });

  it('refuses a limit below 1', () => {
    expect(() => new ConcurrencyGate(0, [member()])).toThrow(RangeError);
  });
});

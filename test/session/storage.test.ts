/**
 * The Session on one node against a real Redis: identity and info, the privilege answers, reads,
 * drafts and commits, every refused value and write, re-entrance, and closing.
 */
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { hostTypeOf, storageLayout } from '../../src/session/index.js';
import type { Draft } from '../../src/types.js';
import {
  countConnections,
  closeTestClients,
  deletePrefix,
  testClient,
  uniquePrefix,
} from '../support/redis.js';
import { TEST_STORAGE_SLOTS, openTestSession, rejection, sleep, type TestSession } from './helpers.js';

const prefix = uniquePrefix('sess');
const keys = createKeys(prefix);
const layout = storageLayout(keys, TEST_STORAGE_SLOTS);
/** The hash entry `name` is in (the one hash, or its data slot's). */
const hashOf = (name: string) => (layout.slots.k > 1 ? layout.slots.slotFor(name).data : layout.data);
let node: TestSession;

beforeAll(async () => {
  node = await openTestSession(prefix, { maxEntryBytes: 1000 });
});

afterAll(async () => {
  await node.close();
  const redis = testClient();
  await deletePrefix(redis, prefix);
  await closeTestClients();
});

describe('the session object', () => {
  it('has an id, info and userName as 4D stored-procedure sessions do', () => {
    const { session } = node;
    expect(session.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(session.userName).toBe('sprocd');
    expect(session.info).toEqual({
      type: 'storedProcedure',
      ID: session.id,
      userName: 'sprocd',
      machineName: os.hostname(),
      hostType: hostTypeOf(process.platform),
      creationDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      state: 'active',
    });
    expect(Math.abs(Date.parse(session.info.creationDateTime) - Date.now())).toBeLessThan(60_000);
  });

  it('answers the privilege functions as 4D does, without effect', () => {
    const { session } = node;
    expect(session.hasPrivilege('anything')).toBe(true);
    expect(session.getPrivileges()).toEqual(['WebAdmin']);
    expect(session.setPrivileges(['x'])).toBe(false);
    expect(session.clearPrivileges()).toBe(true);
    expect(session.isGuest()).toBe(false);
    expect(session.getPrivileges()).toEqual(['WebAdmin']);
  });

  it('maps platforms to 4D host types', () => {
    expect(hostTypeOf('win32')).toBe('windows');
    expect(hostTypeOf('darwin')).toBe('mac');
    expect(hostTypeOf('linux')).toBe('linux');
  });

  it('cannot be changed', () => {
    const session = node.session as unknown as Record<string, unknown>;
    expect(() => {
      session.id = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (node.session.info as unknown as Record<string, unknown>).userName = 'x';
    }).toThrow(TypeError);
    expect(node.session.info.userName).toBe('sprocd');
  });

  it('is the same after a restart (another open on the same Redis)', async () => {
    const again = await openTestSession(prefix, { userName: 'other' });
    try {
      expect(again.session.id).toBe(node.session.id);
      expect(again.session.info.creationDateTime).toBe(node.session.info.creationDateTime);
      expect(again.session.userName).toBe('other');
    } finally {
      await again.close();
    }
  });

  it('describe() gives id, info and privileges as stored', async () => {
    const d = await node.describe();
    expect(d).toEqual({ id: node.session.id, info: { ...node.session.info }, privileges: ['WebAdmin'] });
  });
});

describe('storage reads', () => {
  it('get returns undefined for an absent entry, and keys/snapshot list the entries', async () => {
    expect(await node.session.storage.get('absent')).toBeUndefined();
    await node.session.storage.use('r1', (d) => {
      d.a = 1;
    });
    await node.session.storage.use('r2', (d) => {
      d.b = [true, null, 'x'];
    });
    expect(await node.session.storage.get('r1')).toEqual({ a: 1 });
    const keysNow = await node.session.storage.keys();
    expect(keysNow).toEqual(expect.arrayContaining(['r1', 'r2']));
    expect(keysNow).toEqual([...keysNow].sort());
    const snap = await node.session.storage.snapshot();
    expect(snap.r1).toEqual({ a: 1 });
    expect(snap.r2).toEqual({ b: [true, null, 'x'] });
  });

  it('get returns a copy: changing it does not change the store', async () => {
    await node.session.storage.use('copy', (d) => {
      d.list = [1];
      d.nested = { n: 1 };
    });
    const a = (await node.session.storage.get<{ list: number[]; nested: { n: number } }>('copy'))!;
    a.list.push(2);
    a.nested.n = 99;
    const b = await node.session.storage.get('copy');
    expect(b).toEqual({ list: [1], nested: { n: 1 } });
    expect(b).not.toBe(a);
    const snap = await node.session.storage.snapshot();
    (snap.copy as Record<string, unknown>).list = 'changed';
    expect(await node.session.storage.get('copy')).toEqual({ list: [1], nested: { n: 1 } });
  });

  it('never sees half of a multi-entry commit', async () => {
    await node.session.storage.use(['ta', 'tb'], (a, b) => {
      a.v = 0;
      b.v = 0;
    });
    let stop = false;
    const torn: unknown[] = [];
    const reader = (async () => {
      while (!stop) {
        const snap = await node.session.storage.snapshot();
        const a = (snap.ta as { v: number }).v;
        const b = (snap.tb as { v: number }).v;
        if (a !== b) {
          torn.push([a, b]);
        }
      }
    })();
    for (let i = 1; i <= 100; i++) {
      await node.session.storage.use(['ta', 'tb'], async (a, b) => {
        a.v = i;
        await Promise.resolve();
        b.v = i;
      });
    }
    stop = true;
    await reader;
    expect(torn).toEqual([]);
  });

  it('keeps the entries in one hash under the storage prefix (or in data slots of their own)', async () => {
    const redis = testClient();
    await node.session.storage.use('layout', (d) => {
      d.x = 1;
    });
    expect(await redis.hget(hashOf('layout'), 'layout')).toBe('{"x":1}');
    const all = await redis.keys(`*${prefix}*`);
    if (layout.slots.k === 1) {
      expect(layout.data.startsWith(`{${prefix}}:storage`)).toBe(true);
      expect(all.every((k) => k.startsWith(`{${prefix}}:`))).toBe(true);
    } else {
      expect(hashOf('layout')).toMatch(new RegExp(`^\\{${prefix}:s\\d+\\}:data$`));
      expect(all.every((k) => k.startsWith(`{${prefix}}:`) || k.startsWith(`{${prefix}:s`))).toBe(true);
      // Nothing but the lock state under {prefix}: no entry hash there.
      expect(await redis.exists(layout.data)).toBe(0);
    }
  });
});

describe('storage is read-only outside use', () => {
  it('throws when a property is assigned, defined or deleted on storage itself', () => {
    const storage = node.session.storage as unknown as Record<string, unknown>;
    expect(() => {
      storage.counter = 1;
    }).toThrow(expect.objectContaining({ code: 'STORAGE_READ_ONLY' }));
    expect(() => {
      storage.get = () => 1;
    }).toThrow(/read-only/);
    expect(() => Object.defineProperty(storage, 'x', { value: 1 })).toThrow(/read-only/);
    expect(() => {
      delete storage.use;
    }).toThrow(/read-only/);
    expect(typeof node.session.storage.use).toBe('function');
  });

  it('the same even from sloppy-mode code', () => {
    const sloppy = new Function('s', 's.counter = 1;') as (s: unknown) => void;
    expect(() => sloppy(node.session.storage)).toThrow(/read-only/);
  });
});

describe('use', () => {
  it('hands an empty draft for an absent entry and stores it even when left empty', async () => {
    const result = await node.session.storage.use('empty', (d) => {
      expect(d).toEqual({});
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(await node.session.storage.get('empty')).toEqual({});
    expect(await node.session.storage.keys()).toContain('empty');
  });

  it('commits changes and resolves to what fn returned, also for async fn', async () => {
    const r = await node.session.storage.use('counter', async (d) => {
      await sleep(5);
      d.n = ((d.n as number | undefined) ?? 0) + 1;
      return { n: d.n };
    });
    expect(r).toEqual({ n: 1 });
    expect(await node.session.storage.get('counter')).toEqual({ n: 1 });
  });

  it('hands one draft per key in the order given', async () => {
    await node.session.storage.use(['o2', 'o1'], (a, b) => {
      a.name = 'o2';
      b.name = 'o1';
    });
    await node.session.storage.use(['o1', 'o2'], (a, b) => {
      expect(a.name).toBe('o1');
      expect(b.name).toBe('o2');
    });
  });

  it('removes properties set to undefined or deleted', async () => {
    await node.session.storage.use('props', (d) => {
      d.a = 1;
      d.b = 2;
      d.c = { keep: true, drop: 1 };
    });
    await node.session.storage.use('props', (d) => {
      d.a = undefined;
      delete d.b;
      (d.c as Draft).drop = undefined;
      expect('a' in d).toBe(false);
      expect(Object.keys(d)).toEqual(['c']);
    });
    expect(await node.session.storage.get('props')).toEqual({ c: { keep: true } });
  });

  it('supports nested objects and array methods on drafts', async () => {
    await node.session.storage.use('arr', (d) => {
      d.list = [];
      const list = d.list as unknown[];
      list.push({ id: 1 }, { id: 2 }, { id: 3 });
      list.splice(1, 1);
      (list[0] as Draft).tag = 'first';
      list.reverse();
      d.count = list.length;
      expect(list.map((x) => (x as { id: number }).id)).toEqual([3, 1]);
      expect(list.indexOf(list[1])).toBe(1);
      expect(JSON.parse(JSON.stringify(d))).toEqual({ list: [{ id: 3 }, { id: 1, tag: 'first' }], count: 2 });
    });
    expect(await node.session.storage.get('arr')).toEqual({
      list: [{ id: 3 }, { id: 1, tag: 'first' }],
      count: 2,
    });
  });

  it('copies values assigned into a draft: later changes to the source do not leak in', async () => {
    const source = { list: [1] };
    await node.session.storage.use('copied', (d) => {
      d.cfg = source;
      source.list.push(2);
      expect(d.cfg).toEqual({ list: [1] });
    });
    expect(await node.session.storage.get('copied')).toEqual({ cfg: { list: [1] } });
  });

  it('a throw leaves the entry unchanged and reaches the caller', async () => {
    await node.session.storage.use('safe', (d) => {
      d.v = 1;
    });
    const boom = new Error('boom');
    const err = await rejection(
      node.session.storage.use('safe', (d) => {
        d.v = 2;
        d.extra = true;
        throw boom;
      }),
    );
    expect(err).toBe(boom);
    const asyncErr = await rejection(
      node.session.storage.use('safe', async (d) => {
        d.v = 3;
        await sleep(1);
        throw new Error('later');
      }),
    );
    expect(asyncErr.message).toBe('later');
    expect(await node.session.storage.get('safe')).toEqual({ v: 1 });
    // and the lock was released
    await node.session.storage.use('safe', (d) => {
      d.v = 4;
    });
    expect(await node.session.storage.get('safe')).toEqual({ v: 4 });
  });

  it('a throw does not create an absent entry', async () => {
    await rejection(
      node.session.storage.use('never', () => {
        throw new Error('no');
      }),
    );
    expect(await node.session.storage.get('never')).toBeUndefined();
  });

  it.each<[string, (d: Draft) => void, string]>([
    ['a function', (d) => (d.f = () => 1), 'bad.f is a function'],
    ['a class instance', (d) => (d.when = new Date()), 'bad.when is a Date'],
    ['a symbol', (d) => (d.s = Symbol('x')), 'bad.s is a symbol'],
    ['NaN', (d) => (d.n = NaN), 'bad.n is NaN'],
    ['a BigInt', (d) => (d.b = 1n), 'bad.b is a BigInt'],
    ['undefined in an array', (d) => (d.list = [1, undefined]), 'bad.list[1] is undefined in an array'],
    [
      'undefined pushed into an array',
      (d) => {
        d.list = [];
        (d.list as unknown[]).push(undefined);
      },
      'bad.list[0] is undefined in an array',
    ],
    [
      'a hole made through length',
      (d) => {
        d.list = [1];
        (d.list as unknown[]).length = 3;
      },
      'bad.list.length',
    ],
    [
      'a hole made by delete',
      (d) => {
        d.list = [1, 2];
        delete (d.list as unknown[])[0];
      },
      'bad.list[0] is a hole',
    ],
    [
      'a cycle',
      (d) => {
        const o: Record<string, unknown> = {};
        o.self = o;
        d.o = o;
      },
      'bad.o.self is a cycle',
    ],
    ['a nested bad value', (d) => (d.cfg = { deep: { fn: () => 1 } }), 'bad.cfg.deep.fn is a function'],
  ])(
    'refuses %s at the line that writes it, naming key and path, and writes nothing',
    async (_l, write, message) => {
      await node.session.storage.use('bad', (d) => {
        d.ok = true;
      });
      const err = await rejection(node.session.storage.use('bad', (d) => write(d)));
      expect(err.code).toBe('STORAGE_VALUE_INVALID');
      expect(err.message).toContain('storage "bad"');
      expect(err.message).toContain(message);
      expect(await node.session.storage.get('bad')).toEqual({ ok: true });
    },
  );

  it('refuses a symbol-keyed property on a draft', async () => {
    const err = await rejection(
      node.session.storage.use('sym', (d) => {
        (d as Record<symbol, unknown>)[Symbol('k')] = 1;
      }),
    );
    expect(err.code).toBe('STORAGE_VALUE_INVALID');
  });

  it('refuses an entry over the size limit, naming it, and writes nothing', async () => {
    await node.session.storage.use('large', (d) => {
      d.small = 'x';
    });
    const err = await rejection(
      node.session.storage.use('large', (d) => {
        d.big = 'y'.repeat(2000);
      }),
    );
    expect(err.code).toBe('STORAGE_ENTRY_TOO_LARGE');
    expect(err.message).toContain('"large"');
    expect(err.details).toMatchObject({ key: 'large', limit: 1000 });
    expect(await node.session.storage.get('large')).toEqual({ small: 'x' });
  });

  it('drafts throw once their use has ended, and returned drafts are detached copies', async () => {
    let kept: Draft | undefined;
    let nested: Draft | undefined;
    const returned = await node.session.storage.use('expired', (d) => {
      d.inner = { a: 1 };
      kept = d;
      nested = d.inner as Draft;
      return d;
    });
    expect(returned).toEqual({ inner: { a: 1 } });
    (returned as Draft).inner = 'changed';
    for (const touch of [
      () => kept!.inner,
      () => {
        kept!.x = 1;
      },
      () => Object.keys(kept!),
      () => 'inner' in kept!,
      () => nested!.a,
      () => {
        nested!.a = 2;
      },
    ]) {
      expect(touch).toThrow(expect.objectContaining({ code: 'DRAFT_EXPIRED' }));
    }
    expect(await node.session.storage.get('expired')).toEqual({ inner: { a: 1 } });
  });

  it('a draft copied into another draft after its use ended throws', async () => {
    let old: Draft | undefined;
    await node.session.storage.use('src', (d) => {
      d.v = 1;
      old = d;
    });
    const err = await rejection(
      node.session.storage.use('dst', (d) => {
        d.copy = old;
      }),
    );
    expect(err.code).toBe('DRAFT_EXPIRED');
  });

  it('refuses bad keys', async () => {
    expect((await rejection(node.session.storage.use('', () => undefined))).code).toBe('STORAGE_KEY_INVALID');
    expect((await rejection(node.session.storage.use([], () => undefined))).code).toBe('STORAGE_KEY_INVALID');
    expect((await rejection(node.session.storage.get(5 as unknown as string))).code).toBe(
      'STORAGE_KEY_INVALID',
    );
  });
});

describe('re-entrance', () => {
  it('a nested use on held keys gets the same drafts and the outermost commits', async () => {
    await node.session.storage.use(['ra', 'rb'], async (a, b) => {
      a.step = 1;
      const inner = await node.session.storage.use('rb', async (b2) => {
        expect(b2).toBe(b);
        b2.fromInner = true;
        await node.session.storage.use(['rb', 'ra'], (b3, a3) => {
          expect(a3).toBe(a);
          expect(b3).toBe(b);
          a3.step = 2;
        });
        return 'inner';
      });
      expect(inner).toBe('inner');
      // nothing is committed before the outermost use ends
      expect(await node.session.storage.get('ra')).toBeUndefined();
      expect(a.step).toBe(2);
    });
    expect(await node.session.storage.get('ra')).toEqual({ step: 2 });
    expect(await node.session.storage.get('rb')).toEqual({ fromInner: true });
  });

  it('a nested use on a key not held is refused with STORAGE_KEY_NOT_HELD', async () => {
    const err = await rejection(
      node.session.storage.use('held', async () => {
        await node.session.storage.use(['held', 'other'], () => undefined);
      }),
    );
    expect(err.code).toBe('STORAGE_KEY_NOT_HELD');
    expect(err.message).toContain('"other"');
    expect(err.details).toEqual({ key: 'other', held: ['held'] });
  });

  it('remove inside a use deletes the held entry at commit, and is refused on a key not held', async () => {
    await node.session.storage.use('gone', (d) => {
      d.x = 1;
    });
    await node.session.storage.use('gone', async (d) => {
      await node.session.storage.remove('gone');
      expect(Object.keys(d)).toEqual([]);
      expect((await rejection(node.session.storage.remove('elsewhere'))).code).toBe('STORAGE_KEY_NOT_HELD');
    });
    expect(await node.session.storage.get('gone')).toBeUndefined();
  });

  it('after the outer use has ended, a late call from its chain takes the lock itself', async () => {
    let late: Promise<unknown> | undefined;
    await node.session.storage.use('late', (d) => {
      d.v = 1;
      late = sleep(20).then(() =>
        node.session.storage.use('late-other', (o) => {
          o.v = 2;
        }),
      );
    });
    await late;
    expect(await node.session.storage.get('late-other')).toEqual({ v: 2 });
  });
});

describe('remove', () => {
  it('deletes an entry (taking its lock) and is harmless on an absent one', async () => {
    await node.session.storage.use('rm', (d) => {
      d.x = 1;
    });
    await node.session.storage.remove('rm');
    expect(await node.session.storage.get('rm')).toBeUndefined();
    expect(await node.session.storage.keys()).not.toContain('rm');
    await node.session.storage.remove('rm');
    expect(await node.session.storage.get('rm')).toBeUndefined();
  });
});

describe('entries written by others', () => {
  it('an entry that is not an object (e.g. put back by hand) cannot be drafted, but can be read and removed', async () => {
    const redis = testClient();
    await redis.hset(hashOf('odd'), 'odd', '[1,2]');
    expect(await node.session.storage.get('odd')).toEqual([1, 2]);
    const err = await rejection(node.session.storage.use('odd', () => undefined));
    expect(err.code).toBe('STORAGE_VALUE_INVALID');
    expect(err.message).toContain('an array, not an object');
    await node.session.storage.remove('odd');
    expect(await node.session.storage.get('odd')).toBeUndefined();
  });
});

describe('connections', () => {
  it('one blocking connection per node whatever the number of waiters, closed by close()', async () => {
    const redis = testClient();
    const name = `sprocd-test-${prefix}-conn`;
    const other = await openTestSession(prefix, { connectionName: name });
    try {
      expect(await countConnections(redis, `${name}:session`)).toBe(1);
      // 30 waiters on one key held elsewhere
      let release!: () => void;
      const holding = new Promise<void>((r) => (release = r));
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      const holder = node.session.storage.use('conn', async () => {
        entered();
        await holding;
      });
      await inside;
      const waiters = Array.from({ length: 30 }, () =>
        other.session.storage.use('conn', (d) => {
          d.n = ((d.n as number | undefined) ?? 0) + 1;
        }),
      );
      await sleep(100);
      expect(await countConnections(redis, `${name}:session`)).toBe(1);
      release();
      await Promise.all([holder, ...waiters]);
      expect(await node.session.storage.get('conn')).toEqual({ n: 30 });
    } finally {
      await other.close();
    }
    await sleep(50);
    expect(await countConnections(redis, `${name}:session`)).toBe(0);
  });

  it('after close, use is refused with SESSION_CLOSED', async () => {
    const other = await openTestSession(prefix);
    await other.close();
    expect((await rejection(other.session.storage.use('x', () => undefined))).code).toBe('SESSION_CLOSED');
  });
});

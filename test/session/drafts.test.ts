/**
 * Drafts without Redis: what a draft records for the commit (changed or not, needs a full check),
 * how writes are copied and checked on the spot, object identity, and the end of a draft's life.
 * The same rules through storage.use on Redis are in storage.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DraftScope, detachIfDraft } from '../../src/session/drafts.js';
import { DraftExpiredError, StorageValueInvalidError } from '../../src/session/errors.js';
import type { Draft } from '../../src/types.js';

function open(raw: Record<string, unknown> = {}, existed = true) {
  const scope = new DraftScope();
  const entry = scope.open('cfg', raw, existed);
  return { scope, entry, draft: entry.proxy };
}

/** The error `fn` throws (fails when it throws none). */
function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a throw');
}

describe('DraftScope', () => {
  it('records the entry it opened, as found in Redis', () => {
    const { scope, entry } = open({ a: 1 }, false);
    expect(scope.entries.get('cfg')).toBe(entry);
    expect(entry).toMatchObject({
      key: 'cfg',
      existed: false,
      dirty: false,
      removed: false,
      needsCheck: false,
    });
    expect(scope.active).toBe(true);
  });

  it('stays clean while only read, so an unchanged entry is not written back', () => {
    const { entry, draft } = open({ a: 1, nested: { list: [1, 2] } });
    expect(draft.a).toBe(1);
    expect(Object.keys(draft)).toEqual(['a', 'nested']);
    expect('a' in draft).toBe(true);
    expect(((draft.nested as Draft).list as number[]).length).toBe(2);
    expect(JSON.stringify(draft)).toBe('{"a":1,"nested":{"list":[1,2]}}');
    expect(entry.dirty).toBe(false);
  });

  it('is dirty after a write, a nested write, or a delete', () => {
    const a = open({ x: 1 });
    a.draft.x = 2;
    expect(a.entry.dirty).toBe(true);
    expect(a.entry.raw).toEqual({ x: 2 });

    const b = open({ inner: { y: 1 } });
    (b.draft.inner as Draft).y = 2;
    expect(b.entry.dirty).toBe(true);
    expect(b.entry.raw).toEqual({ inner: { y: 2 } });

    const c = open({ x: 1 });
    delete c.draft.x;
    expect(c.entry.dirty).toBe(true);
    expect(c.entry.raw).toEqual({});
  });

  it('removes a property assigned undefined, as deleting does', () => {
    const { entry, draft } = open({ keep: 1, drop: 2 });
    draft.drop = undefined;
    expect(entry.raw).toEqual({ keep: 1 });
    expect('drop' in draft).toBe(false);
  });

  it('copies what is written, so later changes to the source do not leak in', () => {
    const { entry, draft } = open();
    const source = { list: [1], inner: { n: 1 } };
    draft.v = source;
    source.list.push(2);
    source.inner.n = 99;
    expect(entry.raw).toEqual({ v: { list: [1], inner: { n: 1 } } });
  });

  it('gives the same proxy for the same nested object each time', () => {
    const { draft } = open({ inner: { n: 1 } });
    expect(draft.inner).toBe(draft.inner);
    expect(draft.inner).not.toBe(draft);
  });

  it('asks for a full check only after a delete inside an array (it may leave a hole)', () => {
    const { entry, draft } = open({ list: [1, 2, 3], obj: { a: 1 } });
    delete (draft.obj as Draft).a;
    expect(entry.needsCheck).toBe(false);
    (draft.list as number[]).pop();
    expect(entry.needsCheck).toBe(true);
    expect(entry.raw).toEqual({ list: [1, 2], obj: {} });
  });

  it.each<[string, (d: Draft) => void, string]>([
    ['a function', (d) => (d.f = () => 1), 'cfg.f is a function'],
    ['a Date', (d) => (d.when = new Date()), 'cfg.when is a Date'],
    ['NaN', (d) => (d.n = NaN), 'cfg.n is NaN'],
    ['a nested function', (d) => (d.o = { deep: [{ fn: () => 1 }] }), 'cfg.o.deep[0].fn is a function'],
    ['a hole by index', (d) => ((d.list = []), ((d.list as unknown[])[2] = 1)), 'cfg.list[2]'],
    ['undefined in an array', (d) => ((d.list = [1]), ((d.list as unknown[])[0] = undefined)), 'cfg.list[0]'],
    ['a longer length', (d) => ((d.list = [1]), ((d.list as unknown[]).length = 5)), 'cfg.list.length'],
    ['a symbol-keyed property', (d) => ((d as Record<symbol, unknown>)[Symbol('s')] = 1), 'symbol-keyed'],
    [
      'a getter',
      (d) => Object.defineProperty(d, 'g', { get: () => 1, enumerable: true, configurable: true }),
      'cfg.g cannot be a getter or setter',
    ],
    ['a new prototype', (d) => Object.setPrototypeOf(d, Array.prototype), 'cannot change its prototype'],
  ])('refuses %s at the line that writes it, naming the path', (_what, write, message) => {
    const { draft } = open();
    const err = thrown(() => write(draft));
    expect(err).toBeInstanceOf(StorageValueInvalidError);
    expect(err.code).toBe('STORAGE_VALUE_INVALID');
    expect(err.message).toContain('storage "cfg"');
    expect(err.message).toContain(message);
  });

  it('cannot be frozen or made non-extensible (it would stop being writable)', () => {
    const { draft } = open({ a: 1 });
    expect(() => Object.freeze(draft)).toThrow(TypeError);
    expect(() => Object.preventExtensions(draft)).toThrow(TypeError);
    draft.a = 2;
    expect(draft.a).toBe(2);
  });

  it('throws DraftExpiredError on any touch once its scope has ended, nested objects included', () => {
    const { scope, draft } = open({ inner: { n: 1 } });
    const inner = draft.inner as Draft;
    scope.end();
    expect(scope.active).toBe(false);
    const touches: [string, () => unknown][] = [
      ['read', () => draft.inner],
      ['nested read', () => inner.n],
      ['write', () => (draft.x = 1)],
      ['delete', () => delete draft.inner],
      ['in', () => 'inner' in draft],
      ['keys', () => Object.keys(draft)],
    ];
    for (const [what, touch] of touches) {
      const err = thrown(touch);
      expect(err, what).toBeInstanceOf(DraftExpiredError);
      expect(err.code, what).toBe('DRAFT_EXPIRED');
    }
  });
});

describe('detachIfDraft', () => {
  it('turns a draft or a part of one into a plain deep copy', () => {
    const { entry, draft } = open({ inner: { list: [1, { n: 2 }] } });
    const whole = detachIfDraft(draft) as Record<string, unknown>;
    const part = detachIfDraft(draft.inner) as Record<string, unknown>;
    expect(whole).toEqual({ inner: { list: [1, { n: 2 }] } });
    expect(part).toEqual({ list: [1, { n: 2 }] });
    expect(whole).not.toBe(entry.raw);
    (part.list as unknown[]).push(3);
    expect(entry.raw).toEqual({ inner: { list: [1, { n: 2 }] } });
  });

  it('returns anything else as it is', () => {
    const plain = { a: 1 };
    expect(detachIfDraft(plain)).toBe(plain);
    expect(detachIfDraft(null)).toBeNull();
    expect(detachIfDraft('text')).toBe('text');
  });
});

/** /v1/session against a fake session: the description, the storage, its 404 and the node's state. */
import { describe, expect, it } from 'vitest';
import { NotReadyError } from '../../src/errors.js';
import type { SessionReader } from '../../src/api/session.js';
import type { JsonValue } from '../../src/types.js';
import { fakeApi, fakeContext } from '../support/api.js';

const INFO = {
  type: 'storedProcedure',
  ID: 'sid',
  userName: 'sprocd',
  machineName: 'host',
  hostType: 'linux',
  creationDateTime: '2025-01-01T00:00:00.000Z',
  state: 'active',
} as const;

function fakeSession(entries: Record<string, JsonValue>): SessionReader {
  return {
    describe: async () => ({ id: 'sid', info: { ...INFO }, privileges: ['WebAdmin'] }),
    storage: {
      get: async <T = JsonValue>(key: string) => entries[key] as T | undefined,
      snapshot: async () => ({ ...entries }),
    },
  };
}

const withSession = (session: SessionReader) => fakeApi(fakeContext({ session: () => session }));

describe('/v1/session', () => {
  it('describes the session', async () => {
    const app = await withSession(fakeSession({}));
    const res = await app.inject({ url: '/v1/session' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: 'sid', info: INFO, privileges: ['WebAdmin'] });
  });

  it('shows the whole storage, and one entry by its key (URL-decoded)', async () => {
    const app = await withSession(fakeSession({ counter: { n: 2 }, 'a key/with odd': [1, null] }));
    expect((await app.inject({ url: '/v1/session/storage' })).json()).toEqual({
      counter: { n: 2 },
      'a key/with odd': [1, null],
    });
    expect((await app.inject({ url: '/v1/session/storage/counter' })).json()).toEqual({ n: 2 });
    const odd = await app.inject({ url: `/v1/session/storage/${encodeURIComponent('a key/with odd')}` });
    expect(odd.json()).toEqual([1, null]);
  });

  it('answers 404 STORAGE_ENTRY_NOT_FOUND with the key for a missing entry', async () => {
    const app = await withSession(fakeSession({}));
    const res = await app.inject({ url: '/v1/session/storage/absent' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: {
        code: 'STORAGE_ENTRY_NOT_FOUND',
        message: 'No storage entry "absent".',
        details: { key: 'absent' },
      },
    });
  });

  it('answers 503 NOT_READY while the node cannot serve the session', async () => {
    const app = await fakeApi(
      fakeContext({
        session: () => {
          throw new NotReadyError();
        },
      }),
    );
    for (const url of ['/v1/session', '/v1/session/storage', '/v1/session/storage/k']) {
      const res = await app.inject({ url });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('NOT_READY');
    }
  });

  it('answers 503 REDIS_UNAVAILABLE when Redis is gone', async () => {
    const session = fakeSession({});
    const app = await withSession({
      ...session,
      storage: {
        ...session.storage,
        snapshot: async () => Promise.reject(new Error('Connection is closed.')),
      },
    });
    const res = await app.inject({ url: '/v1/session/storage' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('REDIS_UNAVAILABLE');
  });
});

/** /healthz and /readyz against a fake node: they answer in every state, without a token. */
import { describe, expect, it } from 'vitest';
import type { NodeState } from '../../src/node-state.js';
import { fakeApi, fakeContext } from '../support/api.js';

describe('/healthz', () => {
  it.each<NodeState>(['starting', 'ready', 'stopping'])(
    'answers 200 with the state while %s',
    async (state) => {
      const app = await fakeApi(fakeContext({ state: () => state, name: 'n1' }));
      const res = await app.inject({ url: '/healthz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok', state, node: 'n1' });
    },
  );
});

describe('/readyz', () => {
  it('answers 200 when the node is ready', async () => {
    const app = await fakeApi();
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready' });
  });

  it('answers 503 with the reason when it is not', async () => {
    const app = await fakeApi(fakeContext({ isReady: async () => ({ ready: false, reason: 'starting' }) }));
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', reason: 'starting' });
  });

  it('answers 503 "redis unavailable" when the check outlasts the Redis time-out', async () => {
    const app = await fakeApi(
      fakeContext({ redisTimeoutMs: 30, isReady: () => new Promise(() => undefined) }),
    );
    const started = Date.now();
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', reason: 'redis unavailable' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('needs no token even when the node has one', async () => {
    const ctx = fakeContext();
    const app = await fakeApi({
      ...ctx,
      settings: { ...ctx.settings, token: 'a-token-of-16-chars-or-more' },
    });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });
});

/** The bearer token in front of /v1 and /metrics, against a fake node: what passes, what is refused. */
import { describe, expect, it } from 'vitest';
import { fakeApi, fakeContext } from '../support/api.js';

const TOKEN = 'test-token-0123456789abcdef';

async function guarded(token: string | undefined) {
  const ctx = fakeContext({ procedures: () => [{ name: 'hello' }] });
  return fakeApi({ ...ctx, settings: { ...ctx.settings, token } });
}

describe('bearer token', () => {
  it('refuses a request without a token: 401 UNAUTHORIZED in the error shape', async () => {
    const app = await guarded(TOKEN);
    const res = await app.inject({ url: '/v1/procedures' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/Authorization: Bearer/) },
    });
  });

  it.each([
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a shorter token', 'Bearer short'],
    ['the token without "Bearer"', TOKEN],
    ['another scheme', `Basic ${TOKEN}`],
    ['an empty header', ''],
  ])('refuses %s', async (_label, authorization) => {
    const app = await guarded(TOKEN);
    const res = await app.inject({ url: '/v1/procedures', headers: { authorization } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHORIZED');
  });

  it('accepts the right token, whatever the case of "Bearer"', async () => {
    const app = await guarded(TOKEN);
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await app.inject({
        url: '/v1/procedures',
        headers: { authorization: `${scheme} ${TOKEN}` },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ items: [{ name: 'hello' }] });
    }
  });

  it('never reads the token from the URL', async () => {
    const app = await guarded(TOKEN);
    const res = await app.inject({ url: `/v1/procedures?token=${TOKEN}&access_token=${TOKEN}` });
    expect(res.statusCode).toBe(401);
  });

  it('checks the token before the body: a bad body without a token is 401, not 400', async () => {
    const app = await guarded(TOKEN);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: { 'content-type': 'application/json' },
      payload: '{nope',
    });
    expect(res.statusCode).toBe(401);
  });

  it('guards /metrics with the same token', async () => {
    const app = await guarded(TOKEN);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toBe('sprocd_up 1\n');
  });

  it('asks for no token when the node has none', async () => {
    const app = await guarded(undefined);
    expect((await app.inject({ url: '/v1/procedures' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
  });

  it('answers an unknown route with 404 NOT_FOUND in the error shape', async () => {
    const app = await guarded(undefined);
    const res = await app.inject({ url: '/v1/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'No route GET /v1/nothing-here.' } });
  });
});

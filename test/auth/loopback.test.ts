/**
 * A node without a token answers loopback, same-origin requests only: a web page the operator visits
 * cannot drive it through a rebound DNS name (Host) or a cross-site request (Origin, Sec-Fetch-Site).
 * The loopback check parses addresses.
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost, parseHostname } from '../../src/config.js';
import { fakeApi, fakeContext } from '../support/api.js';

const TOKEN = 'loopback-test-token-0123456789';

async function node(token?: string) {
  const ctx = fakeContext({ procedures: () => [{ name: 'hello' }] });
  return fakeApi({ ...ctx, settings: { ...ctx.settings, token } });
}

describe('isLoopbackHost parses the address', () => {
  it.each([
    '127.0.0.1',
    '127.0.0.1:8080',
    '127.1.2.3',
    '127.255.255.254:1',
    '127.1',
    '0x7f.0.0.1',
    '0177.0.0.1',
    '2130706433',
    '::1',
    '[::1]',
    '[::1]:8080',
    '[0:0:0:0:0:0:0:1]:8080',
    '0:0:0:0:0:0:0:1',
    '[::ffff:127.0.0.1]:8080',
    '::ffff:7f00:1',
    'localhost',
    'LocalHost:8080',
  ])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    '0.0.0.0',
    '0.0.0.0:8080',
    '::',
    '[::]:8080',
    '10.0.0.1',
    '128.0.0.1',
    '[::2]',
    '[::ffff:10.0.0.1]',
    'example.com',
    'evil.example:8080',
    '127.0.0.1.nip.io',
    'localhost.evil.example',
    'localhost.',
    '127.0.0.1@evil.example',
    'evil.example/127.0.0.1',
    'evil.example#@127.0.0.1',
    '127.0.0.1 evil',
    '',
    '[::1',
  ])('%j is not', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it('normalises what it parses', () => {
    expect(parseHostname('0x7F.1:80')).toBe('127.0.0.1');
    expect(parseHostname('[0:0::1]')).toBe('[::1]');
    expect(parseHostname('LOCALHOST')).toBe('localhost');
    expect(parseHostname('a@b')).toBeUndefined();
  });
});

describe('a node without a token', () => {
  it.each(['localhost:8080', '127.0.0.1:8080', '[::1]:8080', '127.0.0.2', 'localhost'])(
    'answers Host: %s',
    async (host) => {
      const app = await node();
      const res = await app.inject({ url: '/v1/procedures', headers: { host } });
      expect(res.statusCode).toBe(200);
    },
  );

  it.each([
    'evil.example:8080',
    'evil.example',
    '0.0.0.0:8080',
    '[::]:8080',
    '192.168.1.10:8080',
    '127.0.0.1.nip.io:8080',
  ])('refuses Host: %s (DNS rebinding), for reads and for writes', async (host) => {
    const app = await node();
    for (const [method, url] of [
      ['GET', '/v1/procedures'],
      ['POST', '/v1/executions'],
      ['GET', '/metrics'],
    ] as const) {
      const res = await app.inject({
        method,
        url,
        headers: { host, 'content-type': 'application/json' },
        payload: method === 'POST' ? '{"procedure":"hello"}' : undefined,
      });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error.code).toBe('HOST_NOT_ALLOWED');
    }
  });

  it.each([
    ['another site', { origin: 'http://evil.example' }],
    ['another port of localhost', { origin: 'http://localhost:3000' }],
    ['another loopback name', { origin: 'http://127.0.0.1:8080' }],
    ['an opaque origin', { origin: 'null' }],
    ['a file page', { origin: 'file://' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    [
      'a same Origin but cross-site fetch metadata',
      { origin: 'http://localhost:8080', 'sec-fetch-site': 'cross-site' },
    ],
  ])('refuses a cross-site request: %s', async (_label, headers) => {
    const app = await node();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: { host: 'localhost:8080', 'content-type': 'application/json', ...headers },
      payload: '{"procedure":"hello"}',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('CROSS_SITE_REQUEST');
  });

  it.each([
    ['its own origin', { origin: 'http://localhost:8080', 'sec-fetch-site': 'same-origin' }],
    ['its own origin, default port', { origin: 'http://localhost' }],
    ['a typed URL', { 'sec-fetch-site': 'none' }],
    ['a program (no browser headers)', {}],
  ])('answers a request from %s', async (label, headers) => {
    const app = await node();
    const host = label.includes('default port') ? 'localhost:80' : 'localhost:8080';
    const res = await app.inject({ url: '/v1/procedures', headers: { host, ...headers } });
    expect(res.statusCode).toBe(200);
  });

  it('leaves health, the document and the console open whatever the Host', async () => {
    const app = await node();
    expect((await app.inject({ url: '/healthz', headers: { host: 'evil.example' } })).statusCode).toBe(200);
  });
});

describe('a node with a token', () => {
  it('answers the token whatever the Host and Origin (a bearer header is no browser credential)', async () => {
    const app = await node(TOKEN);
    const res = await app.inject({
      url: '/v1/procedures',
      headers: {
        host: 'sprocd.internal:8080',
        origin: 'https://ops.example',
        'sec-fetch-site': 'cross-site',
        authorization: `Bearer ${TOKEN}`,
      },
    });
    expect(res.statusCode).toBe(200);
  });
});

/** The API's edge: bearer token, health routes, error shape, settings that refuse to start. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode, testEnv } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const TOKEN = 'test-token-0123456789abcdef';
const prefix = uniquePrefix('auth');
let node: SprocdNode;
let url: string;

beforeAll(async () => {
  ({ node, url } = await startInProcessNode(prefix, { SPROCD_TOKEN: TOKEN }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('bearer token', () => {
  const post = (headers: Record<string, string>) =>
    fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ procedure: 'echo', params: 1 }),
    });

  it('refuses a request without a token, with the JSON error shape', async () => {
    const res = await post({});
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/Authorization: Bearer/) },
    });
  });

  it('refuses a wrong token and a malformed header', async () => {
    expect((await post({ authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await post({ authorization: `Bearer short` })).status).toBe(401);
    expect((await post({ authorization: TOKEN })).status).toBe(401);
  });

  it('never reads the token from the URL', async () => {
    const res = await fetch(`${url}/v1/procedures?token=${TOKEN}&access_token=${TOKEN}`);
    expect(res.status).toBe(401);
  });

  it('accepts the right token', async () => {
    const res = await post({ authorization: `Bearer ${TOKEN}` });
    expect(res.status).toBe(202);
    expect(
      (await fetch(`${url}/v1/procedures`, { headers: { authorization: `bearer ${TOKEN}` } })).status,
    ).toBe(200);
  });

  it('leaves /healthz and /readyz open', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('answers a URL that does not decode with the error shape', async () => {
    const res = await fetch(`${url}/v1/session/storage/%ff`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });

  it('answers unknown routes with the error shape', async () => {
    const res = await fetch(`${url}/v1/nothing`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});

describe('GET /metrics', () => {
  it('counts executions by procedure and outcome, behind the token', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const run = async (body: unknown) =>
      fetch(`${url}/v1/executions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify(body),
      });
    await run({ procedure: 'echo', params: 1, wait: 5000 });
    await run({ procedure: 'fail', attempts: 1, wait: 5000 });
    await run({ procedure: 'echo', delayMs: 60_000 });
    const res = await fetch(`${url}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    const series = (name: string, ...labels: string[]) =>
      text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
    expect(series('sprocd_execution_duration_seconds_count', 'procedure="fail"', 'outcome="failed"')).toMatch(
      / 1$/,
    );
    const bucket = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('sprocd_execution_duration_seconds_bucket{') &&
          l.includes('procedure="echo"') &&
          l.includes('outcome="completed"'),
      );
    expect(bucket).toBeDefined();
    expect(text).toMatch(/sprocd_queue_executions\{state="delayed"\} 1/);
    expect(text).toMatch(/sprocd_executions_active\{node="[^"]+"\} 0/);
    expect(text).toMatch(/sprocd_process_resident_memory_bytes/);
  });
});

describe('settings', () => {
  it('refuses a public HOST without a token', () => {
    expect(() => loadSettings(testEnv('x', { HOST: '0.0.0.0' }))).toThrow(/HOST="0.0.0.0".*SPROCD_TOKEN/);
    expect(() => loadSettings(testEnv('x', { HOST: '0.0.0.0', SPROCD_TOKEN: TOKEN }))).not.toThrow();
  });

  it('names every bad setting', () => {
    let message = '';
    try {
      loadSettings(
        testEnv('x', {
          SPROCD_CONCURRENCY: 'lots',
          PORT: '70000',
          SPROCD_BACKUP_CRON: 'every day',
          LOG_LEVEL: 'loud',
        }),
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/SPROCD_CONCURRENCY="lots"/);
    expect(message).toMatch(/PORT="70000"/);
    expect(message).toMatch(/SPROCD_BACKUP_CRON="every day"/);
    expect(message).toMatch(/LOG_LEVEL="loud"/);
  });

  it('has the documented defaults', () => {
    const s = loadSettings({});
    expect(s).toMatchObject({
      prefix: 'sprocd',
      host: '127.0.0.1',
      port: 8080,
      concurrency: 16,
      shutdownGraceMs: 10_000,
      backupKeep: 3,
      logLevel: 'info',
      userName: 'sprocd',
      redisTimeoutMs: 2000,
      bodyLimit: 1024 * 1024,
    });
    expect(s.redisUrl).toBeUndefined();
  });
});

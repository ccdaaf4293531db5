/**
 * Tracing off costs nothing: a node started the way a user starts it (bin/sprocd.js start), with no
 * OTEL_* variable, runs executions without loading any module of the OpenTelemetry SDK, @fastify/otel
 * or bullmq-otel; @opentelemetry/api alone may load (prom-client imports it), and it is a no-op
 * without a provider. The same node with OTEL_TRACES_EXPORTER set does load them, so the recorder
 * is seen to catch what it looks for.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tracingRequested } from '../../src/tracing/index.js';
import { ROOT, testEnv } from '../support/node.js';
import { BIN, childEnv, startProcess } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const RECORDER = path.join(ROOT, 'test', 'tracing', 'fixtures', 'record-modules.mjs');
/** Modules of the tracing side: anything of OpenTelemetry but its API, and the two adapters. */
const TRACING_MODULE = /node_modules\/(@opentelemetry\/(?!api\/)|@fastify\/otel\/|bullmq-otel\/)/;
const prefixes: string[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-otel-off-'));

afterAll(async () => {
  const redis = testClient();
  for (const prefix of prefixes) {
    await deletePrefix(redis, prefix);
  }
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs a node with `otel` variables, executes one procedure over HTTP, stops it: the modules it loaded. */
async function modulesLoaded(otel: Record<string, string>): Promise<string[]> {
  const prefix = uniquePrefix('otel');
  prefixes.push(prefix);
  const out = path.join(dir, `${prefix}.json`);
  const none = Object.fromEntries(
    Object.keys(process.env)
      .filter((name) => name.startsWith('OTEL_'))
      .map((name) => [name, undefined]),
  );
  const child = startProcess(BIN, ['start'], {
    env: childEnv({
      ...none,
      ...testEnv(prefix, { LOG_LEVEL: 'info' }),
      ...otel,
      SPROCD_TEST_MODULES_OUT: out,
    }),
    nodeArgs: ['--import', RECORDER],
    label: 'node',
  });
  try {
    const ready = await child.waitForLine((l) => l.msg === 'sprocd node ready', 30_000);
    const res = await fetch(`${String(ready.url)}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: { a: 1 }, wait: 10_000 }),
    });
    expect(((await res.json()) as { state: string }).state).toBe('completed');
  } finally {
    await child.stop();
  }
  return JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
}

describe('tracing off', () => {
  it('loads no module of the SDK or the adapters', async () => {
    const loaded = await modulesLoaded({});
    expect(
      loaded.some((m) => m.includes('node_modules/bullmq/')),
      'the recorder sees the modules',
    ).toBe(true);
    expect(loaded.filter((m) => TRACING_MODULE.test(m))).toEqual([]);
  });

  it('loads them when OTEL_TRACES_EXPORTER asks for traces', async () => {
    const loaded = await modulesLoaded({ OTEL_TRACES_EXPORTER: 'console' });
    const tracing = loaded.filter((m) => TRACING_MODULE.test(m));
    expect(tracing.some((m) => m.includes('@opentelemetry/sdk-node/'))).toBe(true);
    expect(tracing.some((m) => m.includes('@fastify/otel/'))).toBe(true);
    expect(tracing.some((m) => m.includes('bullmq-otel/'))).toBe(true);
  });
});

describe('tracingRequested', () => {
  it.each([
    [{}, false],
    [{ OTEL_TRACES_EXPORTER: 'none' }, false],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console,none' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }, false],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, false],
  ])('%j → %s', (env, expected) => {
    expect(tracingRequested(env)).toBe(expected);
  });
});

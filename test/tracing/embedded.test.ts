/**
 * A program that embeds a node and set up OpenTelemetry itself: sprocd sends its spans through that
 * provider, with no OTEL_* variable set, and starts no SDK of its own.
 */
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import { providerRegistered, startTracing } from '../../src/tracing/index.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('embed');
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
let node: SprocdNode;

beforeAll(async () => {
  expect(providerRegistered()).toBe(false);
  trace.setGlobalTracerProvider(provider);
  ({ node } = await startInProcessNode(prefix));
});

afterAll(async () => {
  await node?.stop();
  await provider.shutdown();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('an embedding program with its own tracer provider', () => {
  it("gets sprocd's spans through it", async () => {
    expect(providerRegistered()).toBe(true);
    expect(await startTracing()).toBeDefined();
    const res = await fetch(`${node.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 1, wait: 10_000 }),
    });
    expect(res.status).toBe(200);
    const names = exporter.getFinishedSpans().map((s) => s.name);
    expect(names).toContain('request');
    expect(names).toContain('add procedures.echo');
    // The provider is still the program's: sprocd registered no other.
    expect((trace.getTracerProvider() as unknown as { getDelegate(): unknown }).getDelegate()).toBe(provider);
  });
});

/**
 * One HTTP execute, traced end to end against a real node and Redis: the request, the queue add,
 * the execution, a child started by executeOnServer, a storage.use with its lock wait and commit,
 * all in one trace with the right parents, and the node's log lines carrying the trace id.
 */
import path from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { startTracing } from '../../src/tracing/index.js';
import type { Tracing } from '../../src/tracing/types.js';
import { waitForState } from '../support/executions.js';
import { ROOT, testEnv } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('trace');
const exporter = new InMemorySpanExporter();
const lines: Record<string, unknown>[] = [];
let tracing: Tracing | undefined;
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  // Started before the node, with an in-memory exporter: the node's own startTracing() gets this one.
  tracing = await startTracing({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const jobs = path.join(ROOT, 'test', 'tracing', 'fixtures', 'jobs');
  const settings = loadSettings(testEnv(prefix, { SPROCD_JOBS_DIR: jobs, LOG_LEVEL: 'info' }), ROOT);
  const destination = {
    write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
  };
  node = new SprocdNode(settings, createLogger('info', { destination }));
  await node.start();
  client = new SprocdClient({ url: node.url, token: '' });
});

afterAll(async () => {
  await node?.stop();
  await tracing?.shutdown();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** The span's ancestors' names, nearest first, up to the root. */
function ancestry(span: ReadableSpan, byId: Map<string, ReadableSpan>): string[] {
  const names: string[] = [];
  let parent = span.parentSpanContext && byId.get(span.parentSpanContext.spanId);
  while (parent) {
    names.push(parent.name);
    parent = parent.parentSpanContext && byId.get(parent.parentSpanContext.spanId);
  }
  return names;
}

describe('tracing', () => {
  it('follows one execute from the HTTP request through the queue, a child and a storage.use', async () => {
    const res = await fetch(`${node.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'traced', wait: 10_000 }),
    });
    expect(res.status).toBe(200);
    const parent = (await res.json()) as { number: number; result: { child: number } };
    const childNumber = parent.result.child;
    await waitForState(client, childNumber, 'completed');

    const find = (name: string, execution?: number) =>
      exporter
        .getFinishedSpans()
        .find(
          (s) =>
            s.name === name &&
            (execution === undefined || s.attributes['sprocd.execution.number'] === execution),
        );
    // The child's spans end after its state is written: wait for them.
    await vi.waitFor(() => expect(find('execution traced-child', childNumber)).toBeDefined());
    await tracing?.flush();
    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));

    const request = spans.find(
      (s) =>
        s.name === 'request' &&
        s.attributes['http.route'] === '/v1/executions' &&
        s.attributes['http.request.method'] === 'POST',
    );
    expect(request, 'the request span').toBeDefined();
    const traceId = request?.spanContext().traceId;

    const parentRun = find('execution traced', parent.number);
    const childRun = find('execution traced-child', childNumber);
    const use = find('storage.use');
    const lock = find('storage.lock');
    const commit = find('storage.commit');
    for (const span of [parentRun, childRun, use, lock, commit]) {
      expect(span?.spanContext().traceId, span?.name).toBe(traceId);
    }

    // The child: its execution, BullMQ's process span, the add that queued it from inside the parent's
    // execution, then the parent's way back to the request, which is the root.
    const childChain = ancestry(childRun as ReadableSpan, byId);
    expect(childChain.slice(0, 5)).toEqual([
      'process procedures',
      'add procedures.traced-child',
      'execution traced',
      'process procedures',
      'add procedures.traced',
    ]);
    expect(childChain.at(-1)).toBe('request');
    expect(request?.parentSpanContext).toBeUndefined();

    // The storage.use of the parent, with its lock wait and commit inside it.
    expect(ancestry(use as ReadableSpan, byId)[0]).toBe('execution traced');
    expect(ancestry(lock as ReadableSpan, byId).slice(0, 2)).toEqual(['storage.use', 'execution traced']);
    expect(ancestry(commit as ReadableSpan, byId).slice(0, 2)).toEqual(['storage.use', 'execution traced']);
    expect(lock?.attributes['sprocd.storage.keys']).toEqual(['traced']);

    expect(parentRun?.attributes).toMatchObject({
      'sprocd.procedure': 'traced',
      'sprocd.execution.attempt': 1,
      'sprocd.execution.outcome': 'completed',
      'sprocd.node': node.name,
    });
  });

  it('writes the trace id into the log lines of an execution', async () => {
    const parentRun = exporter.getFinishedSpans().find((s) => s.name === 'execution traced');
    const line = lines.find((l) => l.msg === 'traced parent');
    expect(line).toMatchObject({
      trace_id: parentRun?.spanContext().traceId,
      span_id: parentRun?.spanContext().spanId,
      trace_flags: '01',
    });
    const started = lines.find((l) => l.msg === 'execution started' && l.procedure === 'traced-child');
    expect(started?.trace_id).toBe(parentRun?.spanContext().traceId);
  });

  it('marks a failed execution as an error', async () => {
    const res = await fetch(`${node.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'traced-child', params: null, wait: 10_000 }),
    });
    const failed = (await res.json()) as { number: number; state: string };
    expect(failed.state).toBe('failed');
    await vi.waitFor(() =>
      expect(
        exporter.getFinishedSpans().find((s) => s.attributes['sprocd.execution.number'] === failed.number)
          ?.attributes,
      ).toMatchObject({ 'sprocd.execution.outcome': 'failed' }),
    );
    const span = exporter
      .getFinishedSpans()
      .find((s) => s.attributes['sprocd.execution.number'] === failed.number);
    expect(span?.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(span?.events.map((e) => e.name)).toContain('exception');
  });
});

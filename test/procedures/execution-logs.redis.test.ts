/**
 * An execution's log lines, on real nodes: what its procedure writes through ctx.log reaches
 * GET /v1/executions/:n/logs in order (level, msg, fields, redacted like stdout), framed by sprocd's
 * start and end lines, capped in count and size; any node shows the lines of an execution another
 * node ran; an execution that logs nothing writes nothing; removing the execution removes its lines.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { MAX_LINES, MAX_LINE_BYTES, type ExecutionLogLine } from '../../src/procedures/execution-logs.js';
import { createKeys } from '../../src/redis/keys.js';
import { FIXTURES, ROOT, testEnv } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('xlog');
const keys = createKeys(prefix);

/** A node in this process that logs at info into `lines` (what it would write to stdout). */
async function startNode(
  name: string,
  jobs: string,
): Promise<{ node: SprocdNode; client: SprocdClient; lines: Record<string, unknown>[] }> {
  const settings = loadSettings(
    testEnv(prefix, { LOG_LEVEL: 'info', SPROCD_NODE_NAME: name, SPROCD_JOBS_DIR: jobs }),
    ROOT,
  );
  const lines: Record<string, unknown>[] = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
  const node = new SprocdNode(settings, createLogger('info', { destination }));
  await node.start();
  return {
    node,
    client: new SprocdClient({ url: node.url, token: '', fetch: checkedFetch(node.url) }),
    lines,
  };
}

let a: Awaited<ReturnType<typeof startNode>>;
let b: Awaited<ReturnType<typeof startNode>>;

const logsOf = (client: SprocdClient, n: number) =>
  client.request<{ items: ExecutionLogLine[] }>('GET', `/v1/executions/${n}/logs`).then((r) => r.items);

/** The lines once the end line is there (it goes out right after the execution ends). */
async function finalLogs(client: SprocdClient, n: number): Promise<ExecutionLogLine[]> {
  let items: ExecutionLogLine[] = [];
  await expect
    .poll(async () => (items = await logsOf(client, n)).at(-1)?.msg, { timeout: 5000 })
    .toBe('execution ended');
  return items;
}

beforeAll(async () => {
  // Node a lacks the log procedures: what it takes of them it hands to node b, which has them.
  a = await startNode('node-a', path.join(FIXTURES, 'jobs'));
  b = await startNode('node-b', path.join(FIXTURES, 'log-jobs'));
});

afterAll(async () => {
  await a?.node.stop();
  await b?.node.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/executions/:n/logs', () => {
  it('gives the lines ctx.log wrote, oldest first, between the start and end lines, as stdout has them', async () => {
    const done = await b.client.execute('chatty', { lines: 3 }, { name: 'talk', wait: 10_000 });
    expect(done.state).toBe('completed');
    const items = await finalLogs(b.client, done.number);
    expect(items.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'execution started'],
      ['info', 'line 0'],
      ['info', 'line 1'],
      ['info', 'line 2'],
      ['warn', 'from a child'],
      ['info', 'execution ended'],
    ]);
    expect(items[0]?.fields).toEqual({ name: 'talk' });
    expect(items[1]).toMatchObject({ node: 'node-b', attempt: 1, fields: { i: 0, token: '[redacted]' } });
    expect(items[1]?.fields).not.toHaveProperty('execution');
    expect(items[4]?.fields).toEqual({ step: 'last' });
    expect(items[5]?.fields).toEqual({ durationMs: expect.any(Number), outcome: 'completed' });
    for (const l of items) {
      expect(Date.parse(l.at)).toBeGreaterThan(0);
    }
    // stdout's line is the same as before: the procedure's bindings and fields, redacted.
    const stdout = b.lines.find((l) => l.msg === 'line 1' && l.execution === done.number);
    expect(stdout).toMatchObject({ level: 30, procedure: 'chatty', i: 1, token: '[redacted]' });
  });

  it('keeps the newest lines only, each cut to its size limit', async () => {
    const done = await b.client.execute('chatty', { lines: MAX_LINES + 50, long: true }, { wait: 10_000 });
    const items = await finalLogs(b.client, done.number);
    expect(items).toHaveLength(MAX_LINES);
    expect(items[0]?.msg).toBe(`line ${MAX_LINES + 50 - (MAX_LINES - 3)}`);
    const long = items.at(-2);
    expect(long?.level).toBe('error');
    expect(long?.msg.endsWith('…')).toBe(true);
    expect(long?.fields).toEqual({ truncated: expect.stringMatching(/^\{"blob":"y+…$/) });
    const stored = await testClient().lrange(keys.executionLogs(done.number), 0, -1);
    for (const s of stored) {
      expect(Buffer.byteLength(s)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    }
    expect(await testClient().pttl(keys.executionLogs(done.number))).toBeGreaterThan(0);
  });

  it('shows on one node the lines of an execution another node ran', async () => {
    const done = await b.client.execute('chatty', { lines: 1 }, { wait: 10_000 });
    const items = await finalLogs(a.client, done.number);
    expect(items.map((l) => l.msg)).toEqual([
      'execution started',
      'line 0',
      'from a child',
      'execution ended',
    ]);
    expect(new Set(items.map((l) => l.node))).toEqual(new Set(['node-b']));
  });

  it('writes nothing for an execution that logs nothing, and says 404 for an unknown one', async () => {
    const done = await b.client.execute('quiet', {}, { wait: 10_000 });
    expect(done.state).toBe('completed');
    expect(await logsOf(a.client, done.number)).toEqual([]);
    // Its end went by without a write (the lines of a logging one go out at once after its end).
    await new Promise((r) => setTimeout(r, 300));
    expect(await testClient().exists(keys.executionLogs(done.number))).toBe(0);
    await expect(logsOf(a.client, 99_999_999)).rejects.toMatchObject({
      status: 404,
      code: 'EXECUTION_NOT_FOUND',
    });
  });

  it('removes the lines with their execution', async () => {
    const done = await b.client.execute('chatty', { lines: 1 }, { wait: 10_000 });
    await finalLogs(a.client, done.number);
    await a.client.request('DELETE', `/v1/executions/${done.number}`);
    expect(await testClient().exists(keys.executionLogs(done.number))).toBe(0);
    await expect(logsOf(a.client, done.number)).rejects.toMatchObject({ status: 404 });
  });
});

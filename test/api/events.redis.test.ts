/**
 * GET /v1/events over HTTP on a real node: an execution's events in order, filters, resuming with
 * Last-Event-ID, system events, the token, and a client that goes away is forgotten.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import { EventHub, hubStreams } from '../../src/events/hub.js';
import { JOB_EVENTS_MAX_LEN } from '../../src/redis/bullmq-internals.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import type { SprocdClient } from '../../src/client.js';
import { fakeApi, fakeContext } from '../support/api.js';
import { startInProcessNode, TEST_QUEUE_SHARDS, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';
import { openSse, type SseStream } from '../support/sse.js';

const TOKEN = 'events-test-token-0123456789';
const prefix = uniquePrefix('events');
let node: SprocdNode;
let client: SprocdClient;
let url: string;
const streams: SseStream[] = [];

async function open(query = '', lastEventId?: string): Promise<SseStream> {
  const stream = await openSse(`${url}/v1/events${query}`, { token: TOKEN, lastEventId });
  streams.push(stream);
  // The first frame (an id) says the subscription is in place.
  await vi.waitFor(() => expect(stream.frames.some((f) => f.id !== undefined)).toBe(true));
  return stream;
}

const statesOf = (s: SseStream, n: number) =>
  s
    .events()
    .filter((e) => e.type === 'execution.state' && e.data.number === n)
    .map((e) => e.data.state);

beforeAll(async () => {
  ({ node, client, url } = await startInProcessNode(prefix, {
    SPROCD_TOKEN: TOKEN,
    SPROCD_BACKUP_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-events-backups-')),
  }));
});

afterAll(async () => {
  streams.forEach((s) => s.close());
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/events', () => {
  it('streams an execution: waiting, active, progress, completed, in order', async () => {
    const stream = await open();
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const view = await client.execute('progress');
    await vi.waitFor(() =>
      expect(
        stream.events().some((e) => e.type === 'execution.progress' && e.data.number === view.number),
      ).toBe(true),
    );
    await client.wake(view.number);
    await vi.waitFor(() => expect(statesOf(stream, view.number)).toContain('completed'), { timeout: 10_000 });
    const mine = stream.events().filter((e) => e.data.number === view.number);
    expect(statesOf(stream, view.number)).toEqual(['waiting', 'active', 'completed']);
    expect(mine.filter((e) => e.type === 'execution.progress').map((e) => e.data.progress)).toEqual([
      42,
      { phase: 'done' },
    ]);
    expect(mine.find((e) => e.data.state === 'active')?.data).toMatchObject({
      procedure: 'progress',
      attempt: 1,
    });
    expect(mine.findIndex((e) => e.type === 'execution.progress')).toBeLessThan(
      mine.findIndex((e) => e.data.state === 'completed'),
    );
    // One stream id per queue shard's BullMQ stream, then the log's (src/events/ids.ts).
    const idShape = new RegExp(`^(\\d+-\\d+_){${TEST_QUEUE_SHARDS}}\\d+-\\d+$`);
    expect(mine.every((e) => idShape.test(e.id ?? ''))).toBe(true);
  });

  it('filters by number, procedure and type (repeated or comma-separated)', async () => {
    const byNumber = await open('?number=999999');
    const byProcedure = await open('?procedure=fail');
    const byType = await open('?type=execution.state&type=system');
    const byTypes = await open('?types=execution.progress,backup');
    const done = await client.execute('echo', 1, { wait: 10_000 });
    const failed = await client.execute('fail', null, { attempts: 1, wait: 10_000 });
    const withProgress = await client.execute('progress');
    await vi.waitFor(() => expect(byTypes.events().length).toBeGreaterThan(0));
    await client.wake(withProgress.number);
    await vi.waitFor(() => {
      expect(statesOf(byProcedure, failed.number)).toContain('failed');
      expect(statesOf(byType, withProgress.number)).toContain('completed');
      expect(byTypes.events().some((e) => e.data.number === withProgress.number)).toBe(true);
    });
    expect(byNumber.events()).toEqual([]);
    expect(byProcedure.events().every((e) => e.data.number === failed.number)).toBe(true);
    expect(byType.events().every((e) => e.type === 'execution.state' || e.type === 'system')).toBe(true);
    expect(statesOf(byType, done.number)).toEqual(['waiting', 'active', 'completed']);
    expect(byTypes.events().every((e) => e.type === 'execution.progress')).toBe(true);
    const failure = byProcedure.events().find((e) => e.data.state === 'failed');
    expect(failure?.data.error).toMatchObject({ message: expect.stringMatching(/boom/) });
  });

  it('refuses bad filters and a missing token', async () => {
    const bad = await fetch(`${url}/v1/events?type=nope`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    const badNumber = await fetch(`${url}/v1/events?number=x`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(badNumber.status).toBe(400);
    const anonymous = await fetch(`${url}/v1/events`);
    expect(anonymous.status).toBe(401);
  });

  it('resumes with Last-Event-ID: the missed events come first, none twice', async () => {
    const first = await open();
    const before = await client.execute('echo', 'before', { wait: 10_000 });
    await vi.waitFor(() => expect(statesOf(first, before.number)).toContain('completed'));
    const seen = first.lastId();
    first.close();
    const missed = await client.execute('echo', 'missed', { wait: 10_000 });
    const again = await open('', seen);
    const after = await client.execute('echo', 'after', { wait: 10_000 });
    await vi.waitFor(() => expect(statesOf(again, after.number)).toContain('completed'));
    expect(statesOf(again, before.number)).toEqual([]);
    expect(statesOf(again, missed.number)).toEqual(['waiting', 'active', 'completed']);
    expect(statesOf(again, after.number)).toEqual(['waiting', 'active', 'completed']);
    const numbers = again
      .events()
      .filter((e) => e.type === 'execution.state')
      .map((e) => e.data.number);
    expect(numbers.indexOf(missed.number)).toBeLessThan(numbers.indexOf(after.number));
  });

  it('keeps more job events than BullMQ does by default (clients resume after minutes, not seconds)', async () => {
    for (const shard of testKeys(prefix).queues.all) {
      const meta = await testClient().hget(bullQueueKeys(shard).meta, 'opts.maxLenEvents');
      expect(Number(meta)).toBe(JOB_EVENTS_MAX_LEN);
    }
  });

  it('says reset for an id it cannot read, then streams live', async () => {
    const stream = await open('', 'not-an-id');
    expect(stream.events()[0]?.type).toBe('reset');
    const view = await client.execute('echo', 'live', { wait: 10_000 });
    await vi.waitFor(() => expect(statesOf(stream, view.number)).toContain('completed'));
  });

  it('sends heartbeats, and forgets a client that went away', async () => {
    const keys = testKeys(prefix);
    const redis = testClient();
    const hub = new EventHub({ redis, openReader: () => testClient(), streams: hubStreams(keys) });
    const app = await fakeApi(fakeContext({ events: () => hub, eventHeartbeatMs: 50 }));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const stream = await openSse(`${address}/v1/events`);
      await vi.waitFor(() => expect(hub.size).toBe(1));
      await vi.waitFor(() =>
        expect(
          stream.frames.filter((f) => f.type === undefined && f.id === undefined).length,
        ).toBeGreaterThan(1),
      );
      stream.close();
      await vi.waitFor(() => expect(hub.size).toBe(0));
      await vi.waitFor(() => expect(hub.reading).toBe(false), { timeout: 5000 });
    } finally {
      hub.close();
    }
  });

  it("carries a backup's start, progress by phase, and end", async () => {
    await node.session.storage.use('events-backup', (d) => {
      d.n = 1;
    });
    const stream = await open('?type=backup');
    const record = await client.backup();
    await vi.waitFor(() => expect(stream.events().some((e) => e.type === 'backup.finished')).toBe(true));
    const events = stream.events();
    expect(events[0]).toMatchObject({
      type: 'backup.started',
      data: { number: record.number, trigger: 'manual' },
    });
    const phases = events.filter((e) => e.type === 'backup.progress').map((e) => e.data.phase);
    expect([...new Set(phases)]).toEqual(['hook', 'snapshot', 'write']);
    const last = events.filter((e) => e.type === 'backup.progress').at(-1);
    expect(last?.data).toMatchObject({ phase: 'write', number: record.number });
    expect(last?.data.done).toBeGreaterThanOrEqual(1);
    expect(last?.data.done).toBe(last?.data.total);
    expect(events.at(-1)).toMatchObject({
      type: 'backup.finished',
      data: { number: record.number, status: 0 },
    });
  });

  it("carries a restore's start, progress by phase, and end; and a refused restore's end", async () => {
    const record = await client.backup();
    const stream = await open('?type=restore');
    const summary = await client.restore(fs.readFileSync(record.file as string), { allowUnsigned: true });
    await vi.waitFor(() => expect(stream.events().some((e) => e.type === 'restore.finished')).toBe(true));
    const events = stream.events();
    expect(events[0]?.type).toBe('restore.started');
    const progress = events.filter((e) => e.type === 'restore.progress').map((e) => e.data);
    expect([...new Set(progress.map((p) => p.phase))]).toEqual(['check', 'stage', 'queue']);
    // Each phase ends with all of it done; the file's lines are its entries and executions.
    const lastOf = (phase: string) => progress.filter((p) => p.phase === phase).at(-1);
    expect(lastOf('stage')).toMatchObject({
      done: summary.entries + summary.executions + summary.skipped,
      total: summary.entries + summary.executions + summary.skipped,
    });
    expect(lastOf('queue')?.done).toBe(lastOf('queue')?.total);
    expect(events.at(-1)).toMatchObject({
      type: 'restore.finished',
      data: { summary: { session: summary.session } },
    });

    await expect(client.restore(Buffer.from('not gzip'), { allowUnsigned: true })).rejects.toThrow();
    await vi.waitFor(() =>
      expect(
        stream
          .events()
          .filter((e) => e.type === 'restore.finished')
          .at(-1)?.data,
      ).toMatchObject({
        error: { code: 'BACKUP_INVALID' },
      }),
    );
  });

  it('carries system events, and ends the streams when the node stops', async () => {
    const watcher = await open('?type=system');
    const other = await startInProcessNode(prefix, { SPROCD_TOKEN: TOKEN, SPROCD_NODE_NAME: 'events-other' });
    const stream = await openSse(`${other.url}/v1/events?type=system`, { token: TOKEN });
    await vi.waitFor(() => expect(stream.frames.some((f) => f.id !== undefined)).toBe(true));
    await vi.waitFor(
      () =>
        expect(watcher.events().map((e) => e.data)).toContainEqual(
          expect.objectContaining({ type: 'node.joined', joined: 'events-other' }),
        ),
      { timeout: 15_000 },
    );
    await other.node.stop();
    await stream.ended;
    await vi.waitFor(
      () =>
        expect(watcher.events().map((e) => e.data)).toContainEqual(
          expect.objectContaining({ type: 'node.left', left: 'events-other' }),
        ),
      { timeout: 15_000 },
    );
  });
});

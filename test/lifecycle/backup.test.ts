/**
 * Backups and restore against the real test Redis, with in-process nodes: the backup hooks and the
 * status codes they see, retention, one backup at a time, consistency while executions are queued
 * and storage.use commits all the while, the restore round trip (same and another deployment), and
 * refused files that change nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupEncoder,
  type BackupHeader,
} from '../../src/lifecycle/backup-format.js';
import { parseBackup } from '../../src/lifecycle/backup-reader.js';
import { BackupSnapshot } from '../../src/lifecycle/backup-snapshot.js';
import { backupKey } from '../../src/lifecycle/backup-signature.js';
import type { BackupRecord } from '../../src/lifecycle/backup-history.js';
import type { SprocdNode } from '../../src/node.js';
import { Queue } from 'bullmq';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { QUEUE_NAME, createKeys, jobIdOf } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('bk');
const otherPrefix = uniquePrefix('bk2');
const shardedPrefix = uniquePrefix('bk3');
const fromShardsPrefix = uniquePrefix('bk31');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-backup-test-'));
const env = {
  SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'backup-hooks'),
  SPROCD_BACKUP_DIR: dir,
  SPROCD_BACKUP_KEEP: '3',
  SPROCD_CONCURRENCY: '4',
  SPROCD_BACKUP_KEY: 'backup-test-key-0123456789abcdef-0123',
};
const key = backupKey(env.SPROCD_BACKUP_KEY);
const DELAY_MS = 600_000;

let node: SprocdNode;
let client: SprocdClient;
const extra: SprocdNode[] = [];

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, env));
});

afterAll(async () => {
  await Promise.all([node, ...extra].map((n) => n?.stop()));
  const redis = testClient();
  await deletePrefix(redis, prefix);
  await deletePrefix(redis, otherPrefix);
  await deletePrefix(redis, shardedPrefix);
  await deletePrefix(redis, fromShardsPrefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function control(value: { mode: string; value?: number; ms?: number }): Promise<void> {
  await node.session.storage.use('backupControl', (d) => {
    for (const k of Object.keys(d)) {
      delete d[k];
    }
    Object.assign(d, value);
  });
}

async function lastShutdownStatus(): Promise<number | undefined> {
  const log = await node.session.storage.get<{ shutdowns?: number[] }>('backupHookLog');
  return log?.shutdowns?.at(-1);
}

async function backup(): Promise<BackupRecord> {
  return (await client.backup()) as unknown as BackupRecord;
}

function ourFiles(): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith(`${prefix}-backup-`))
    .sort();
}

describe('a backup through the hooks', () => {
  it('allowed: writes one file, keeps a record, onBackupShutdown gets 0', async () => {
    await control({ mode: 'allow' });
    const record = await backup();
    expect(record).toMatchObject({ status: 0, outcome: 'done', trigger: 'manual', node: node.name });
    expect(record.file).toBeDefined();
    expect(fs.statSync(record.file as string).size).toBe(record.size);
    expect(path.basename(record.file as string)).toMatch(/\.sprocd\.gz$/);
    const parsed = await parseBackup(fs.readFileSync(record.file as string), { key });
    expect(parsed.header).toMatchObject({
      format: 'sprocd-backup',
      version: 2,
      prefix,
      number: record.number,
      signature: 'hmac-sha256',
      keyId: key?.id,
    });
    expect(parsed.session.id).toBe(node.session.id);
    expect(await lastShutdownStatus()).toBe(0);
    const listing = (await client.backups()) as { items: BackupRecord[]; automaticStopped: boolean };
    expect(listing.items[0]).toEqual(record);
    expect(listing.automaticStopped).toBe(false);
    // No temporary file is left behind.
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('refused: the number onBackupStartup returned is the status, and no file is written', async () => {
    await control({ mode: 'refuse', value: 42 });
    const before = ourFiles();
    const record = await backup();
    expect(record).toMatchObject({ status: 42, outcome: 'cancelled' });
    expect(record.file).toBeUndefined();
    expect(ourFiles()).toEqual(before);
    expect(await lastShutdownStatus()).toBe(42);
  });

  it('a throwing onBackupStartup (or one returning a non-number) ends with 1411', async () => {
    await control({ mode: 'throw' });
    const thrown = await backup();
    expect(thrown).toMatchObject({ status: 1411, outcome: 'failed' });
    expect(thrown.message).toMatch(/throwing test hook/);
    expect(await lastShutdownStatus()).toBe(1411);
    await control({ mode: 'text' });
    expect(await backup()).toMatchObject({ status: 1411, outcome: 'failed' });
    // Manual failures are not counted against automatic backups.
    expect(((await client.backups()) as { consecutiveFailures: number }).consecutiveFailures).toBe(0);
  });

  it('a folder that cannot be written ends with 1410, given to onBackupShutdown, and emits backup.failed', async () => {
    const blocker = path.join(dir, 'not-a-folder');
    fs.writeFileSync(blocker, 'a file where the backup folder should be');
    const { node: other, client: otherClient } = await startInProcessNode(prefix, {
      ...env,
      SPROCD_BACKUP_DIR: path.join(blocker, 'backups'),
      SPROCD_RESTORE_MAX_BYTES: '1000',
    });
    extra.push(other);
    await control({ mode: 'allow' });
    const record = (await otherClient.backup()) as unknown as BackupRecord;
    expect(record).toMatchObject({ status: 1410, outcome: 'failed' });
    expect(record.message).toMatch(/not-a-folder/);
    expect(await lastShutdownStatus()).toBe(1410);
    await expect
      .poll(
        async () =>
          (await node.session.storage.get<{ list?: { status: number; number: number }[] }>('backupEvents'))
            ?.list,
        { timeout: 15_000 },
      )
      .toContainEqual({ status: 1410, number: record.number });

    // The same node checks restore uploads against its small SPROCD_RESTORE_MAX_BYTES.
    const big = await fetch(`${otherClient.url}/v1/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(5000),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(
      /SPROCD_RESTORE_MAX_BYTES/,
    );
    const json = await fetch(`${otherClient.url}/v1/restore`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(415);
  });

  it('keeps exactly SPROCD_BACKUP_KEEP files, the newest ones', async () => {
    await control({ mode: 'allow' });
    const records: BackupRecord[] = [];
    for (let i = 0; i < 4; i++) {
      records.push(await backup());
    }
    const files = ourFiles();
    expect(files).toHaveLength(3);
    expect(files.map((f) => path.join(dir, f))).toEqual(records.slice(-3).map((r) => r.file));
  });

  it('one at a time in the cluster: a second request gets 409 and who runs it', async () => {
    await control({ mode: 'allow', ms: 1500 });
    const first = backup();
    await expect
      .poll(async () => ((await client.backups()) as { running?: unknown }).running, { timeout: 15_000 })
      .toBeDefined();
    const second = await client.backup().then(
      () => undefined,
      (err: unknown) =>
        err as { status: number; code: string; message: string; details?: { running: { node: string } } },
    );
    expect(second).toMatchObject({ status: 409, code: 'BACKUP_RUNNING' });
    expect(second?.details?.running.node).toBe(node.name);
    expect(second?.message).toContain(node.name);
    expect(await first).toMatchObject({ status: 0 });
    await control({ mode: 'allow' });
  });

  it('a node that stops mid-backup ends it with 1406, given to onBackupShutdown', async () => {
    const { node: stopping } = await startInProcessNode(prefix, env);
    await control({ mode: 'allow', ms: 1500 });
    const running = stopping.internals().lifecycle?.backups.run('manual');
    await expect
      .poll(async () => ((await client.backups()) as { running?: { node: string } }).running?.node, {
        timeout: 15_000,
      })
      .toBe(stopping.name);
    await stopping.stop();
    expect(await running).toMatchObject({ status: 1406, outcome: 'failed' });
    expect(await lastShutdownStatus()).toBe(1406);
    await control({ mode: 'allow' });
  });
});

describe('consistency', () => {
  it('a backup while 1,000 executions are queued and use() commits all the while is consistent', async () => {
    const queued = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => client.execute('echo', { i }, { delayMs: DELAY_MS })),
    );
    let stop = false;
    let commits = 0;
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        await node.session.storage.use(['pairA', 'pairB'], (a, b) => {
          a.n = ((a.n as number | undefined) ?? 0) + 1;
          b.n = ((b.n as number | undefined) ?? 0) + 1;
        });
        commits++;
      }
    });
    // More executions arrive during the backup too.
    const adding = (async () => {
      const more: number[] = [];
      while (!stop) {
        more.push((await client.execute('echo', 'late', { delayMs: DELAY_MS })).number);
      }
      return more;
    })();
    await expect.poll(() => commits, { timeout: 15_000 }).toBeGreaterThan(20);
    const commitsBefore = commits;
    const record = await backup();
    const commitsDuring = commits - commitsBefore;
    stop = true;
    await Promise.all(loops);
    await adding;
    expect(record.status).toBe(0);
    expect(commitsDuring).toBeGreaterThan(0);

    const parsed = await parseBackup(fs.readFileSync(record.file as string), { key });
    const a = JSON.parse(parsed.entries.get('pairA') as string) as { n: number };
    const b = JSON.parse(parsed.entries.get('pairB') as string) as { n: number };
    expect(a.n).toBeGreaterThan(0);
    expect(a.n).toBe(b.n);
    const inFile = new Map(parsed.executions.map((x) => [x.n, x]));
    for (const q of queued) {
      const line = inFile.get(q.number);
      expect(line).toMatchObject({ state: 'delayed', from: 'delayed', name: 'echo' });
      expect(line?.data).toMatchObject({ procedure: 'echo', params: q.params, id: q.id });
      expect(line?.dueAt).toBe(Date.parse(q.createdAt) + DELAY_MS);
    }
    expect(record.executions).toBe(parsed.executions.length);
    expect(parsed.sequence).toBeGreaterThanOrEqual(Math.max(...parsed.executions.map((x) => x.n)));
  });
});

describe('restore', () => {
  let bytes: Buffer;

  it('round trip: back up, change storage and executions, restore, compare', async () => {
    const storage = node.session.storage;
    await storage.use('rt1', (d) => {
      d.v = 1;
    });
    await storage.use('rt2', (d) => {
      d.list = [1, 2, 3];
    });
    const kept = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        client.execute('echo', { rt: i }, { delayMs: DELAY_MS, priority: 3 }),
      ),
    );
    const record = await backup();
    expect(record.status).toBe(0);
    bytes = fs.readFileSync(record.file as string);
    const parsed = await parseBackup(bytes, { key });

    // Change everything.
    await storage.use('rt1', (d) => {
      d.v = 2;
    });
    await storage.remove('rt2');
    await storage.use('rt3', (d) => {
      d.added = true;
    });
    const { executions } = node.internals();
    for (const k of kept) {
      await executions.queueOf(k.number).remove(jobIdOf(k.number));
    }
    const added = await client.execute('echo', 'after the backup', { delayMs: DELAY_MS });
    const redis = testClient();
    const sequenceBefore = Number(await redis.get(node.internals().keys.sequence));

    const summary = (await client.restore(bytes)) as {
      session: string;
      entries: number;
      executions: number;
      skipped: number;
      sequence: number;
    };
    expect(summary).toMatchObject({ session: node.session.id, entries: parsed.entries.size, executions: 5 });
    expect(summary.skipped).toBe(parsed.executions.length - 5);

    // Storage: exactly what the file holds (rt3 is gone, rt1 and rt2 are back).
    const expected = Object.fromEntries([...parsed.entries].map(([k, v]) => [k, JSON.parse(v) as unknown]));
    expect(await storage.snapshot()).toEqual(expected);
    expect(await storage.get('rt1')).toEqual({ v: 1 });
    expect(await storage.get('rt3')).toBeUndefined();
    // Executions: back with their numbers, params, creation and due times; the new one untouched.
    const delayedKey = (n: number) => bullQueueKeys(node.internals().keys.queues.ofNumber(n)).delayed;
    for (const k of kept) {
      const view = await client.get(k.number);
      expect(view).toMatchObject({
        state: 'delayed',
        params: { rt: kept.indexOf(k) },
        id: k.id,
        createdAt: k.createdAt,
      });
      const score = Number(await redis.zscore(delayedKey(k.number), jobIdOf(k.number)));
      expect(Math.floor(score / 0x1000)).toBe(Date.parse(k.createdAt) + DELAY_MS);
      const job = await executions.queueOf(k.number).getJob(jobIdOf(k.number));
      expect(job?.priority).toBe(3);
    }
    expect((await client.get(added.number)).state).toBe('delayed');
    // The counter never goes down.
    expect(Number(await redis.get(node.internals().keys.sequence))).toBe(
      Math.max(sequenceBefore, summary.sequence),
    );
    expect(summary.sequence).toBeGreaterThanOrEqual(sequenceBefore);
  });

  it('restores into another deployment: session, storage, executions and a counter past them', async () => {
    const { node: fresh, client: freshClient } = await startInProcessNode(otherPrefix, env);
    extra.push(fresh);
    const parsed = await parseBackup(bytes, { key });
    const summary = (await freshClient.restore(bytes)) as { executions: number; skipped: number };
    expect(summary).toMatchObject({ executions: parsed.executions.length, skipped: 0 });
    const session = (await freshClient.session()) as { id: string };
    expect(session.id).toBe(parsed.session.id);
    const expected = Object.fromEntries([...parsed.entries].map(([k, v]) => [k, JSON.parse(v) as unknown]));
    expect(await fresh.session.storage.snapshot()).toEqual(expected);
    const sample = parsed.executions[0]!;
    expect(await freshClient.get(sample.n)).toMatchObject({
      number: sample.n,
      params: (sample.data as { params: unknown }).params,
    });
    const highest = Math.max(...parsed.executions.map((x) => x.n));
    const next = await freshClient.execute('echo', 'new here');
    expect(next.number).toBeGreaterThan(highest);
  });

  it('refuses a damaged or foreign file with 400 BACKUP_INVALID and changes nothing', async () => {
    const redis = testClient();
    const layout = storageLayout(node.internals().keys);
    const state = async () => ({
      storage: await redis.hgetall(layout.data),
      session: await redis.hgetall(node.internals().keys.session),
      sequence: await redis.get(node.internals().keys.sequence),
      jobs: await Promise.all(node.internals().executions.queues.map((q) => q.getJobCounts())),
    });
    const before = await state();
    const text = zlib.gunzipSync(bytes);
    const flipped = Buffer.from(text);
    const middle = Math.floor(flipped.length / 2);
    flipped[middle] = flipped[middle] === 0x31 ? 0x32 : 0x31;
    const headerEnd = text.indexOf(10);
    const header = JSON.parse(text.subarray(0, headerEnd).toString()) as Record<string, unknown>;
    const otherVersion = Buffer.concat([
      Buffer.from(JSON.stringify({ ...header, version: 99 })),
      text.subarray(headerEnd),
    ]);
    const damagedGzip = Buffer.from(bytes);
    const at = Math.floor(damagedGzip.length / 2);
    damagedGzip[at] = (damagedGzip[at] ?? 0) ^ 0xff;
    // A damaged byte lands in a different place of each run's file (ids and times differ), so the
    // refusal may be any of the reader's checks on what it decoded: each of them names the damage.
    const damage =
      /gzip data is damaged|checksum|not JSON|malformed|altered|unknown kind|do not match|follows the trailer|truncated/;
    const cases: [string, Buffer, RegExp][] = [
      ['a changed byte', zlib.gzipSync(flipped), damage],
      // Streamed: whichever notices first, gzip's CRC at the end or a line that no longer parses.
      ['damaged gzip', damagedGzip, damage],
      ['truncated', bytes.subarray(0, Math.floor(bytes.length / 2)), /damaged or truncated/],
      [
        'truncated content',
        zlib.gzipSync(text.subarray(0, Math.floor(text.length / 2))),
        /truncated|trailer/,
      ],
      ['another version', zlib.gzipSync(otherVersion), /version 99/],
      ['a foreign gzip file', zlib.gzipSync(Buffer.from('{"hello":"world"}\n{"t":"end"}\n')), /foreign/],
      ['not gzip at all', Buffer.from('just some text'), /not gzip/],
    ];
    for (const [label, body, message] of cases) {
      const err = await client.restore(body).then(
        () => undefined,
        (e: unknown) => e as { status: number; code: string; message: string },
      );
      expect(err, label).toMatchObject({ status: 400, code: 'BACKUP_INVALID' });
      expect(err?.message, label).toMatch(message);
    }
    expect(await state()).toEqual(before);
  });
});

describe('queue shards', () => {
  it('the snapshot of a deployment with 3 shards holds every shard, one MULTI per shard tag', async () => {
    const redis = testClient();
    const keys = createKeys(shardedPrefix, 3);
    await redis.hset(keys.session, { id: 'sharded-session', createdAtMs: '1', createdBy: 'test' });
    await redis.set(keys.sequence, '12');
    await redis.hset(keys.storage.data, 'kept', JSON.stringify({ v: 1 }));
    // Executions 1..12, each in shard n mod 3 as a deployment with 3 shards queues them; even ones delayed.
    const queues = keys.queues.all.map(
      (shard) => new Queue(QUEUE_NAME, { connection: redis.duplicate(), prefix: shard.bullPrefix }),
    );
    const now = Date.now();
    for (let n = 1; n <= 12; n++) {
      const data = {
        procedure: 'echo',
        params: { n },
        id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
        name: '',
      };
      await queues[n % 3]!.add('echo', data, {
        jobId: jobIdOf(n),
        timestamp: now,
        attempts: 1,
        ...(n % 2 === 0 ? { delay: DELAY_MS } : {}),
      });
    }
    await Promise.all(queues.map((q) => q.close()));

    const snapshot = new BackupSnapshot(redis, keys, 7);
    const chunks: Buffer[] = [];
    try {
      await snapshot.take();
      // Each shard's lists are copied under its own tag (a MULTI keeps to one slot).
      for (const shard of keys.queues.all) {
        expect(await redis.exists(`${shard.tag}:backup:snap:7:delayed`)).toBe(1);
      }
      expect(await snapshot.size()).toBe(1 + 12);
      const encoder = new BackupEncoder(key);
      const header: BackupHeader = {
        format: BACKUP_FORMAT,
        version: BACKUP_VERSION,
        createdAt: new Date().toISOString(),
        prefix: shardedPrefix,
        node: 'test',
        number: 7,
        trigger: 'manual',
        ...encoder.signature(),
      };
      for await (const chunk of snapshot.lines(header, encoder, new AbortController().signal)) {
        chunks.push(chunk);
      }
    } finally {
      await snapshot.discard();
    }
    expect(await redis.keys(`{${shardedPrefix}*:backup:snap:*`)).toEqual([]);
    const bytes = zlib.gzipSync(Buffer.concat(chunks));
    const parsed = await parseBackup(bytes, { key });
    const byNumber = new Map(parsed.executions.map((x) => [x.n, x]));
    expect([...byNumber.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const [n, x] of byNumber) {
      expect(x).toMatchObject({ state: n % 2 === 0 ? 'delayed' : 'waiting', data: { params: { n } } });
    }

    // Restored into a deployment with one shard: every execution under its number, and it runs.
    const { node: target, client: targetClient } = await startInProcessNode(fromShardsPrefix, {
      ...env,
      SPROCD_QUEUE_SHARDS: '1',
    });
    extra.push(target);
    expect(await targetClient.restore(bytes)).toMatchObject({ executions: 12, skipped: 0 });
    const one = createKeys(fromShardsPrefix, 1).queues.all[0]!;
    for (let n = 1; n <= 12; n++) {
      expect(await redis.exists(bullQueueKeys(one).job(jobIdOf(n)))).toBe(1);
      if (n % 2 === 0) {
        expect(await targetClient.get(n)).toMatchObject({ state: 'delayed', params: { n } });
      } else {
        await expect
          .poll(async () => (await targetClient.get(n)).state, { timeout: 10_000 })
          .toBe('completed');
      }
    }
  });
});

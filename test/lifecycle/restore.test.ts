/**
 * Restore against the real test Redis: a forged file refused, an unsigned one only with the
 * override (API and CLI), one restore at a time refused before its body is read, a gzip bomb
 * refused early, 250,000 storage entries backed up and restored (with the locks held at the swap
 * broken), and every failure logged with its cause (child nodes, their JSON log lines).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import { BackupEncoder, type ExecutionLine } from '../../src/lifecycle/backup-format.js';
import type { BackupRecord } from '../../src/lifecycle/backup-history.js';
import type { SprocdNode } from '../../src/node.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { createKeys, jobIdOf } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import { spawnNode, startInProcessNode, type ChildNode } from '../support/node.js';
import { runSprocd } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const KEY = 'restore-test-backup-key-0123456789abcdef';
const prefixes = {
  signed: uniquePrefix('rs'),
  unsigned: uniquePrefix('rsu'),
  big: uniquePrefix('rsb'),
  many: uniquePrefix('rsm'),
  manyTarget: uniquePrefix('rsmt'),
  sharded: uniquePrefix('rss'),
  shardedOne: uniquePrefix('rss1'),
};
const logPrefixes = { signed: uniquePrefix('rsl'), keyless: uniquePrefix('rslk') };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-restore-test-'));
const env = { SPROCD_BACKUP_DIR: dir, SPROCD_BACKUP_KEY: KEY };

let node: SprocdNode;
let client: SprocdClient;
let keyless: { node: SprocdNode; client: SprocdClient };
const children: ChildNode[] = [];
const nodes: SprocdNode[] = [];

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefixes.signed, env));
  keyless = await startInProcessNode(prefixes.unsigned, { SPROCD_BACKUP_DIR: dir });
  nodes.push(node, keyless.node);
});

afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await Promise.all(nodes.map((n) => n.stop()));
  const redis = testClient();
  for (const prefix of [...Object.values(prefixes), ...Object.values(logPrefixes)]) {
    await deletePrefix(redis, prefix);
  }
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function backupOf(c: SprocdClient): Promise<Buffer> {
  const record = (await c.backup()) as unknown as BackupRecord;
  expect(record.status).toBe(0);
  return fs.readFileSync(record.file as string);
}

/**
 * The file as someone without the key would forge it: `change` applied to its lines, then every
 * seal recomputed without a key (good sha256 seals, no HMAC), the header still claiming the key.
 */
function forge(bytes: Buffer, change: (line: Record<string, unknown>) => void): Buffer {
  const lines = zlib.gunzipSync(bytes).toString().trimEnd().split('\n');
  const encoder = new BackupEncoder(undefined);
  const out = [encoder.line(JSON.parse(lines[0] as string))];
  for (const text of lines.slice(1)) {
    const line = JSON.parse(text) as Record<string, unknown>;
    if (line.t === 'check' || line.t === 'end') {
      continue;
    }
    change(line);
    if (line.t === 'entry') {
      out.push(encoder.entry(line.k as string, JSON.stringify(line.v)));
    } else if (line.t === 'execution') {
      out.push(encoder.execution(line as unknown as ExecutionLine));
    } else {
      out.push(encoder.line(line));
    }
  }
  out.push(encoder.trailer());
  return zlib.gzipSync(Buffer.concat(out));
}

/** What a restore may change, to check that a refused one changed nothing. */
async function state(n: SprocdNode) {
  const redis = testClient();
  const { keys, executions } = n.internals();
  return {
    storage: await redis.hgetall(storageLayout(keys).data),
    session: await redis.hgetall(keys.session),
    sequence: await redis.get(keys.sequence),
    jobs: await Promise.all(executions.queues.map((q) => q.getJobCounts())),
  };
}

type Refusal = { status: number; code: string; message: string; details?: Record<string, unknown> };

function refusal(work: Promise<unknown>): Promise<Refusal | undefined> {
  return work.then(
    () => undefined,
    (e: unknown) => e as Refusal,
  );
}

/** A raw POST /v1/restore whose body the test writes itself; resolves the answer. */
function rawRestore(url: string, length: number) {
  const target = new URL('/v1/restore', url);
  const req = http.request(target, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { req, answer };
}

describe('a restore trusts nothing', () => {
  it('refuses a forged backup (valid unkeyed checksums, no HMAC) with 400 and changes nothing', async () => {
    await node.session.storage.use('role', (d) => {
      d.admin = false;
    });
    const bytes = await backupOf(client);
    const forged = forge(bytes, (line) => {
      if (line.t === 'entry' && line.k === 'role') {
        line.v = { admin: true };
      }
    });
    const before = await state(node);
    for (const allowUnsigned of [false, true]) {
      const err = await refusal(client.restore(forged, { allowUnsigned }));
      expect(err).toMatchObject({ status: 400, code: 'BACKUP_INVALID' });
      expect(err?.message).toMatch(/signature does not match at line \d+: the file was altered or forged/);
    }
    // Signed with another key: refused unless the override is given.
    const other = await startInProcessNode(prefixes.signed, { ...env, SPROCD_BACKUP_KEY: `${KEY}-other` });
    nodes.push(other.node);
    const err = await refusal(other.client.restore(bytes));
    expect(err).toMatchObject({
      status: 400,
      code: 'BACKUP_INVALID',
      details: { override: 'allowUnsigned' },
    });
    expect(err?.message).toMatch(/signed with another key/);
    expect(await state(node)).toEqual(before);
    expect(await node.session.storage.get('role')).toEqual({ admin: false });
  });

  it('refuses an unsigned backup without the override and restores it with it (API and CLI)', async () => {
    await keyless.node.session.storage.use('from-keyless', (d) => {
      d.v = 1;
    });
    const unsigned = await backupOf(keyless.client);
    const before = await state(node);
    const err = await refusal(client.restore(unsigned));
    expect(err).toMatchObject({
      status: 400,
      code: 'BACKUP_INVALID',
      details: { override: 'allowUnsigned' },
    });
    expect(err?.message).toMatch(/it is not signed .*allowUnsigned=true \(sprocd restore --allow-unsigned\)/);
    expect(await state(node)).toEqual(before);
    // The keyless node refuses its own unsigned files too.
    expect(await refusal(keyless.client.restore(unsigned))).toMatchObject({ status: 400 });

    const summary = await client.restore(unsigned, { allowUnsigned: true });
    expect(summary).toMatchObject({ signature: 'unsigned', from: { prefix: prefixes.unsigned } });
    expect(await node.session.storage.get('from-keyless')).toEqual({ v: 1 });

    const file = path.join(dir, 'unsigned.sprocd.gz');
    fs.writeFileSync(file, unsigned);
    const refused = await runSprocd(['restore', file, '--yes'], { env: { SPROCD_URL: node.url } });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/it is not signed.*--allow-unsigned.*\[BACKUP_INVALID\]/);
    const allowed = await runSprocd(['restore', file, '--yes', '--allow-unsigned'], {
      env: { SPROCD_URL: node.url },
    });
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ signature: 'unsigned' });
    // Signed files need no override.
    expect(await client.restore(await backupOf(client))).toMatchObject({ signature: 'verified' });
  });

  it('refuses a large unsigned upload at its header, and the answer reaches the client', async () => {
    const encoder = new BackupEncoder(undefined);
    const header = JSON.parse(
      zlib
        .gunzipSync(await backupOf(keyless.client))
        .toString()
        .split('\n')[0] as string,
    );
    const parts = [encoder.line(header)];
    for (let i = 0; i < 1000; i++) {
      parts.push(encoder.entry(`noise-${i}`, JSON.stringify(randomBytes(6000).toString('base64'))));
    }
    parts.push(encoder.trailer());
    const large = zlib.gzipSync(Buffer.concat(parts)); // about 8 MB: refused long before its end
    expect(large.length).toBeGreaterThan(4 * 1024 * 1024);
    for (let i = 0; i < 3; i++) {
      const err = await refusal(client.restore(large));
      expect(err).toMatchObject({ status: 400, code: 'BACKUP_INVALID' });
      expect(err?.message).toMatch(/it is not signed/);
    }
    expect(await client.backups()).toMatchObject({ items: expect.any(Array) });
  });

  it('refuses a second restore with 409 before reading its body', async () => {
    const bytes = await backupOf(client);
    const first = rawRestore(node.url, bytes.length);
    // Headers only: a body of 100 MB is announced and never sent; the answer comes anyway.
    const second = rawRestore(node.url, 100 * 1024 * 1024);
    try {
      first.req.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
      await expect
        .poll(async () => ((await client.backups()) as { running?: { trigger: string } }).running?.trigger, {
          timeout: 15_000,
        })
        .toBe('restore');
      second.req.flushHeaders();
      const answer = await second.answer;
      expect(answer.status).toBe(409);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'BACKUP_RUNNING' } });
      // A backup meanwhile is refused the same way.
      expect(await refusal(client.backup())).toMatchObject({ status: 409, code: 'BACKUP_RUNNING' });
      first.req.end(bytes.subarray(Math.floor(bytes.length / 2)));
      const done = await first.answer;
      expect(done.status).toBe(200);
      expect(JSON.parse(done.body)).toMatchObject({ signature: 'verified' });
    } finally {
      first.req.destroy();
      second.req.destroy();
    }
  });

  it('refuses a gzip bomb early', async () => {
    const header = zlib
      .gunzipSync(await backupOf(client))
      .toString()
      .split('\n')[0] as string;
    const gzip = zlib.createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    gzip.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => gzip.on('end', resolve));
    gzip.write(`${header}\n`);
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < 16; i++) {
      gzip.write(zeros); // 256 MiB without a newline
    }
    gzip.end();
    await ended;
    const bomb = Buffer.concat(chunks);
    const before = await state(node);
    const err = await refusal(client.restore(bomb));
    expect(err).toMatchObject({ status: 400, code: 'BACKUP_INVALID' });
    expect(err?.message).toMatch(/line 2 is longer than \d+ bytes/);
    expect(await state(node)).toEqual(before);
  });
});

describe('many executions', () => {
  it('restores more than a batch (500) of them: all queued and indexed; restored again, all skipped', async () => {
    const source = await startInProcessNode(prefixes.many, env);
    const target = await startInProcessNode(prefixes.manyTarget, env);
    nodes.push(source.node, target.node);
    const COUNT = 1234;
    // Delayed for an hour: they stay in the file and in the restored queue (no worker takes them).
    for (let first = 0; first < COUNT; first += 1000) {
      await source.node.internals().executions.executeBatch(
        Array.from({ length: Math.min(1000, COUNT - first) }, (_, i) => ({
          procedure: 'echo',
          params: { i: first + i },
          delayMs: 3_600_000,
        })),
      );
    }
    const record = (await source.client.backup()) as unknown as BackupRecord;
    expect(record).toMatchObject({ status: 0, executions: COUNT });
    const bytes = fs.readFileSync(record.file as string);

    expect(await target.client.restore(bytes)).toMatchObject({ executions: COUNT, skipped: 0 });
    const executions = target.node.internals().executions;
    expect((await executions.counts()).delayed).toBe(COUNT);
    // Every batch was indexed, the last one included (its indexing is awaited after the loop).
    let listed = 0;
    let cursor: string | undefined;
    do {
      const page = await executions.list({ procedure: 'echo', limit: 500, cursor });
      listed += page.items.length;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(listed).toBe(COUNT);
    expect(await target.client.restore(bytes)).toMatchObject({ executions: 0, skipped: COUNT });
  });
});

describe('queue shards', () => {
  it('backs up every shard (S = 3) and restores each execution to shard n mod S, into S = 3 and S = 1', async () => {
    const sharded = { ...env, SPROCD_QUEUE_SHARDS: '3' };
    const source = await startInProcessNode(prefixes.sharded, sharded);
    nodes.push(source.node);
    const { executions } = source.node.internals();
    // Paused: the waiting ones stay waiting until the backup has them.
    await Promise.all(executions.queues.map((q) => q.pause()));
    const batch = async (requests: object[]) =>
      (await executions.executeBatch(requests)).map((r) => r.execution);
    const waiting = await batch(
      Array.from({ length: 9 }, (_, i) => ({ procedure: 'echo', params: { w: i } })),
    );
    const delayed = await batch(
      Array.from({ length: 9 }, (_, i) => ({ procedure: 'echo', params: { d: i }, delayMs: 3_600_000 })),
    );
    for (const group of [waiting, delayed]) {
      expect(new Set(group.map((x) => x.number % 3)).size).toBe(3);
    }
    const record = (await source.client.backup()) as unknown as BackupRecord;
    expect(record).toMatchObject({ status: 0, executions: 18 });
    const bytes = fs.readFileSync(record.file as string);
    const redis = testClient();
    // Each shard's copies were made under its own tag, and are gone with the backup.
    expect(await redis.keys(`{${prefixes.sharded}:q*}:backup:snap:*`)).toEqual([]);

    // Wiped: the same prefix starts again empty.
    await source.node.stop();
    await deletePrefix(redis, prefixes.sharded);
    expect(await redis.exists(bullQueueKeys(createKeys(prefixes.sharded, 3).queues.all[1]!).delayed)).toBe(0);

    for (const [prefix, shards] of [
      [prefixes.sharded, 3],
      [prefixes.shardedOne, 1],
    ] as const) {
      const target = await startInProcessNode(prefix, { ...env, SPROCD_QUEUE_SHARDS: String(shards) });
      nodes.push(target.node);
      expect(await target.client.restore(bytes)).toMatchObject({ executions: 18, skipped: 0 });
      const keys = createKeys(prefix, shards);
      for (const x of [...waiting, ...delayed]) {
        const job = jobIdOf(x.number);
        // In its shard, and in no other.
        for (const shard of keys.queues.all) {
          const wanted = shard.shard === x.number % shards ? 1 : 0;
          expect(await redis.exists(bullQueueKeys(shard).job(job)), `${prefix} ${job}`).toBe(wanted);
        }
      }
      for (const x of delayed) {
        expect(await target.client.get(x.number)).toMatchObject({
          number: x.number,
          state: 'delayed',
          params: { d: delayed.indexOf(x) },
        });
      }
      // The waiting ones run, each under its number.
      for (const x of waiting) {
        await expect
          .poll(async () => (await target.client.get(x.number)).state, { timeout: 10_000 })
          .toBe('completed');
        expect(await target.client.get(x.number)).toMatchObject({ params: { w: waiting.indexOf(x) } });
      }
    }
  });
});

describe('a large storage', () => {
  it('of 250,000 entries backs up and restores; the locks held at the swap are broken', async () => {
    const big = await startInProcessNode(prefixes.big, env);
    nodes.push(big.node);
    const redis = testClient();
    const data = storageLayout(big.node.internals().keys).data;
    const ENTRIES = 250_000;
    for (let i = 0; i < ENTRIES; i += 5000) {
      const fields: string[] = [];
      for (let j = i; j < i + 5000; j++) {
        fields.push(`entry-${j}`, JSON.stringify({ j, text: `value of entry ${j}` }));
      }
      await redis.hset(data, ...fields);
    }
    const record = (await big.client.backup()) as unknown as BackupRecord;
    expect(record).toMatchObject({ status: 0, entries: ENTRIES });

    // Changed since the backup: one entry gone, one added, one held by a use() across the restore.
    await big.node.session.storage.remove('entry-1');
    await big.node.session.storage.use('added-later', (d) => {
      d.v = 1;
    });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const use = big.node.session.storage.use('entry-7', async (d) => {
      entered();
      await held;
      d.overwritten = true;
    });
    await inside;

    const summary = await big.client.restore(fs.readFileSync(record.file as string));
    release();
    expect(summary).toMatchObject({ entries: ENTRIES, signature: 'verified' });
    // The use read entry-7 before the swap: its commit is refused, the restored value stays.
    await expect(use).rejects.toMatchObject({ code: 'LOCK_LOST' });
    expect(await redis.hlen(data)).toBe(ENTRIES);
    expect(await big.node.session.storage.get('entry-7')).toEqual({ j: 7, text: 'value of entry 7' });
    expect(await big.node.session.storage.get('entry-1')).toEqual({ j: 1, text: 'value of entry 1' });
    expect(await big.node.session.storage.get('added-later')).toBeUndefined();
    expect(JSON.parse((await redis.hget(data, `entry-${ENTRIES - 1}`)) as string)).toEqual({
      j: ENTRIES - 1,
      text: `value of entry ${ENTRIES - 1}`,
    });
  }, 180_000);
});

describe('every failure is logged with its cause', () => {
  let signedChild: ChildNode;
  let keylessChild: ChildNode;

  beforeAll(async () => {
    const blocker = path.join(dir, 'a-file-not-a-folder');
    fs.writeFileSync(blocker, '');
    [signedChild, keylessChild] = await Promise.all([
      spawnNode(logPrefixes.signed, { ...env, SPROCD_RESTORE_MAX_BYTES: '200000' }),
      // Its backups folder cannot be made: a restore fails on the node's side (500).
      spawnNode(logPrefixes.keyless, { SPROCD_BACKUP_DIR: path.join(blocker, 'backups') }),
    ]);
    children.push(signedChild, keylessChild);
  });

  const logged = (child: ChildNode, msg: string, fields: Record<string, unknown> = {}) =>
    child.waitForLine(
      (l) =>
        l.msg === msg &&
        Object.entries(fields).every(([k, v]) => (v instanceof RegExp ? v.test(String(l[k])) : l[k] === v)),
      10_000,
    );

  it('says at start that backups are unsigned without SPROCD_BACKUP_KEY', async () => {
    expect(
      await keylessChild.waitForLine((l) => /SPROCD_BACKUP_KEY is not set/.test(String(l.msg))),
    ).toMatchObject({
      level: 40,
    });
    expect(signedChild.lines.some((l) => /SPROCD_BACKUP_KEY is not set/.test(String(l.msg)))).toBe(false);
  });

  it('a refused file, a busy deployment, a file too large, and a failure of the node itself', async () => {
    const bytes = await backupOf(signedChild.client);
    const forged = forge(bytes, () => undefined);
    expect(await refusal(signedChild.client.restore(forged))).toMatchObject({ status: 400 });
    expect(
      await logged(signedChild, 'restore refused: the file is not restorable', {
        reason: /signature does not match/,
      }),
    ).toMatchObject({ level: 40, part: 'restore', allowUnsigned: false, bytes: forged.length });

    const unsigned = await refusal(signedChild.client.restore(await backupOf(keyless.client)));
    expect(unsigned).toMatchObject({ status: 400 });
    await logged(signedChild, 'restore refused: the file is not restorable', { reason: /it is not signed/ });

    const first = rawRestore(signedChild.url, bytes.length);
    const second = rawRestore(signedChild.url, bytes.length);
    try {
      first.req.write(bytes.subarray(0, 10));
      await logged(signedChild, 'restore started');
      second.req.flushHeaders();
      expect((await second.answer).status).toBe(409);
      await logged(signedChild, 'restore refused: a backup or restore is running');
      first.req.end(bytes.subarray(10));
      expect((await first.answer).status).toBe(200);
      await logged(signedChild, 'restore done', { signature: 'verified' });
    } finally {
      first.req.destroy();
      second.req.destroy();
    }

    expect(await refusal(signedChild.client.restore(Buffer.alloc(300_000)))).toMatchObject({ status: 413 });
    await logged(signedChild, 'restore refused', { code: 'PAYLOAD_TOO_LARGE' });

    const failed = await refusal(keylessChild.client.restore(bytes, { allowUnsigned: true }));
    expect(failed).toMatchObject({ status: 500, code: 'INTERNAL' });
    const line = await logged(keylessChild, 'restore failed');
    expect(line).toMatchObject({ level: 50, part: 'restore' });
    expect(JSON.stringify(line.err)).toMatch(/ENOTDIR/);
  });
});

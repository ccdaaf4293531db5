/**
 * The audit trail of a real node with a callers file: every execute, abort, retry, backup, restore and
 * storage edit names its caller, refused requests leave no entry, GET /v1/audit pages and filters and
 * needs the admin scope, `sprocd audit` prints it, and the trail stays bounded (SPROCD_AUDIT_MAX).
 * Backup files and their folder are the owner's only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenSha256 } from '../../src/auth/tokens.js';
import { SprocdClient } from '../../src/client.js';
import { createKeys } from '../../src/redis/keys.js';
import type { SprocdNode } from '../../src/node.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { runSprocd } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('audit-api');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-audit-'));
const AUDIT_MAX = 40;
const tokens = {
  ci: 'ci-token-0123456789abcdef',
  ops: 'ops-token-0123456789abcdef',
  boss: 'boss-token-0123456789abc',
};
const callers = [
  { name: 'ci', scopes: ['read', 'execute'] },
  { name: 'ops', scopes: ['read', 'control'] },
  { name: 'boss', scopes: ['read', 'admin', 'storage:write'] },
];

let node: SprocdNode;
let url: string;
const client = (name: keyof typeof tokens) =>
  new SprocdClient({ url, token: tokens[name], fetch: checkedFetch(url) });

beforeAll(async () => {
  const file = path.join(dir, 'callers.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      callers: callers.map((c) => ({
        ...c,
        tokenSha256: tokenSha256(tokens[c.name as keyof typeof tokens]),
      })),
    }),
  );
  ({ node, url } = await startInProcessNode(prefix, {
    SPROCD_CALLERS_FILE: file,
    SPROCD_BACKUP_DIR: path.join(dir, 'backups'),
    SPROCD_BACKUP_KEY: 'audit-test-backup-key-0123456789abcdef',
    SPROCD_AUDIT_MAX: String(AUDIT_MAX),
  }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Entry = {
  caller: string;
  action: string;
  status: number;
  node: string;
  details?: Record<string, unknown>;
};

describe('the audit trail of a node', () => {
  it('names the caller of every execute, abort, retry, backup, restore and storage edit', async () => {
    const ci = client('ci');
    const ops = client('ops');
    const boss = client('boss');

    const echo = await ci.execute('echo', { hi: 1 });
    const sleeper = await ci.execute('sleep', { ms: 30_000 }, { name: 'long-one' });
    await waitForState(ci, sleeper.number, 'active');
    await ops.abort(sleeper.number);
    await waitForState(ci, sleeper.number, 'aborted');
    const retry = await ops.request<{ number: number }>('POST', `/v1/executions/${sleeper.number}/retry`);
    await ops.abort(retry.number);
    const backup = await boss.backup();
    expect(backup.status).toBe(0);
    // The backup folder and its files are the owner's only.
    expect(fs.statSync(path.join(dir, 'backups')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(backup.file!).mode & 0o777).toBe(0o600);
    const restored = await boss.restore(fs.readFileSync(backup.file!));
    await boss.writeStorage('cart', { items: 2 });

    // Refused requests change nothing and leave no entry.
    await expect(ci.abort(echo.number)).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await expect(ops.backup()).rejects.toMatchObject({ status: 403, details: { scope: 'admin' } });
    await expect(ci.writeStorage('cart', { items: 0 })).rejects.toMatchObject({ status: 403 });

    const page = await boss.request<{ items: Entry[] }>('GET', '/v1/audit?limit=20');
    const summary = page.items.map((e) => [e.caller, e.action, e.status]);
    expect(summary).toEqual([
      ['boss', 'storage.write', 200],
      ['boss', 'restore', 200],
      ['boss', 'backup', 200],
      ['ops', 'abort', 202],
      ['ops', 'retry', 202],
      ['ops', 'abort', 202],
      ['ci', 'execute', 202],
      ['ci', 'execute', 202],
    ]);
    const [edit, restore, backedUp, , retried, aborted, second, first] = page.items as Entry[];
    expect(first!.details).toEqual({ procedure: 'echo', execution: echo.number });
    expect(second!.details).toEqual({ procedure: 'sleep', name: 'long-one', execution: sleeper.number });
    expect(aborted!.details).toEqual({ execution: sleeper.number, procedure: 'sleep' });
    expect(retried!.details).toEqual({ execution: sleeper.number, procedure: 'sleep', retry: retry.number });
    expect(backedUp!.details).toEqual({ backup: backup.number, outcome: 'done', backupStatus: 0 });
    expect(restore!.details).toMatchObject({ signature: 'verified', session: restored.session });
    expect(edit!.details).toEqual({ key: 'cart', size: 11, expected: false });
    expect(page.items.every((e) => e.node === node.name)).toBe(true);
  });

  it('pages and filters over HTTP, for the admin scope only', async () => {
    const boss = client('boss');
    const first = await boss.request<{ items: Entry[]; nextCursor?: string }>('GET', '/v1/audit?limit=3');
    expect(first.items).toHaveLength(3);
    expect(first.nextCursor).toBeDefined();
    const next = await boss.request<{ items: Entry[] }>(
      'GET',
      `/v1/audit?limit=3&before=${first.nextCursor}`,
    );
    expect(next.items.map((e) => e.action)).toEqual(['abort', 'retry', 'abort']);
    const ops = await boss.request<{ items: Entry[] }>('GET', '/v1/audit?caller=ops&action=abort');
    expect(ops.items).toHaveLength(2);
    await expect(client('ops').request('GET', '/v1/audit')).rejects.toMatchObject({
      status: 403,
      details: { scope: 'admin' },
    });
    await expect(boss.request('GET', '/v1/audit?action=nap')).rejects.toMatchObject({ status: 400 });
  });

  it('sprocd audit prints the trail', async () => {
    const { code, stdout } = await runSprocd(['audit', '--limit', '2', '--url', url, '--token', tokens.boss]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+CALLER\s+ACTION\s+STATUS\s+NODE\s+DETAILS$/);
    expect(lines[1]).toMatch(/boss\s+storage\.write\s+200\s+\S+\s+key=cart size=11 expected=false$/);
    expect(lines[2]).toMatch(/boss\s+restore\s+200/);
    expect(lines[3]).toMatch(/^\(older entries: sprocd audit --before \d+-\d+\)$/);
    const json = await runSprocd(['audit', '--json', '--caller', 'ci', '--url', url, '--token', tokens.boss]);
    expect((JSON.parse(json.stdout) as { items: Entry[] }).items.map((e) => e.action)).toEqual([
      'execute',
      'execute',
    ]);
  });

  it('stays bounded: SPROCD_AUDIT_MAX entries at most', async () => {
    const ci = client('ci');
    for (let i = 0; i < AUDIT_MAX + 10; i++) {
      await ci.execute('noop', null);
    }
    expect(await testClient().xlen(createKeys(prefix).audit)).toBe(AUDIT_MAX);
    const page = await client('boss').request<{ items: Entry[] }>('GET', '/v1/audit?limit=1000');
    expect(page.items).toHaveLength(AUDIT_MAX);
    expect(page.items.every((e) => e.caller === 'ci' && e.action === 'execute')).toBe(true);
  });
});

/** GET /v1/schedules and GET /v1/backups/:number/file on a real node. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sched');
const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-sched-backups-'));
let node: SprocdNode;
let client: SprocdClient;
let url: string;

interface Schedule {
  id: string;
  kind: string;
  procedure?: string;
  cron: string;
  tz?: string;
  next: string[];
  lastRun?: { at: string; execution?: number; backup?: number; outcome?: string };
  missed: number;
}
const schedules = async () => (await client.request<{ items: Schedule[] }>('GET', '/v1/schedules')).items;

beforeAll(async () => {
  ({ node, client, url } = await startInProcessNode(prefix, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'schedule-jobs'),
    SPROCD_BACKUP_CRON: '0 3 * * *',
    SPROCD_BACKUP_TZ: 'Europe/Paris',
    SPROCD_BACKUP_DIR: backupDir,
    SPROCD_NODE_NAME: 'sched-node',
  }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/schedules', () => {
  it('lists the backup schedule and each scheduled procedure with their next ticks and last run', async () => {
    const items = await vi.waitFor(
      async () => {
        const list = await schedules();
        expect(list.find((s) => s.procedure === 'ticker')?.lastRun?.execution).toBeGreaterThan(0);
        return list;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(items.map((s) => s.id)).toEqual(['backup', 'procedure:ticker']);
    const backup = items[0] as Schedule;
    expect(backup).toMatchObject({ kind: 'backup', cron: '0 3 * * *', tz: 'Europe/Paris', missed: 0 });
    expect(backup.next).toHaveLength(5);
    expect(backup.next.every((t) => new Date(t).getTime() > Date.now())).toBe(true);
    expect(new Date(backup.next[0] as string).toLocaleString('en-GB', { timeZone: 'Europe/Paris' })).toMatch(
      /03:00:00/,
    );
    const ticker = items[1] as Schedule;
    expect(ticker).toMatchObject({ kind: 'procedure', procedure: 'ticker', cron: '* * * * * *' });
    const gaps = ticker.next.slice(1).map((t, i) => Date.parse(t) - Date.parse(ticker.next[i] as string));
    expect(gaps).toEqual([1000, 1000, 1000, 1000]);
    const procedures = await client.procedures();
    expect(procedures.find((p) => p.name === 'ticker')?.schedule).toMatchObject({ cron: '* * * * * *' });
    expect(procedures.find((p) => p.name === 'ticker')?.schedule?.next).toHaveLength(5);
    expect(procedures.find((p) => p.name === 'plain')?.schedule).toBeUndefined();
  });
});

describe('GET /v1/backups/:number/file', () => {
  it('downloads the file of a backup this node wrote; 404 for one the history does not have', async () => {
    const record = await client.backup();
    expect(record.status).toBe(0);
    const res = await fetch(`${url}/v1/backups/${record.number}/file`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="${path.basename(String(record.file))}"`,
    );
    expect(Buffer.from(await res.arrayBuffer())).toEqual(fs.readFileSync(String(record.file)));
    await expect(client.request('GET', '/v1/backups/999999/file')).rejects.toMatchObject({
      status: 404,
      code: 'BACKUP_NOT_FOUND',
    });
  });
});

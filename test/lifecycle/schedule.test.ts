/**
 * Schedules on the real test Redis: a one-second backup cron on 3 node processes restarted in a
 * loop (every tick fires exactly once), the missed-tick rule, the retry and stop policy, scheduled
 * procedures, and a bad procedure schedule that stops the start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { BackupRecord } from '../../src/lifecycle/backup-history.js';
import type { SprocdNode } from '../../src/node.js';
import { storageLayout } from '../../src/session/layout.js';
import { createKeys } from '../../src/redis/keys.js';
import { FIXTURES, spawnNode, startInProcessNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefixes: string[] = [];
const children: ChildNode[] = [];
const inProcess: SprocdNode[] = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-schedule-test-'));
const hooks = path.join(FIXTURES, 'schedule-hooks');

function prefix(): string {
  const p = uniquePrefix('sch');
  prefixes.push(p);
  return p;
}

async function startNode(p: string, env: Record<string, string>) {
  const started = await startInProcessNode(p, {
    SPROCD_BACKUP_DIR: dir,
    SPROCD_LIFECYCLE_DIR: hooks,
    ...env,
  });
  inProcess.push(started.node);
  return started;
}

async function entry<T>(p: string, key: string): Promise<T | undefined> {
  const json = await testClient().hget(storageLayout(createKeys(p)).data, key);
  return json === null ? undefined : (JSON.parse(json) as T);
}

async function history(p: string): Promise<BackupRecord[]> {
  const lines = await testClient().lrange(createKeys(p).backup.history, 0, -1);
  return lines.map((l) => JSON.parse(l) as BackupRecord).reverse();
}

/** Waits until the backup history of `p` passes `check` (an assertion) and returns it. */
function historyWhen(p: string, check: (records: BackupRecord[]) => void): Promise<BackupRecord[]> {
  return vi.waitFor(
    async () => {
      const records = await history(p);
      check(records);
      return records;
    },
    { timeout: 15_000, interval: 25 },
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** A cron that fires once a minute, at the second `ms` from now. */
function oneShotCron(ms: number): string {
  return `${new Date(Date.now() + ms).getSeconds()} * * * * *`;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
  await Promise.all(inProcess.splice(0).map((n) => n.stop()));
});

afterAll(async () => {
  const redis = testClient();
  for (const p of prefixes) {
    await deletePrefix(redis, p);
  }
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Tick {
  scheduledAt: string | null;
  trigger: string;
  attempt: number | null;
  node: string;
  at: number;
}

describe('the backup schedule', () => {
  it('fires each tick exactly once with 3 node processes restarted in a loop for 20 s', async () => {
    const p = prefix();
    const env = {
      SPROCD_BACKUP_CRON: '* * * * * *',
      SPROCD_LIFECYCLE_DIR: hooks,
      SPROCD_BACKUP_DIR: dir,
      SPROCD_BACKUP_RETRIES: '0',
    };
    const start = async () => {
      const child = await spawnNode(p, env);
      children.push(child);
      return child;
    };
    // Three nodes started at the same moment, each upserting the schedule.
    const nodes = await Promise.all([start(), start(), start()]);
    const loopStart = Date.now();
    let restarts = 0;
    // At least 20 s and five restarts: a loaded machine starts nodes slower, and fewer restarts would
    // test less churn than this test promises.
    while (Date.now() - loopStart < 20_000 || restarts < 5) {
      await sleep(2000);
      const slot = restarts % 3;
      const victim = nodes[slot] as ChildNode;
      const replacement = start();
      if (restarts % 2 === 0) {
        await victim.stop();
      } else {
        await victim.kill('SIGKILL');
      }
      nodes[slot] = await replacement;
      restarts++;
    }
    const loopEnd = Date.now();
    await Promise.all(nodes.map((n) => n.stop()));

    const ticks = (await entry<{ list: Tick[] }>(p, 'ticks'))?.list ?? [];
    const times = ticks.map((t) => Date.parse(t.scheduledAt ?? ''));
    // Exactly once: no tick time appears twice.
    expect(new Set(times).size).toBe(times.length);
    for (const t of ticks) {
      expect(t.trigger).toBe('schedule');
      expect(Date.parse(t.scheduledAt ?? '') % 1000).toBe(0);
    }
    // And none went missing while nodes came and went. BullMQ computes a scheduler's next tick from
    // the moment a node takes the current one, so a tick taken a second or more late (a loaded
    // machine) skips the ones it overran: a skip, never a double. Such gaps are explained by the
    // lateness of the tick before them; any other gap is a lost tick, and at most one is allowed
    // (a SIGKILL landing between a tick's claim and its hook).
    const fired = ticks
      .map((t) => ({
        scheduled: Date.parse(t.scheduledAt ?? ''),
        late: t.at - Date.parse(t.scheduledAt ?? ''),
      }))
      .filter((t) => t.scheduled >= loopStart + 1000 && t.scheduled <= loopEnd - 1000)
      .sort((a, b) => a.scheduled - b.scheduled);
    const expected = Math.floor((loopEnd - 1000) / 1000) - Math.ceil((loopStart + 1000) / 1000) + 1;
    let lost = 0;
    for (let i = 1; i < fired.length; i++) {
      const prev = fired[i - 1] as { scheduled: number; late: number };
      const skipped = ((fired[i] as { scheduled: number }).scheduled - prev.scheduled) / 1000 - 1;
      if (skipped > 0 && prev.late < 1000) {
        lost += skipped;
      }
    }
    const seen = JSON.stringify({
      restarts,
      ticks: times.length,
      inLoop: fired.length,
      expected,
      lost,
      fired,
    });
    expect(restarts, seen).toBeGreaterThanOrEqual(5);
    expect(fired.length, seen).toBeGreaterThan(expected / 2);
    expect(lost, seen).toBeLessThanOrEqual(1);
    // Each fired tick has its history record (status 9: the hook refused, to write no files),
    // except one cut short by a SIGKILL.
    const records = (await history(p)).filter((r) => r.trigger === 'schedule');
    expect(records.every((r) => r.status === 9 || r.status === 1406)).toBe(true);
    expect(new Set(records.map((r) => r.scheduledAt)).size).toBe(records.length);
    expect(records.length).toBeGreaterThanOrEqual(ticks.length - restarts);
  });

  it('records a tick missed while no node ran as failed (1402), then runs the backup at once', async () => {
    const p = prefix();
    const first = await startNode(p, { SPROCD_BACKUP_CRON: oneShotCron(4000) });
    const next = (await first.client.backups()).nextScheduledAt as string;
    const tickAt = Date.parse(next);
    expect(tickAt).toBeGreaterThan(Date.now());
    await first.client.request('GET', '/v1/backups'); // still answering before it stops
    await first.node.stop();
    await testClient().hset(storageLayout(createKeys(p)).data, 'scheduleControl', '{"mode":"allow"}');
    await sleep(tickAt + 3000 - Date.now());

    // A node without SPROCD_BACKUP_CRON leaves the schedule as it is and takes the late tick.
    const second = await startNode(p, {});
    const records = await historyWhen(p, (h) => expect(h.map((r) => r.trigger)).toContain('missed'));
    expect(records.map((r) => [r.trigger, r.status, r.scheduledAt])).toEqual([
      ['schedule', 1402, next],
      ['missed', 0, next],
    ]);
    expect(records[0]?.message).toMatch(/missed/);
    expect(records[1]?.file).toBeDefined();
    expect((await entry<{ list: number[] }>(p, 'shutdowns'))?.list).toEqual([1402, 0]);
    const ticks = (await entry<{ list: Tick[] }>(p, 'ticks'))?.list ?? [];
    expect(ticks.map((t) => [t.trigger, t.scheduledAt])).toEqual([['missed', next]]);
    const listing = await second.client.backups();
    expect(Date.parse(listing.nextScheduledAt as string)).toBe(tickAt + 60_000);

    // "off" removes the cluster's schedule.
    const third = await startNode(p, { SPROCD_BACKUP_CRON: 'off' });
    expect((await third.client.backups()).nextScheduledAt).toBeUndefined();
  });

  it('retries a failed scheduled backup and stops automatic backups after too many failures', async () => {
    const p = prefix();
    await testClient().hset(storageLayout(createKeys(p)).data, 'scheduleControl', '{"mode":"throw"}');
    const { client } = await startNode(p, {
      SPROCD_BACKUP_CRON: oneShotCron(2500),
      SPROCD_BACKUP_RETRIES: '2',
      SPROCD_BACKUP_RETRY_DELAY_MS: '300',
      SPROCD_BACKUP_MAX_FAILURES: '3',
    });
    const records = await historyWhen(p, (h) => expect(h.map((r) => r.status)).toContain(1401));
    expect(records.map((r) => [r.trigger, r.attempt, r.status])).toEqual([
      ['schedule', 0, 1411],
      ['retry', 1, 1411],
      ['retry', 2, 1401],
    ]);
    expect(records[2]).toMatchObject({ cause: 1411, outcome: 'failed' });
    expect(records[2]?.message).toMatch(/automatic backups stopped/);
    // The retries came after the delay, all for the same tick.
    expect(new Set(records.map((r) => r.scheduledAt)).size).toBe(1);
    expect(Date.parse(records[1]!.startedAt) - Date.parse(records[0]!.finishedAt)).toBeGreaterThanOrEqual(
      250,
    );
    expect((await entry<{ list: number[] }>(p, 'shutdowns'))?.list).toEqual([1411, 1411, 1401]);
    expect(await client.backups()).toMatchObject({ automaticStopped: true, consecutiveFailures: 3 });

    // A manual backup that succeeds resumes them.
    await testClient().hset(storageLayout(createKeys(p)).data, 'scheduleControl', '{"mode":"allow"}');
    expect(await client.backup()).toMatchObject({ status: 0 });
    expect(await client.backups()).toMatchObject({ automaticStopped: false, consecutiveFailures: 0 });

    // So does a node start.
    await testClient().set(createKeys(p).backup.stopped, '{}');
    expect(await client.backups()).toMatchObject({ automaticStopped: true });
    const restarted = await startNode(p, {});
    expect(await restarted.client.backups()).toMatchObject({ automaticStopped: false });
  });
  it('counts a tick whose node died mid-backup as interrupted (1406) and retries it', async () => {
    const p = prefix();
    await testClient().hset(storageLayout(createKeys(p)).data, 'scheduleControl', '{"mode":"allow"}');
    const { client } = await startNode(p, {
      SPROCD_BACKUP_CRON: oneShotCron(3000),
      SPROCD_BACKUP_RETRIES: '1',
      SPROCD_BACKUP_RETRY_DELAY_MS: '300',
    });
    const next = (await client.backups()).nextScheduledAt as string;
    // As if a node that has since died had claimed this tick and started its backup.
    await testClient().set(createKeys(p).backup.tick('backup', Date.parse(next)), 'ghost-node', 'PX', 60_000);
    const records = await historyWhen(p, (h) => expect(h.length).toBeGreaterThanOrEqual(2));
    expect(records.map((r) => [r.trigger, r.attempt, r.status, r.scheduledAt])).toEqual([
      ['schedule', 0, 1406, next],
      ['retry', 1, 0, next],
    ]);
    expect(records[0]?.message).toMatch(/died/);
    // The hook saw only the retry: the interrupted attempt had already called it on the dead node.
    expect((await entry<{ list: Tick[] }>(p, 'ticks'))?.list.map((t) => t.trigger)).toEqual(['retry']);
  });
});

describe('scheduled procedures', () => {
  it('queue one execution per tick, named schedule:<procedure>, with the schedule params', async () => {
    const p = prefix();
    const { client } = await startNode(p, { SPROCD_JOBS_DIR: path.join(FIXTURES, 'schedule-jobs') });
    const runs = await vi.waitFor(
      async () => {
        const items = await client.list({ name: 'schedule:ticker' });
        expect(items.filter((x) => x.state === 'completed').length).toBeGreaterThanOrEqual(3);
        return items;
      },
      { timeout: 10_000, interval: 25 },
    );
    for (const run of runs.filter((x) => x.state === 'completed')) {
      expect(run).toMatchObject({
        procedure: 'ticker',
        params: { from: 'schedule' },
        result: { from: 'schedule' },
      });
    }
    const created = runs.map((r) => Math.floor(Date.parse(r.createdAt) / 1000));
    expect(new Set(created).size).toBe(created.length);

    // A node started without that procedure removes its schedule ("the last node started sets it").
    const other = await startNode(p, { SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs') });
    const scheduler = await other.node
      .internals()
      .lifecycle?.schedules.queue.getJobScheduler('procedure@ticker');
    expect(scheduler).toBeUndefined();
  });

  it('a bad schedule stops the start with a non-zero exit and the file named', async () => {
    const child = await spawnNode(
      prefix(),
      { SPROCD_JOBS_DIR: path.join(FIXTURES, 'schedule-badjobs'), SPROCD_BACKUP_DIR: dir },
      { waitReady: false },
    );
    children.push(child);
    expect(await child.exited).not.toBe(0);
    expect(JSON.stringify(child.lines)).toMatch(
      /badcron\.ts: schedule: \\"every tuesday at noon\\" is not a cron expression/,
    );
  });
});

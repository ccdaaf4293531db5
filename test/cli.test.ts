/**
 * The sprocd command as a user runs it (real processes): exec with --wait, ps, get, abort, wake,
 * pause, resume and the process commands (processes, process, state, number),
 * one-line errors with non-zero exits; the embedded Redis of `sprocd start`; SIGHUP reload; log lines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { waitForState } from './support/executions.js';
import { ROOT, spawnNode, type ChildNode } from './support/node.js';
import { BIN, childEnv, runSprocd, startProcess, type CommandResult } from './support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from './support/redis.js';

const TOKEN = 'cli-test-token-0123456789';
const prefix = uniquePrefix('cli');
let node: ChildNode;
const extra: ChildNode[] = [];

/** Runs the sprocd command against the shared node. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  return runSprocd(args, { env: { SPROCD_URL: node.url, SPROCD_TOKEN: TOKEN, ...env } });
}

const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cli-backups-'));

beforeAll(async () => {
  node = await spawnNode(prefix, {
    SPROCD_TOKEN: TOKEN,
    SPROCD_BACKUP_DIR: backupDir,
    SPROCD_BACKUP_KEY: 'cli-test-backup-key-0123456789abcdef',
  });
});

afterEach(async () => {
  await Promise.all(extra.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  await node?.kill('SIGKILL');
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('sprocd exec, ps, get, abort, wake', () => {
  it('exec --wait prints the result', async () => {
    const res = await cli(['exec', 'validated', '{"a":1,"b":2}', '--wait']);
    expect(res).toMatchObject({ code: 0 });
    expect(JSON.parse(res.stdout)).toEqual({ sum: 3 });
  });

  it('exec prints the execution; ps lists it; get shows it', async () => {
    const res = await cli(['exec', 'echo', '[1,2]', '--name', 'cli-listed']);
    expect(res.code).toBe(0);
    const view = JSON.parse(res.stdout) as { number: number };
    expect(view.number).toBeGreaterThan(0);
    const ps = await cli(['ps', '--name', 'cli-listed']);
    expect(ps.code).toBe(0);
    expect(ps.stdout).toMatch(/NUMBER\s+STATE\s+PROCEDURE/);
    expect(ps.stdout).toMatch(new RegExp(`^${view.number}\\s+\\w+\\s+echo\\s+cli-listed`, 'm'));
    const get = await cli(['get', String(view.number)]);
    expect(JSON.parse(get.stdout)).toMatchObject({ number: view.number, procedure: 'echo' });
  });

  it('abort and wake', async () => {
    const delayed = JSON.parse((await cli(['exec', 'echo', '1', '--delay', '60000'])).stdout) as {
      number: number;
    };
    const abort = await cli(['abort', String(delayed.number)]);
    expect(abort).toMatchObject({ code: 0 });
    expect(abort.stdout).toMatch(/aborted/);
    const again = await cli(['abort', String(delayed.number)]);
    expect(again.code).toBe(4); // refused: 409
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/already finished.*EXECUTION_FINISHED/);

    const slow = JSON.parse((await cli(['exec', 'sleep', '{"ms":30000}'])).stdout) as { number: number };
    await waitForState(node.client, slow.number, 'active', 5000);
    expect((await cli(['wake', String(slow.number)])).code).toBe(0);
    expect((await waitForState(node.client, slow.number, 'completed', 5000)).state).toBe('completed');
  });

  it('exec --wait of a failing procedure exits non-zero with the error', async () => {
    const res = await cli(['exec', 'fail', 'null', '--attempts', '1', '--wait']);
    expect(res.code).toBe(5); // failed execution
    expect(res.stderr).toMatch(/failed: boom on attempt 1/);
  });

  it('says in one line what is wrong: bad params, bad JSON, wrong token, no server', async () => {
    const bad = await cli(['exec', 'validated', '{"a":"x"}']);
    expect(bad.code).toBe(4); // refused: 400
    expect(bad.stderr).toMatch(/^sprocd: .*VALIDATION_FAILED\]\n$/);
    const json = await cli(['exec', 'echo', '{nope']);
    expect(json.stderr).toMatch(/PARAMS_JSON is not JSON/);
    expect(json.code).toBe(2); // usage
    const token = await cli(['ps'], { SPROCD_TOKEN: 'wrong-token-wrong-token' });
    expect(token.code).toBe(4); // refused: 401
    expect(token.stderr).toMatch(/Wrong token.*UNAUTHORIZED/);
    const down = await cli(['ps'], { SPROCD_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(7); // unreachable
    expect(down.stderr).toMatch(/^sprocd: cannot reach sprocd at http:\/\/127\.0\.0\.1:1 .*\n$/);
  });
});

describe('sprocd pause, resume, processes, process, state, number', () => {
  it('pauses a sleeping execution (state 5 everywhere), resumes it; 404 missing, 409 finished', async () => {
    const slow = JSON.parse(
      (await cli(['exec', 'sleep', '{"ms":600000}', '--name', 'cli-paused'])).stdout,
    ) as {
      number: number;
    };
    const n = String(slow.number);
    await waitForState(node.client, slow.number, 'active', 5000);
    const pause = await cli(['pause', n]);
    expect(pause).toMatchObject({ code: 0 });
    expect(pause.stdout).toBe(`execution ${n}: paused (active)\n`);
    expect((await cli(['state', n])).stdout).toBe('5 paused\n');
    expect(JSON.parse((await cli(['state', n, '--json'])).stdout)).toEqual({ number: slow.number, code: 5 });
    expect(JSON.parse((await cli(['process', n])).stdout)).toMatchObject({ number: slow.number, code: 5 });
    expect((await cli(['number', 'cli-paused'])).stdout).toBe(`${n}\n`);
    expect((await cli(['number', 'cli-nobody'])).stdout).toBe('0\n');
    const ps = await cli(['processes']);
    expect(ps.stdout).toMatch(/NUMBER\s+CODE\s+STATE\s+PROCEDURE/);
    expect(ps.stdout).toMatch(new RegExp(`^${n}\\s+5\\s+paused\\s+sleep\\s+cli-paused`, 'm'));

    const resume = await cli(['resume', n]);
    expect(resume).toMatchObject({ code: 0 });
    expect(resume.stdout).toMatch(new RegExp(`^execution ${n}: resumed`));
    // RESUME PROCESS ends the ctx.delay it was paused in.
    await waitForState(node.client, slow.number, 'completed', 5000);
    expect((await cli(['state', n])).stdout).toBe('-100 does not exist (finished or missing)\n');

    const late = await cli(['resume', n]);
    expect(late.code).toBe(4); // refused: 409
    expect(late.stderr).toMatch(/already finished.*EXECUTION_FINISHED/);
    const missing = await cli(['pause', '987654321']);
    expect(missing.code).toBe(3); // not found: 404
    expect(missing.stderr).toMatch(/EXECUTION_NOT_FOUND/);
    expect((await cli(['pause', 'x'])).code).toBe(2); // usage
  });
});

describe('sprocd backup and restore', () => {
  it('backup ends with the file and its size; restore takes it back; a damaged file is refused', async () => {
    const backup = await cli(['backup']);
    expect(backup.code).toBe(0);
    expect(backup.stderr).toMatch(/backup running/);
    const match = /^backup (\d+) done in [\d.]+ s: (\S+) \((\d+(\.\d)? (bytes|KiB|MiB))\)\n$/.exec(
      backup.stdout,
    );
    expect(match).not.toBeNull();
    const file = match![2]!;
    expect(path.dirname(file)).toBe(backupDir);
    expect(fs.existsSync(file)).toBe(true);

    const restore = await cli(['restore', file, '--yes']);
    expect(restore.code).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ entries: expect.any(Number) });

    const damaged = path.join(backupDir, 'damaged.bin');
    const bytes = fs.readFileSync(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    fs.writeFileSync(damaged, bytes);
    const refused = await cli(['restore', damaged, '--yes']);
    expect(refused.code).toBe(4); // refused: 400 BACKUP_INVALID
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/BACKUP_INVALID/);
    const missing = await cli(['restore', path.join(backupDir, 'nope.backup')]);
    expect(missing.stderr).toMatch(/cannot read .*nope\.backup: ENOENT/);
    expect(missing.code).toBe(2); // usage: the file cannot be read
  });
});

describe('sprocd start', () => {
  it('logs one JSON line per execution start and end with number, procedure, duration and outcome', async () => {
    const view = await node.client.execute('echo', 'logged', { wait: 5000 });
    const end = await node.waitForLine((l) => l.execution === view.number && l.msg === 'execution ended');
    expect(end).toMatchObject({
      procedure: 'echo',
      outcome: 'completed',
      durationMs: expect.any(Number),
      level: 30,
    });
    expect(node.lines.some((l) => l.execution === view.number && l.msg === 'execution started')).toBe(true);
  });

  it('reloads jobs/ on SIGHUP: new executions use the new code, running ones finish on the old', async () => {
    const jobs = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-jobs-'));
    const events = path.join(jobs, '..', `${path.basename(jobs)}-events.jsonl`);
    const versioned = (v: number) =>
      `export default async (p: { ms?: number } | null, ctx: { delay(ms: number): Promise<void> }) => {\n  await ctx.delay(p?.ms ?? 0);\n  return ${v};\n};\n`;
    fs.writeFileSync(path.join(jobs, 'version.ts'), versioned(1));
    const n = await spawnNode(uniquePrefix('cli'), {
      SPROCD_JOBS_DIR: jobs,
      SPROCD_LIFECYCLE_DIR: path.join(ROOT, 'test', 'fixtures', 'lifecycle-events'),
      TEST_EVENTS_FILE: events,
    });
    extra.push(n);
    expect((await n.client.execute('version', null, { wait: 5000 })).result).toBe(1);
    const running = await n.client.execute('version', { ms: 1500 });
    await waitForState(n.client, running.number, 'active');
    fs.writeFileSync(path.join(jobs, 'version.ts'), versioned(2));
    fs.writeFileSync(path.join(jobs, 'added.ts'), 'export default async () => "new";\n');
    n.proc.kill('SIGHUP');
    await n.waitForLine((l) => l.msg === 'procedures and hooks reloaded');
    expect((await n.client.execute('version', null, { wait: 5000 })).result).toBe(2);
    const old = await waitForState(n.client, running.number, 'completed');
    expect(old.result).toBe(1);
    const reloaded = await vi.waitFor(
      () => {
        const text = fs.existsSync(events) ? fs.readFileSync(events, 'utf8') : '';
        expect(text).toContain('procedures.reloaded');
        return text;
      },
      { timeout: 15_000, interval: 25 },
    );
    expect(
      JSON.parse(reloaded.split('\n').find((l) => l.includes('procedures.reloaded')) ?? '{}'),
    ).toMatchObject({
      type: 'procedures.reloaded',
      procedures: ['added', 'version'],
    });
    expect((await n.client.execute('added', null, { wait: 5000 })).result).toBe('new');
    // A broken file on reload keeps the old code in use.
    fs.writeFileSync(path.join(jobs, 'added.ts'), 'export const nothing = 1;\n');
    n.proc.kill('SIGHUP');
    await n.waitForLine((l) => String(l.msg).startsWith('reload failed'));
    expect((await n.client.execute('added', null, { wait: 5000 })).result).toBe('new');
  });

  it('starts and stops an embedded redis-server when no REDIS_URL is set', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-embedded-'));
    fs.cpSync(path.join(ROOT, 'jobs'), path.join(dir, 'jobs'), { recursive: true });
    const n = await spawnNode(
      'ignored',
      {
        REDIS_URL: '',
        SPROCD_PREFIX: 'sprocd',
        SPROCD_JOBS_DIR: './jobs',
        SPROCD_LIFECYCLE_DIR: './lifecycle',
      },
      { cwd: dir },
    );
    extra.push(n);
    const hello = await n.client.execute('hello', { who: 'embedded' }, { wait: 10_000 });
    expect(hello.result).toMatchObject({ greeting: 'Hello, embedded!' });
    const started = n.lines.find((l) => l.msg === 'embedded redis-server started');
    expect(started?.dir).toBe(path.join(dir, '.sprocd', 'redis'));
    const pid = Number(fs.readFileSync(path.join(dir, '.sprocd', 'redis', 'redis.pid'), 'utf8'));
    expect(fs.existsSync(path.join(dir, '.sprocd', 'redis', 'appendonlydir'))).toBe(true);
    expect(await n.stop()).toBe(0);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    // The data survives: a new start in the same folder sees the session storage.
    const env = {
      REDIS_URL: '',
      SPROCD_PREFIX: 'sprocd',
      SPROCD_JOBS_DIR: './jobs',
      SPROCD_LIFECYCLE_DIR: './lifecycle',
    };
    const again = await spawnNode('ignored', env, { cwd: dir });
    extra.push(again);
    expect(await again.client.storage('greetings')).toEqual({ count: 1 });
    // A node killed with SIGKILL cannot stop its redis-server; the next start in that folder does.
    await again.kill('SIGKILL');
    const orphan = Number(fs.readFileSync(path.join(dir, '.sprocd', 'redis', 'redis.pid'), 'utf8'));
    expect(fs.existsSync(`/proc/${orphan}`)).toBe(true);
    const third = await spawnNode('ignored', env, { cwd: dir });
    extra.push(third);
    expect(await third.client.storage('greetings')).toEqual({ count: 1 });
    const stat = fs.existsSync(`/proc/${orphan}/stat`) ? fs.readFileSync(`/proc/${orphan}/stat`, 'utf8') : '';
    expect(stat === '' || / Z /.test(stat)).toBe(true); // gone, or a zombie of init's
    const current = Number(fs.readFileSync(path.join(dir, '.sprocd', 'redis', 'redis.pid'), 'utf8'));
    expect(await third.stop()).toBe(0);
    expect(fs.existsSync(`/proc/${current}`)).toBe(false);
  });

  it('logs readable lines, not JSON, at LOG_LEVEL=debug', async () => {
    const n = await spawnNode(uniquePrefix('cli'), { LOG_LEVEL: 'debug' }, { waitReady: false });
    extra.push(n);
    try {
      await expect.poll(() => n.stdout(), { timeout: 15_000 }).toContain('sprocd node ready');
    } finally {
      await n.stop();
    }
    const line =
      n
        .stdout()
        .split('\n')
        .find((l) => l.includes('sprocd node ready')) ?? '';
    expect(line).toMatch(/INFO/);
    expect(() => JSON.parse(line)).toThrow();
  });

  it('a bad setting stops the start with a message that names it', async () => {
    const start = startProcess(BIN, ['start'], {
      env: childEnv({ SPROCD_CONCURRENCY: 'many', SPROCD_BACKUP_CRON: 'at noon' }),
    });
    expect(await start.exited).not.toBe(0);
    const err = start.stderr();
    expect(err).toMatch(/SPROCD_CONCURRENCY="many": must be a whole number/);
    expect(err).toMatch(/SPROCD_BACKUP_CRON="at noon"/);
  });

  it('Ctrl-C (SIGINT to the process group) stops the node in order before its embedded Redis', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-ctrlc-'));
    const env = {
      REDIS_URL: '',
      SPROCD_PREFIX: 'sprocd',
      SPROCD_JOBS_DIR: path.join(ROOT, 'test', 'fixtures', 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(ROOT, 'test', 'fixtures', 'lifecycle-slowstop'),
    };
    const n = await spawnNode('ignored', env, { cwd: dir, detached: true });
    extra.push(n);
    process.kill(-(n.proc.pid ?? 0), 'SIGINT');
    expect(await n.exited).toBe(0);
    expect(n.lines.some((l) => l.hook === 'onServerShutdown' && l.msg === 'hook done')).toBe(true);
    const again = await spawnNode('ignored', env, { cwd: dir });
    extra.push(again);
    expect(await again.client.storage('lifecycle')).toEqual({ startups: 2, shutdowns: 1 });
    expect(await again.stop()).toBe(0);
  });

  it('says what to install when there is no redis-server on PATH', async () => {
    const start = startProcess(BIN, ['start'], {
      cwd: fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-nopath-')),
      env: { PATH: '/nonexistent', PORT: '0', HOME: os.tmpdir() },
    });
    expect(await start.exited).not.toBe(0);
    const out = start.stdout() + start.stderr();
    expect(out).toMatch(/apt-get install redis-server/);
    expect(out).toMatch(/REDIS_URL/);
  });
});

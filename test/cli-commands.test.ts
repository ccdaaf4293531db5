/**
 * The CLI in this process against the API on fakes (no Redis): --url/--token/--json/--version, the
 * exit code of each kind of outcome, option values checked before anything is sent, restore's
 * confirmation, the tables, and the completion scripts.
 */
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import { EXIT, exitCodeOf } from '../src/cli/exit.js';
import { ApiError, SprocdApiError } from '../src/client/index.js';
import type { Io } from '../src/cli/output.js';
import type { BackupsApi } from '../src/api/backups.js';
import { FakeExecutions, fakeApi, fakeContext } from './support/api.js';

const TOKEN = 'cli-commands-token-0123456789';

/** Streams that keep what was written; stdin a terminal or not. */
function capture(options: { tty?: boolean; input?: string } = {}) {
  const out = new PassThrough();
  const err = Object.assign(new PassThrough(), { isTTY: false });
  const stdin = Object.assign(new PassThrough(), { isTTY: options.tty === true });
  if (options.input !== undefined) {
    stdin.end(options.input);
  }
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString('utf8') ?? '';
  const io: Io = { out, err, stdin };
  return { io, stdout: () => text(out), stderr: () => text(err) };
}

const RECORD = {
  number: 3,
  trigger: 'manual' as const,
  node: 'fake-node',
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:00:01.500Z',
  durationMs: 1500,
  status: 0,
  outcome: 'done' as const,
  file: '/backups/sprocd-3.backup',
  size: 2048,
  entries: 2,
  executions: 0,
  snapshotMs: 3,
};

async function serve() {
  const executions = new FakeExecutions();
  const restored: unknown[] = [];
  const backups: BackupsApi = {
    status: async () => ({ items: [RECORD], automaticStopped: false, consecutiveFailures: 0 }),
    nextBackupAt: async () => '2025-01-02T00:00:00.000Z',
    runManual: async () => RECORD,
    restore: async (request: unknown) => {
      restored.push(request);
      return {
        session: 's',
        entries: 2,
        executions: 0,
        skipped: 0,
        sequence: 9,
        from: { prefix: 'p', node: 'n', number: 3, createdAt: RECORD.startedAt },
      } as never;
    },
  };
  let ready = true;
  const backupFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cli-file-')), 'sprocd-3.backup');
  fs.writeFileSync(backupFile, 'backup bytes');
  const app = await fakeApi(
    fakeContext({
      executions: () => executions,
      backups: () => backups,
      executionAdmin: () => ({
        retry: async (n: number) => ({
          ...(await executions.get(n)),
          number: 9,
          state: 'waiting',
          retryOf: n,
        }),
        remove: async (n: number) => {
          await executions.get(n);
          executions.views.delete(n);
        },
        bulk: async (action) => ({ action, matched: 0 }),
        timeline: async () => ({
          items: [
            { at: '2025-01-01T00:00:00.000Z', type: 'queued' as const },
            { at: '2025-01-01T00:00:01.000Z', type: 'started' as const, node: 'n1', attempt: 1 },
          ],
        }),
      }),
      schedules: async () => [
        {
          id: 'backup',
          kind: 'backup' as const,
          cron: '0 3 * * *',
          tz: 'Europe/Paris',
          next: ['2025-01-02T02:00:00.000Z'],
          lastRun: { at: '2025-01-01T02:00:00.000Z', outcome: 'done' },
          missed: 1,
        },
      ],
      executionLogs: async () => [
        {
          at: '2025-01-01T00:00:00.000Z',
          level: 'info',
          msg: 'greeting',
          node: 'n1',
          fields: { who: 'Ada' },
        },
      ],
      backupRecord: async (number) =>
        number === 3 ? { number, node: 'fake-node', file: backupFile } : undefined,
      procedures: () => [
        { name: 'hello', description: 'Greets', params: { type: 'object', properties: { who: {} } } },
      ],
      isReady: async () => (ready ? { ready: true } : { ready: false, reason: 'redis unavailable' }),
      settings: { host: '127.0.0.1', port: 0, token: TOKEN, bodyLimit: 64 * 1024 },
    }),
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const sprocd = async (args: string[], options: { tty?: boolean; input?: string } = {}) => {
    const io = capture(options);
    const code = await run(['--url', url, '--token', TOKEN, ...args], io.io);
    return { code, stdout: io.stdout(), stderr: io.stderr() };
  };
  return {
    url,
    executions,
    restored,
    sprocd,
    notReady: () => {
      ready = false;
    },
  };
}

describe('global options', () => {
  it('--version prints the package version', async () => {
    const io = capture();
    expect(await run(['--version'], io.io)).toBe(EXIT.ok);
    const pkg = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8'));
    expect(io.stdout().trim()).toBe(pkg.version);
  });

  it('--url and --token name the node, also after the command; --json prints JSON', async () => {
    const { sprocd, url } = await serve();
    await sprocd(['exec', 'p', '{"a":1}']);
    const table = await sprocd(['ps']);
    expect(table.stdout).toMatch(/^NUMBER\s+STATE\s+PROCEDURE/);
    const io = capture();
    expect(await run(['ps', '--json', '--url', url, '--token', TOKEN], io.io)).toBe(EXIT.ok);
    expect(JSON.parse(io.stdout())).toMatchObject([{ number: 1, procedure: 'p', params: { a: 1 } }]);
    const noToken = capture();
    expect(await run(['ps', '--url', url, '--token', 'wrong-token-0123456789'], noToken.io)).toBe(
      EXIT.refused,
    );
    expect(noToken.stderr()).toMatch(/^sprocd: Wrong token\. \[UNAUTHORIZED\]\n$/);
  });

  it('refuses a --url that is not an http URL (exit 2)', async () => {
    const io = capture();
    expect(await run(['--url', 'localhost:8080', 'ps'], io.io)).toBe(EXIT.usage);
    expect(io.stderr()).toMatch(/^sprocd: option '--url <url>' argument 'localhost:8080' is invalid/);
  });
});

describe('exit codes', () => {
  it('2 for a usage error: unknown command, bad option values, bad JSON; nothing is sent', async () => {
    const { sprocd, executions } = await serve();
    for (const args of [
      ['nope'],
      ['exec', 'p', '--delay', 'soon'],
      ['exec', 'p', '--priority', '1.5'],
      ['exec', 'p', '--attempts', '0'],
      ['exec', 'p', '--wait', '-1'],
      ['exec', 'p', '{nope'],
      ['ps', '--limit', '0'],
      ['ps', '--state', 'done'],
      ['get', 'abc'],
      ['abort', '0'],
      ['backups', 'list', '--limit', 'x'],
      ['completion', 'tcsh'],
    ]) {
      const res = await sprocd(args);
      expect(res.code, args.join(' ')).toBe(EXIT.usage);
      expect(res.stderr, args.join(' ')).toMatch(/^sprocd: /);
    }
    expect(executions.requests).toEqual([]);
    expect((await sprocd(['exec', 'p', '--delay', 'soon'])).stderr).toMatch(
      /'--delay <ms>' argument 'soon' is invalid\. it must be a whole number/,
    );
  });

  it('3 for not found, 7 for unavailable (503)', async () => {
    const { sprocd, notReady } = await serve();
    const missing = await sprocd(['get', '99']);
    expect([missing.code, missing.stderr]).toEqual([
      EXIT.notFound,
      expect.stringMatching(/EXECUTION_NOT_FOUND\]\n$/),
    ]);
    const down = await sprocd(['session']); // the fake's session is never ready
    expect([down.code, down.stderr]).toEqual([EXIT.unavailable, expect.stringMatching(/NOT_READY\]\n$/)]);
    notReady();
    const status = await sprocd(['status']);
    expect(status.code).toBe(EXIT.unavailable);
    expect(status.stdout).toBe('fake-node: ready, not ready (redis unavailable)\n');
  });

  it('4 when the node refuses (409), 5 for a failed execution, 6 when --wait runs out', async () => {
    const { sprocd, executions } = await serve();
    await sprocd(['exec', 'p']);
    executions.views.set(1, { ...(await executions.get(1)), state: 'completed' });
    const finished = await sprocd(['abort', '1']);
    expect([finished.code, finished.stderr]).toEqual([
      EXIT.refused,
      expect.stringMatching(/EXECUTION_FINISHED\]\n$/),
    ]);

    executions.finishAs = 'failed';
    const failed = await sprocd(['exec', 'p', '--wait', '1000']);
    expect(failed.code).toBe(EXIT.failed);
    expect(failed.stderr).toMatch(/^sprocd: execution 2 failed: /);
    const failedJson = await sprocd(['--json', 'exec', 'p', '--wait']);
    expect(failedJson.code).toBe(EXIT.failed);
    expect(JSON.parse(failedJson.stdout)).toMatchObject({ number: 3, state: 'failed' });
    expect(JSON.parse(failedJson.stderr)).toEqual({
      error: { code: 'EXECUTION_FAILED', message: expect.stringMatching(/execution 3 failed/) },
    });

    executions.finishAs = 'active';
    const late = await sprocd(['exec', 'p', '--wait', '10']);
    expect(late.code).toBe(EXIT.timeout);
    expect(late.stderr).toMatch(/execution 4 is still active after 10 ms .*\[WAIT_TIMEOUT\]/);

    executions.finishAs = 'completed';
    const done = await sprocd(['exec', 'p', '[1]', '--wait']);
    expect([done.code, JSON.parse(done.stdout)]).toEqual([EXIT.ok, 'done']);
  });

  it('7 when no node answers', async () => {
    const io = capture();
    expect(await run(['--url', 'http://127.0.0.1:9', 'nodes'], io.io)).toBe(EXIT.unavailable);
    expect(io.stderr()).toMatch(
      /^sprocd: cannot reach sprocd at http:\/\/127\.0\.0\.1:9 .*\[UNREACHABLE\]\n$/,
    );
  });
});

describe('exitCodeOf', () => {
  it('maps each kind of answer to its exit code', () => {
    const answer = (status: number, code = 'X') => exitCodeOf(new SprocdApiError(code as never, 'm', status));
    expect([400, 401, 403, 409, 413, 415].map((s) => answer(s))).toEqual(Array(6).fill(EXIT.refused));
    expect([answer(404), answer(429), answer(503), answer(0, 'UNREACHABLE'), answer(500)]).toEqual([
      EXIT.notFound,
      EXIT.unavailable,
      EXIT.unavailable,
      EXIT.unavailable,
      EXIT.error,
    ]);
    expect(exitCodeOf(new ApiError('BAD_ARGUMENT', 'm', 0))).toBe(EXIT.usage);
    expect(exitCodeOf(new ApiError('BOOM', 'execution 3 failed', 0))).toBe(EXIT.failed);
    expect(exitCodeOf(new TypeError('a bug'))).toBe(EXIT.error);
  });
});

describe('backups and restore', () => {
  it('lists the history, runs one, and restores only when confirmed', async () => {
    const { sprocd, restored } = await serve();
    const list = await sprocd(['backups']);
    expect(list.code).toBe(EXIT.ok);
    expect(list.stdout).toMatch(/^next scheduled: 2025-01-02T00:00:00.000Z\n/);
    expect(list.stdout).toMatch(
      /^3\s+0\s+done\s+manual\s+fake-node\s+\S+\s+1\.5\s+2\.0 KiB\s+\/backups\/sprocd-3\.backup$/m,
    );
    expect(JSON.parse((await sprocd(['--json', 'backups', 'list', '--limit', '5'])).stdout)).toMatchObject({
      items: [{ number: 3 }],
      nextScheduledAt: expect.any(String),
    });
    const ran = await sprocd(['backups', 'run']);
    expect(ran.stdout).toBe('backup 3 done in 1.5 s: /backups/sprocd-3.backup (2.0 KiB)\n');

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cli-')), 'b.backup');
    fs.writeFileSync(file, 'bytes');
    const script = await sprocd(['restore', file]);
    expect([script.code, script.stderr]).toEqual([EXIT.refused, expect.stringMatching(/add --yes/)]);
    const no = await sprocd(['backups', 'restore', file], { tty: true, input: 'n\n' });
    expect([no.code, no.stderr]).toEqual([
      EXIT.refused,
      expect.stringMatching(/Restore .*b\.backup.*\[y\/N\]/),
    ]);
    expect(restored).toHaveLength(0);
    const yes = await sprocd(['restore', file], { tty: true, input: 'yes\n' });
    expect([yes.code, JSON.parse(yes.stdout)]).toEqual([EXIT.ok, expect.objectContaining({ entries: 2 })]);
    expect((await sprocd(['restore', file, '--yes'])).code).toBe(EXIT.ok);
    expect(restored).toHaveLength(2);
    expect((await sprocd(['restore', `${file}.missing`, '--yes'])).code).toBe(EXIT.usage);
  });
});

describe('other commands', () => {
  it('procedures, nodes and openapi', async () => {
    const { sprocd } = await serve();
    expect((await sprocd(['procedures'])).stdout).toMatch(
      /^NAME\s+PARAMS\s+DESCRIPTION\nhello\s+who\s+Greets\n$/,
    );
    expect(JSON.parse((await sprocd(['procedures', '--json'])).stdout)).toEqual([
      { name: 'hello', description: 'Greets', params: { type: 'object', properties: { who: {} } } },
    ]);
    expect((await sprocd(['nodes'])).stdout).toMatch(/^NODE\s+HOST/);
    expect(JSON.parse((await sprocd(['openapi'])).stdout)).toMatchObject({ openapi: '3.1.0' });
  });
});

describe('execution actions, schedules and backup files', () => {
  it('retry, rm, timeline, logs, schedules and backups download', async () => {
    const { sprocd } = await serve();
    await sprocd(['exec', 'p']);
    expect((await sprocd(['retry', '1'])).stdout).toBe('execution 1: retried as 9 (waiting)\n');
    expect((await sprocd(['timeline', '1'])).stdout).toMatch(
      /^AT\s+EVENT\s+NODE\s+ATTEMPT\s+MESSAGE\n.*queued\n.*started\s+n1\s+1\n$/,
    );
    expect((await sprocd(['logs', '1'])).stdout).toBe(
      '2025-01-01T00:00:00.000Z  info   n1  greeting {"who":"Ada"}\n',
    );
    expect(JSON.parse((await sprocd(['logs', '1', '--json'])).stdout)).toMatchObject([{ msg: 'greeting' }]);
    expect((await sprocd(['rm', '1'])).stdout).toBe('execution 1: removed\n');
    expect((await sprocd(['remove', '1'])).code).toBe(EXIT.notFound);
    expect((await sprocd(['schedules'])).stdout).toMatch(
      /^SCHEDULE\s+CRON\s+NEXT\s+LAST RUN\s+OUTCOME\s+MISSED\nbackup\s+0 3 \* \* \* \(Europe\/Paris\)\s+2025-01-02T02:00:00.000Z\s+2025-01-01T02:00:00.000Z\s+done\s+1\n$/,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cli-download-'));
    const target = path.join(dir, 'copy.backup');
    const saved = await sprocd(['backups', 'download', '3', '-o', target]);
    expect([saved.code, saved.stdout]).toEqual([EXIT.ok, `backup 3: ${target} (12 bytes)\n`]);
    expect(fs.readFileSync(target, 'utf8')).toBe('backup bytes');
    expect((await sprocd(['backups', 'download', '3', '-o', target])).code).toBe(EXIT.usage); // never overwrites
    const gone = await sprocd(['backups', 'download', '4']);
    expect([gone.code, gone.stderr]).toEqual([EXIT.notFound, expect.stringMatching(/BACKUP_NOT_FOUND\]\n$/)]);
  });
});

describe('sprocd completion', () => {
  it('prints a bash script that bash reads, and completes commands, options and their values', async () => {
    const io = capture();
    expect(await run(['completion', 'bash'], io.io)).toBe(EXIT.ok);
    const script = io.stdout();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-completion-')), 'sprocd.bash');
    fs.writeFileSync(file, script);
    const complete = (line: string) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source ${file}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _sprocd; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
    expect(complete("sprocd ''")).toEqual(expect.arrayContaining(['exec', 'ps', 'backups', 'completion']));
    expect(complete('sprocd ba')).toEqual(['backup', 'backups']);
    expect(complete("sprocd backups ''")).toEqual(['list', 'run', 'restore', 'download']);
    expect(complete('sprocd --url http://x ps --s')).toEqual(['--state']);
    expect(complete("sprocd ps --state ''")).toEqual([
      'waiting',
      'delayed',
      'active',
      'completed',
      'failed',
      'aborted',
    ]);
    expect(complete('sprocd exec --w')).toEqual(['--wait']);
    expect(complete('sprocd ps --j')).toEqual(['--json']);
    expect(complete("sprocd completion ''")).toEqual(['bash', 'zsh', 'fish']);
  });

  it('prints zsh (through bashcompinit) and fish scripts', async () => {
    const zsh = capture();
    expect(await run(['completion', 'zsh'], zsh.io)).toBe(EXIT.ok);
    expect(zsh.stdout()).toMatch(/bashcompinit/);
    const fish = capture();
    expect(await run(['completion', 'fish'], fish.io)).toBe(EXIT.ok);
    const lines = fish.stdout();
    expect(lines).toMatch(/^complete -c sprocd -n '__fish_use_subcommand' -a exec$/m);
    expect(lines).toMatch(
      /^complete -c sprocd -n '__fish_seen_subcommand_from ps' -l state -r -a 'waiting delayed active completed failed aborted' /m,
    );
  });
});

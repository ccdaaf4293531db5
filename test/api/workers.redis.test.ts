/**
 * /v1/workers on a real node with a callers file: CALL WORKER needs `execute` (and a matching
 * `execute:PATTERN`), KILL WORKER `control`, the listing `read`; both changes are in the audit trail;
 * and the CLI's `workers`, `call-worker`, `kill-worker` with their exit codes and --json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenSha256 } from '../../src/auth/tokens.js';
import { run } from '../../src/cli.js';
import { EXIT } from '../../src/cli/exit.js';
import type { Io } from '../../src/cli/output.js';
import { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { stepsSeen } from '../fixtures/worker-jobs/step.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('wk-api');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-workers-'));
const tokens = {
  ci: 'ci-token-0123456789abcdef',
  steps: 'steps-token-0123456789abc',
  ops: 'ops-token-0123456789abcdef',
  boss: 'boss-token-0123456789abc',
};
const callers = [
  { name: 'ci', scopes: ['read', 'execute'] },
  { name: 'steps', scopes: ['read', 'execute:valid*'] },
  { name: 'ops', scopes: ['read', 'control'] },
  { name: 'boss', scopes: ['read', 'admin'] },
];

let node: SprocdNode;
let url: string;
const client = (name: keyof typeof tokens) =>
  new SprocdClient({ url, token: tokens[name], fetch: checkedFetch(url) });

/** Runs the CLI in this process; answers its exit code and output. */
async function cli(args: string[], token: keyof typeof tokens = 'ci') {
  const out = new PassThrough();
  const err = new PassThrough();
  const io: Io = { out, err, stdin: Object.assign(new PassThrough(), { isTTY: false }) };
  const code = await run([...args, '--url', url, '--token', tokens[token]], io);
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString('utf8') ?? '';
  return { code, stdout: text(out), stderr: text(err) };
}

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
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'worker-jobs'),
  }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('CALL WORKER and KILL WORKER over HTTP', () => {
  it('gives each route its scope', async () => {
    await expect(client('ops').callWorker('w', 'step', { tag: 's', i: 1 })).rejects.toMatchObject({
      status: 403,
    });
    await expect(client('steps').callWorker('w', 'step', { tag: 's', i: 1 })).rejects.toMatchObject({
      status: 403,
    });
    expect(await client('steps').callWorker('w-valid', 'validated', { a: 1, b: 2 })).toMatchObject({
      worker: 'w-valid',
      procedure: 'validated',
    });
    await expect(client('ci').killWorker('w-valid')).rejects.toMatchObject({ status: 403 });
    await vi.waitFor(
      async () =>
        expect((await client('ops').workers()).find((w) => w.name === 'w-valid')?.processed).toBe(1),
      { timeout: 10_000 },
    );
    expect(await client('ops').killWorker('w-valid')).toMatchObject({ outcome: 'ended' });
  });

  it('records calls and kills in the audit trail', async () => {
    const call = await client('ci').callWorker('audited', 'step', { tag: 'audit', i: 1 });
    await vi.waitFor(() => expect(stepsSeen('audit')).toHaveLength(1), { timeout: 10_000 });
    await client('ops').killWorker('audited');
    await expect(client('ops').killWorker('audited')).rejects.toMatchObject({ code: 'WORKER_NOT_FOUND' });
    const page = await client('boss').audit({ limit: 10 });
    const mine = page.items.filter((e) => e.details?.worker === 'audited');
    expect(mine.map((e) => [e.caller, e.action, e.status])).toEqual([
      ['ops', 'worker.kill', 404],
      ['ops', 'worker.kill', 200],
      ['ci', 'worker.call', 202],
    ]);
    expect(mine[2]?.details).toEqual({ worker: 'audited', procedure: 'step', message: call.id });
    expect(mine[1]?.details).toEqual({ worker: 'audited', outcome: 'ended', dropped: 0 });
  });
});

describe('sprocd workers, call-worker, kill-worker', () => {
  it('calls, lists and kills a worker, with --json and the exit code of each failure', async () => {
    const called = await cli(['call-worker', 'cli-w', 'step', '{"tag":"cli","i":1}']);
    expect(called).toMatchObject({ code: EXIT.ok, stdout: 'worker cli-w: step queued (1 pending)\n' });
    await vi.waitFor(() => expect(stepsSeen('cli')).toHaveLength(1), { timeout: 10_000 });

    await vi.waitFor(async () => {
      const listed = await cli(['workers']);
      expect(listed.code).toBe(EXIT.ok);
      const [head, row] = listed.stdout.trim().split('\n');
      expect(head).toMatch(/^NAME\s+NODE\s+PENDING\s+CURRENT\s+ATTEMPT\s+STARTED\s+PROCESSED\s+FAILED$/);
      expect(row).toMatch(new RegExp(`^cli-w\\s+${node.name}\\s+0\\s+1\\s+0$`));
    });
    const json = await cli(['workers', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ name: 'cli-w', node: node.name, pending: 0, processed: 1 }),
    ]);

    expect(await cli(['call-worker', 'cli-w', 'nope'])).toMatchObject({ code: EXIT.notFound });
    expect(await cli(['call-worker', 'cli-w', 'step', '{"i":"x"}'])).toMatchObject({ code: EXIT.refused });
    expect(await cli(['call-worker', 'cli-w', 'step', '{oops'])).toMatchObject({ code: EXIT.usage });
    expect(await cli(['call-worker', 'cli-w', 'step', '{"tag":"cli","i":2}'], 'ops')).toMatchObject({
      code: EXIT.refused,
    });

    const killed = await cli(['kill-worker', 'cli-w', '--json'], 'ops');
    expect(killed.code).toBe(EXIT.ok);
    expect(JSON.parse(killed.stdout)).toEqual({ worker: 'cli-w', outcome: 'ended', dropped: 0 });
    const again = await cli(['kill-worker', 'cli-w'], 'ops');
    expect(again.code).toBe(EXIT.notFound);
    expect(again.stderr).toMatch(/WORKER_NOT_FOUND/);
  });
});

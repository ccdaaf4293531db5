/**
 * Callers end to end, with real processes: `sprocd callers add` makes a token and the line for the
 * file, a node started with that file lets the token do what its scopes say and nothing more, and
 * SIGHUP re-reads the file (a bad file keeps the callers already read).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { spawnNode, type ChildNode } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { runSprocd } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('callers');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-callers-proc-'));
const file = path.join(dir, 'callers.json');
let node: ChildNode;
let ciToken: string;

/** `sprocd callers add` as a user runs it: the token and the file line it prints. */
async function addCaller(
  name: string,
  scopes: string,
  extra: string[] = [],
): Promise<{ token: string; line: string; stdout: string }> {
  const { code, stdout, stderr } = await runSprocd(['callers', 'add', name, '--scopes', scopes, ...extra]);
  expect(code, stderr).toBe(0);
  const [token, line] = [...stdout.matchAll(/^ {2}(\S.*)$/gm)].map((m) => m[1]!);
  return { token: token!, line: line!, stdout };
}

const clientOf = (token: string) => new SprocdClient({ url: node.url, token, fetch: checkedFetch(node.url) });

beforeAll(async () => {
  const ci = await addCaller('ci', 'read,execute:ec*');
  ciToken = ci.token;
  // The printed line, put in the file as the output says.
  fs.writeFileSync(file, `{"callers":[\n  ${ci.line}\n]}\n`);
  node = await spawnNode(prefix, { SPROCD_CALLERS_FILE: file });
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sprocd callers add', () => {
  it('prints a new token once, and the line for the file with its SHA-256, never the token', async () => {
    const { token, line, stdout } = await addCaller('reports-bot', 'read, execute:reports/*');
    expect(token).toMatch(/^sprocd_[A-Za-z0-9_-]{43}$/);
    expect(stdout.split(token).length).toBe(2);
    const entry = JSON.parse(line) as Record<string, unknown>;
    expect(entry).toEqual({
      name: 'reports-bot',
      tokenSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      scopes: ['read', 'execute:reports/*'],
    });
    expect(line).not.toContain(token);
    const again = await addCaller('reports-bot', 'read');
    expect(again.token).not.toBe(token);
  });

  it('refuses an unknown scope and a bad name (exit 2)', async () => {
    const scope = await runSprocd(['callers', 'add', 'x', '--scopes', 'read,root']);
    expect(scope.code).toBe(2);
    expect(scope.stderr).toMatch(/unknown scope "root"/);
    const name = await runSprocd(['callers', 'add', 'a b', '--scopes', 'read']);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/name: use 1-64/);
  });

  it('--json gives the token and the entry to a script', async () => {
    const { code, stdout } = await runSprocd(['callers', 'add', 'bot', '--scopes', 'read', '--json']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { token: string; tokenSha256: string; line: string };
    expect(out.token).toMatch(/^sprocd_/);
    expect(JSON.parse(out.line)).toEqual({ name: 'bot', tokenSha256: out.tokenSha256, scopes: ['read'] });
  });
});

describe('a node with the callers file', () => {
  it('lets the token do what its scopes say, and nothing more', async () => {
    const ci = clientOf(ciToken);
    expect((await ci.execute('echo', 1, { wait: 10_000 })).result).toBe(1);
    await expect(ci.execute('sleep', { ms: 1 })).rejects.toMatchObject({
      status: 403,
      details: { scope: 'execute:sleep' },
    });
    expect(Array.isArray(await ci.list())).toBe(true);
    await expect(ci.backup()).rejects.toMatchObject({ status: 403, details: { scope: 'admin' } });
    await expect(clientOf('sprocd_not-a-token-of-anyone-0123456789').list()).rejects.toMatchObject({
      status: 401,
    });
  });

  it('re-reads the file on SIGHUP; a bad file keeps the callers it had', async () => {
    const ops = await addCaller('ops', 'read,control', ['--file', file]);
    expect(ops.stdout).toContain(`Added to ${file}`);
    // Not before the signal.
    await expect(clientOf(ops.token).list()).rejects.toMatchObject({ status: 401 });
    node.proc.kill('SIGHUP');
    await node.waitForLine((l) => l.msg === 'callers file reloaded' && l.callers === 2, 15_000);
    expect(Array.isArray(await clientOf(ops.token).list())).toBe(true);
    expect(Array.isArray(await clientOf(ciToken).list())).toBe(true);

    // A broken file: logged, and the callers read before stay.
    fs.writeFileSync(file, '{"callers":[{"name":"ops"}]}');
    node.proc.kill('SIGHUP');
    const refused = await node.waitForLine(
      (l) => l.msg === 'callers file not reloaded; the previous callers stay',
      15_000,
    );
    expect(String(refused.reason)).toMatch(/Bad SPROCD_CALLERS_FILE/);
    expect(Array.isArray(await clientOf(ops.token).list())).toBe(true);

    // Removing a caller takes its token away.
    fs.writeFileSync(file, `{"callers":[${ops.line}]}`);
    node.proc.kill('SIGHUP');
    await node.waitForLine((l) => l.msg === 'callers file reloaded' && l.callers === 1, 15_000);
    await expect(clientOf(ciToken).list()).rejects.toMatchObject({ status: 401 });
    expect(Array.isArray(await clientOf(ops.token).list())).toBe(true);
  });

  it('does not start with a bad callers file, and shows no digest', async () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({ callers: [{ name: 'x', tokenSha256: 'ab'.repeat(32), scopes: ['sudo'] }] }),
    );
    const child = await spawnNode(
      uniquePrefix('callers-bad'),
      { SPROCD_CALLERS_FILE: bad },
      { waitReady: false },
    );
    expect(await child.exited).toBe(1);
    const out = child.stdout() + child.stderr();
    expect(out).toMatch(/unknown scope \\?"sudo\\?"/);
    expect(out).not.toContain('ab'.repeat(32));
  });
});

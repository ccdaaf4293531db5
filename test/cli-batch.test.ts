/**
 * `sprocd exec --batch` as a user runs it (real processes, a real node): a JSON array from a file and
 * JSON lines from stdin, queued in order and printed a number a line (or the answers with --json);
 * inputs over one request's 1,000 items go in several requests; a malformed item is named by its line
 * or item and queues nothing; an item the node refuses names its line, queues nothing of its chunk
 * and leaves the chunks before it queued.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunksOf, parseBatch } from '../src/cli/exec-batch.js';
import { waitForState } from './support/executions.js';
import { spawnNode, type ChildNode } from './support/node.js';
import { BIN, childEnv, runSprocd, type CommandResult } from './support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from './support/redis.js';

const TOKEN = 'cli-batch-token-0123456789';
const prefix = uniquePrefix('cli-batch');
let node: ChildNode;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cli-batch-'));

function cli(args: string[]): Promise<CommandResult> {
  return runSprocd(args, { env: { SPROCD_URL: node.url, SPROCD_TOKEN: TOKEN } });
}

/** Runs the CLI with `input` on its stdin. */
function cliWithStdin(args: string[], input: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: childEnv({ SPROCD_URL: node.url, SPROCD_TOKEN: TOKEN }), timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

function file(name: string, text: string): string {
  const at = path.join(dir, name);
  fs.writeFileSync(at, text);
  return at;
}

const numbersOf = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map(Number);

beforeAll(async () => {
  node = await spawnNode(prefix, { SPROCD_TOKEN: TOKEN });
});

afterAll(async () => {
  await node?.kill('SIGKILL');
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sprocd exec --batch', () => {
  it('queues a JSON array from a file, in order, and prints a number a line', async () => {
    const input = file(
      'array.json',
      JSON.stringify([
        { procedure: 'echo', params: { i: 1 }, name: 'batch-a' },
        { procedure: 'validated', params: { a: 1, b: 2 } },
        { procedure: 'echo', params: [3], delayMs: 600_000 },
      ]),
    );
    const res = await cli(['exec', '--batch', input]);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    const numbers = numbersOf(res.stdout);
    expect(numbers).toHaveLength(3);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    const client = node.client;
    expect(await waitForState(client, numbers[0] as number, 'completed')).toMatchObject({
      procedure: 'echo',
      name: 'batch-a',
      result: { i: 1 },
    });
    expect(await waitForState(client, numbers[1] as number, 'completed')).toMatchObject({
      result: { sum: 3 },
    });
    expect(await client.get(numbers[2] as number)).toMatchObject({ state: 'delayed' });
    await client.abort(numbers[2] as number);
  });

  it('reads JSON lines from stdin (blank lines skipped); --json prints the answers', async () => {
    const res = await cliWithStdin(
      ['--json', 'exec', '--batch', '-'],
      '{"procedure":"echo","params":1}\n\n{"procedure":"echo","params":2}\n',
    );
    expect(res.code).toBe(0);
    const answers = JSON.parse(res.stdout) as { number: number; procedure: string; state: string }[];
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatchObject({ procedure: 'echo' });
    expect((await waitForState(node.client, answers[1]!.number, 'completed')).result).toBe(2);
  });

  it('sends more than 1,000 items in several requests', async () => {
    const lines = Array.from({ length: 1203 }, (_, i) =>
      JSON.stringify({ procedure: 'echo', params: i, delayMs: 600_000 }),
    );
    const res = await cli(['exec', '--batch', file('many.jsonl', lines.join('\n'))]);
    expect(res.code).toBe(0);
    const numbers = numbersOf(res.stdout);
    expect(numbers).toHaveLength(1203);
    expect(new Set(numbers).size).toBe(1203);
    expect(await node.client.get(numbers[1202] as number)).toMatchObject({ state: 'delayed', params: 1202 });
  });

  it('names the line of a malformed item and queues nothing', async () => {
    const before = (await node.client.list({ procedure: 'validated', limit: 1000 })).length;
    const bad = await cli([
      'exec',
      '--batch',
      file(
        'bad.jsonl',
        '{"procedure":"validated","params":{"a":1,"b":2}}\n{"procedure":"validated","delay":5}\n',
      ),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/bad\.jsonl line 2: .*delay.*nothing was queued/);
    const notJson = await cli(['exec', '--batch', file('broken.jsonl', '{"procedure":"echo"}\n{oops\n')]);
    expect(notJson).toMatchObject({ code: 2 });
    expect(notJson.stderr).toMatch(/broken\.jsonl line 2 is not JSON/);
    const missing = await cli(['exec', '--batch', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.json: ENOENT/);
    const both = await cli(['exec', 'echo', '--batch', file('one.json', '[{"procedure":"echo"}]')]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--batch takes neither PROCEDURE/);
    expect((await node.client.list({ procedure: 'validated', limit: 1000 })).length).toBe(before);
  });

  it('an item the node refuses names its line and queues nothing of its chunk; earlier chunks stay', async () => {
    // 1,001 items: the first chunk (1,000) is queued; item 1,001 of the second asks for a procedure the
    // node does not have.
    const items = Array.from({ length: 1000 }, (_, i) => ({
      procedure: 'echo',
      params: i,
      delayMs: 600_000,
    }));
    const refused = await cli([
      'exec',
      '--batch',
      file('refused.json', JSON.stringify([...items, { procedure: 'no-such-procedure' }])),
    ]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/refused\.json item 1001: .*no-such-procedure/);
    expect(refused.stderr).toMatch(/the 1000 executions of the chunks before it stay queued/);
    expect(numbersOf(refused.stdout)).toHaveLength(1000);

    const alone = await cli([
      'exec',
      '--batch',
      file('alone.jsonl', '{"procedure":"validated","params":{"a":"x"}}'),
    ]);
    expect(alone.code).toBe(4);
    expect(alone.stderr).toMatch(/alone\.jsonl line 1: .*nothing was queued.*VALIDATION_FAILED/);
  });
});

describe('parseBatch and chunksOf', () => {
  it('take an array or JSON lines, and split at 1,000', () => {
    expect(parseBatch(' [{"procedure":"a"},{"procedure":"b","params":1}]', 'f').map((x) => x.where)).toEqual([
      'item 1',
      'item 2',
    ]);
    expect(parseBatch('{"procedure":"a"}\n\n{"procedure":"b"}', 'f').map((x) => x.where)).toEqual([
      'line 1',
      'line 3',
    ]);
    expect(() => parseBatch('', 'f')).toThrow(/f holds no executions/);
    expect(() => parseBatch('[1', 'f')).toThrow(/f is not a JSON array/);
    expect(() => parseBatch('[{"procedure":"a"}, 3]', 'f')).toThrow(/f item 2: /);
    expect(chunksOf(Array.from({ length: 2001 }, (_, i) => i)).map((c) => c.length)).toEqual([1000, 1000, 1]);
  });
});

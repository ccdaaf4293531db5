/**
 * The CLI's live views as a user runs them (real processes): `sprocd watch` (lines and NDJSON,
 * filters, --after) and `--follow` of `exec` and `get`, which end with the result or a non-zero exit.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnNode, type ChildNode } from './support/node.js';
import {
  BIN,
  childEnv,
  runSprocd,
  startProcess,
  type CommandResult,
  type TestProcess,
} from './support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from './support/redis.js';
import { openSse } from './support/sse.js';

const TOKEN = 'cli-events-token-0123456789';
const prefix = uniquePrefix('clie');
let node: ChildNode;
const running: TestProcess[] = [];

function cli(args: string[]): Promise<CommandResult> {
  return runSprocd(args, { env: { SPROCD_URL: node.url, SPROCD_TOKEN: TOKEN } });
}

/** Starts a long-running sprocd command (watch, --follow) against the node. */
function start(args: string[]): TestProcess {
  const proc = startProcess(BIN, args, {
    env: childEnv({ SPROCD_URL: node.url, SPROCD_TOKEN: TOKEN }),
    label: `sprocd ${args.join(' ')}`,
  });
  running.push(proc);
  return proc;
}

/** The event position of now, as `--after` takes it. */
async function positionNow(): Promise<string> {
  const stream = await openSse(`${node.url}/v1/events`, { token: TOKEN });
  try {
    for (let i = 0; i < 200 && stream.lastId() === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const id = stream.lastId();
    expect(id).toMatch(/^\d+-\d+_\d+-\d+$/);
    return id as string;
  } finally {
    stream.close();
  }
}

beforeAll(async () => {
  node = await spawnNode(prefix, { SPROCD_TOKEN: TOKEN });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

afterAll(async () => {
  await node?.kill('SIGKILL');
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('sprocd watch', () => {
  it('--json prints one event per line: the missed ones after --after, then live ones, filtered', async () => {
    const after = await positionNow();
    const first = await node.client.execute('echo', 'one', { wait: 10_000 });
    const other = await node.client.execute('noop', null, { wait: 10_000 });
    const watch = start(['watch', '--json', '--after', after, '--procedure', 'echo']);
    await watch.waitForLine(
      (l) =>
        l.type === 'execution.state' &&
        (l.data as { number?: number }).number === first.number &&
        (l.data as { state?: string }).state === 'completed',
    );
    const second = await node.client.execute('echo', 'two', { wait: 10_000 });
    await watch.waitForLine(
      (l) =>
        (l.data as { number?: number } | undefined)?.number === second.number &&
        (l.data as { state?: string }).state === 'completed',
    );
    const events = watch.lines.filter((l) => l.type !== undefined);
    expect(
      events.every(
        (l) => typeof l.id === 'string' && (l.data as { procedure?: string }).procedure === 'echo',
      ),
    ).toBe(true);
    expect(events.some((l) => (l.data as { number?: number }).number === other.number)).toBe(false);
    expect(await watch.kill('SIGINT')).toBe(0);
  });

  it('prints readable lines: time, execution, procedure, state', async () => {
    const after = await positionNow();
    const failed = await node.client.execute('fail', null, { attempts: 1, wait: 10_000 });
    const watch = start([
      'watch',
      '--after',
      after,
      '--number',
      String(failed.number),
      '--type',
      'execution.state',
    ]);
    const line = await watch.waitForLine((l) => typeof l.msg === 'string' && / failed/.test(l.msg));
    expect(line.msg).toMatch(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  #${failed.number} fail failed: BOOM boom on attempt 1$`),
    );
    expect(watch.lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`#${failed.number} fail active \\(attempt 1\\)$`)),
      ]),
    );
  });

  it('refuses a bad filter in one line', async () => {
    const res = await cli(['watch', '--number', 'x']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/^sprocd: --number must be an execution number.*\n$/);
    const type = await cli(['watch', '--type', 'nope']);
    expect(type.code).not.toBe(0);
    expect(type.stderr).toMatch(/unknown event type "nope".*VALIDATION_FAILED/);
  });
});

describe('--follow', () => {
  it('exec --follow shows the progress, then prints the result', async () => {
    const follow = start(['exec', 'progress', '--follow']);
    const line = await follow.waitForLine(
      (l) => typeof l.stderr === 'string' && /progress 42%/.test(l.stderr),
    );
    const number = Number(/execution (\d+) progress: active progress 42%/.exec(String(line.stderr))?.[1]);
    expect(number).toBeGreaterThan(0);
    await node.client.wake(number);
    expect(await follow.exited).toBe(0);
    expect(JSON.parse(follow.stdout())).toBe('woken');
    expect(follow.stderr()).toMatch(/progress: completed progress \{"phase":"done"\}/);
  });

  it('get N --follow ends with the view, non-zero when the execution failed', async () => {
    const view = await node.client.execute('fail', null, { attempts: 2 });
    const res = await cli(['get', String(view.number), '--follow']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(`sprocd: execution ${view.number} failed: boom on attempt 2 \\[BOOM\\]\\n$`),
    );
    const done = await node.client.execute('echo', 'done', { wait: 10_000 });
    const ok = await cli(['get', String(done.number), '--follow']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ number: done.number, state: 'completed', result: 'done' });
  });
});

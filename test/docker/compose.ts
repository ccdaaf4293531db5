/**
 * `docker compose up` for real, run by .ci/docker-test (not by vitest: it needs a Docker daemon and
 * the base images, which that script provides). Two stacks, each checked the same way:
 *   - this repository's Dockerfile and docker-compose.yml;
 *   - a project written by `sprocd init`, depending on a packed tarball of this repository, with a
 *     procedure that imports a package from the npm registry.
 * Each stack is built, brought up and waited for until healthy; then a procedure runs, SIGHUP through
 * the init reloads an added procedure, a restart of the node finds the session intact, and a stop runs
 * the shutdown hook and exits 0 with no npm in the way.
 *
 *   npx tsx test/docker/compose.ts [repo|init]...   (both when none is named)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A package the init project's procedure imports; sprocd itself does not depend on it. */
const EXTRA_PACKAGE = 'slugify@1.6.6';

const began = Date.now();
const say = (message: string): void => {
  process.stdout.write(`compose-test [${((Date.now() - began) / 1000).toFixed(0)} s] ${message}\n`);
};

/** `docker compose` (the plugin) when the client has it, else the standalone `docker-compose`. */
const COMPOSE: string[] =
  spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0
    ? ['docker', 'compose']
    : ['docker-compose'];

function run(cmd: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  const [file, ...args] = cmd as [string, ...string[]];
  try {
    return execFileSync(file, args, {
      cwd: options.cwd,
      env: options.env,
      input: options.input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(500);
  }
}

/** One stack under test: its folder (build context and compose file) and what its procedure returns. */
interface Stack {
  label: string;
  dir: string;
  /** A procedure of the stack, its params, and the result that shows it ran. */
  procedure: { name: string; params: unknown; result: Record<string, unknown> };
}

class Deployment {
  readonly project: string;
  readonly env: NodeJS.ProcessEnv;
  readonly token = randomBytes(24).toString('hex');
  readonly jobsDir: string;
  private readonly override: string;
  private baseUrl = '';

  constructor(
    readonly stack: Stack,
    work: string,
  ) {
    this.project = `sprocd-ci-${stack.label}`;
    // The stack's jobs/ is copied, so the reload check can add a procedure without touching the stack's
    // own files; the copy is mounted over /app/jobs by an override file, as an operator would.
    this.jobsDir = path.join(work, 'jobs');
    fs.cpSync(path.join(stack.dir, 'jobs'), this.jobsDir, { recursive: true });
    fs.chmodSync(this.jobsDir, 0o755);
    this.override = path.join(work, 'override.yml');
    fs.writeFileSync(
      this.override,
      `services:\n  sprocd:\n    volumes:\n      - ${JSON.stringify(`${this.jobsDir}:/app/jobs:ro`)}\n`,
    );
    this.env = {
      ...process.env,
      SPROCD_TOKEN: this.token,
      REDIS_PASSWORD: randomBytes(24).toString('hex'),
      COMPOSE_PROJECT_NAME: this.project,
    };
  }

  compose(...args: string[]): string {
    const files = ['-f', path.join(this.stack.dir, 'docker-compose.yml'), '-f', this.override];
    return run([...COMPOSE, ...files, ...args], { cwd: this.stack.dir, env: this.env });
  }

  container(): string {
    const id = this.compose('ps', '-q', 'sprocd').trim();
    assert.ok(id, 'the sprocd container exists');
    return id;
  }

  inspect(format: string): string {
    return run(['docker', 'inspect', '-f', format, this.container()]).trim();
  }

  logs(): Record<string, unknown>[] {
    const out = run(['docker', 'logs', this.container()]);
    return out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          return { text: line };
        }
      });
  }

  async up(): Promise<void> {
    this.env.SPROCD_PUBLISH = `127.0.0.1:${await freePort()}`;
    this.baseUrl = `http://${this.env.SPROCD_PUBLISH}`;
    this.compose('down', '-v', '--remove-orphans');
    say(`${this.stack.label}: building the image`);
    this.compose('build');
    say(`${this.stack.label}: docker compose up`);
    this.compose('up', '-d');
    await this.healthy();
  }

  async healthy(): Promise<void> {
    await until(`${this.stack.label} to be healthy`, 180_000, async () => {
      const status = this.inspect('{{.State.Status}} {{.State.Health.Status}}');
      assert.notEqual(status.split(' ')[0], 'exited', `the node exited:\n${this.tail()}`);
      return status === 'running healthy' ? true : undefined;
    });
    say(`${this.stack.label}: healthy`);
  }

  tail(): string {
    return run(['docker', 'logs', '--tail', '40', this.container()]);
  }

  async request(method: string, route: string, body?: unknown, token = this.token) {
    const res = await fetch(`${this.baseUrl}${route}`, {
      method,
      headers: {
        ...(token === '' ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown>,
    };
  }

  async execute(procedure: string, params: unknown) {
    return this.request('POST', '/v1/executions', { procedure, params, wait: 20_000 });
  }

  down(): void {
    this.compose('down', '-v', '--remove-orphans');
  }
}

async function checkStack(stack: Stack): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `sprocd-compose-${stack.label}-`));
  const d = new Deployment(stack, work);
  try {
    await d.up();
    const id = d.container();

    // The shape of the container: an init as PID 1, node as the unprivileged user, API on loopback.
    assert.equal(d.inspect('{{.HostConfig.Init}}'), 'true', 'compose runs the node behind an init');
    assert.equal(d.inspect('{{.Config.User}}'), 'node');
    const procs = run(['docker', 'top', id, '-o', 'pid,uid,args']);
    assert.match(procs, /^\s*\d+\s+1000\s+node .*sprocd\.js start/m, `node runs as uid 1000:\n${procs}`);
    assert.doesNotMatch(procs, /\bnpm\b/, 'no npm between the init and node');
    const published = d.inspect('{{json .NetworkSettings.Ports}}');
    assert.match(published, /"HostIp":"127\.0\.0\.1"/, `published on loopback only: ${published}`);
    assert.equal(
      (await d.request('GET', '/v1/session', undefined, '')).status,
      401,
      'the API asks for the token',
    );

    // A procedure runs.
    const { name, params, result } = stack.procedure;
    const first = await d.execute(name, params);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.state, 'completed', JSON.stringify(first.body));
    assert.deepEqual({ ...(first.body.result as object), ...result }, first.body.result, 'expected result');
    say(`${stack.label}: ${name} ran: ${JSON.stringify(first.body.result)}`);

    // SIGHUP through the init reloads the procedures: one added under jobs/ becomes callable, in the
    // same process (the container neither restarts nor stops).
    fs.writeFileSync(
      path.join(d.jobsDir, 'added.ts'),
      "export default async () => ({ added: 'after SIGHUP' });\n",
    );
    assert.equal((await d.execute('added', {})).status, 404, 'not loaded before the reload');
    const startedAt = d.inspect('{{.State.StartedAt}}');
    run(['docker', 'kill', '-s', 'HUP', id]);
    const added = await until('the added procedure after SIGHUP', 30_000, async () => {
      const res = await d.execute('added', {});
      return res.status === 200 ? res : undefined;
    });
    assert.deepEqual(added.body.result, { added: 'after SIGHUP' });
    assert.equal(d.inspect('{{.State.StartedAt}} {{.RestartCount}}'), `${startedAt} 0`);
    assert.ok(
      d.logs().some((l) => l.msg === 'procedures and hooks reloaded'),
      'the node logged the reload',
    );
    say(`${stack.label}: SIGHUP reloaded the procedures`);

    // A restart of the node finds the session where it was.
    const hello = await d.execute('hello', { who: 'before' });
    assert.equal(hello.body.state, 'completed', JSON.stringify(hello.body));
    const session = await d.request('GET', '/v1/session');
    const greetings = await d.request('GET', '/v1/session/storage/greetings');
    assert.equal(session.status, 200);
    assert.deepEqual(greetings.body, { count: (hello.body.result as { count: number }).count });
    d.compose('restart', 'sprocd');
    await d.healthy();
    assert.notEqual(d.inspect('{{.State.StartedAt}}'), startedAt, 'the node did restart');
    assert.equal((await d.request('GET', '/v1/session')).body.id, session.body.id, 'same session');
    assert.deepEqual((await d.request('GET', '/v1/session/storage/greetings')).body, greetings.body);
    const again = await d.execute('hello', { who: 'again' });
    assert.equal(again.body.state, 'completed', JSON.stringify(again.body));
    assert.equal(
      (again.body.result as { count: number }).count,
      (greetings.body as { count: number }).count + 1,
      'the greetings count goes on from the stored one',
    );
    say(`${stack.label}: restart found the session intact`);

    // A stop: SIGTERM reaches node, the shutdown hook runs, the exit is clean.
    d.compose('stop', 'sprocd');
    assert.equal(d.inspect('{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}'), 'exited 0 false');
    const lines = d.logs();
    const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
    assert.equal(count('node stopping'), 2, 'the shutdown hook ran at the restart and at the stop');
    assert.equal(count('stopped'), 2, 'the node finished stopping both times');
    assert.ok(
      lines.some((l) => l.msg === 'stop requested' && l.signal === 'SIGTERM'),
      'node itself received SIGTERM',
    );
    const noise = lines.filter((l) => Number(l.level) >= 50 || /npm|error/i.test(String(l.text ?? '')));
    assert.deepEqual(noise, [], 'no error lines');
    say(`${stack.label}: stopped cleanly (exit 0, shutdown hook ran)`);
  } catch (err) {
    try {
      process.stdout.write(
        `--- ${stack.label}: compose logs ---\n${d.compose('logs', '--no-color', '--tail', '80')}\n`,
      );
    } catch {
      // The failure above is the one to report.
    }
    throw err;
  } finally {
    d.down();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A project written by `sprocd init`, depending on this repository packed as a tarball in vendor/. */
function initProject(dir: string): Stack {
  run([process.execPath, path.join(ROOT, 'bin', 'sprocd.js'), 'init', dir]);
  say('init: packing this repository');
  const tarball = run(['npm', 'pack', '--silent', '--pack-destination', path.join(dir, 'vendor')], {
    cwd: ROOT,
  })
    .trim()
    .split('\n')
    .pop() as string;
  // Only the lockfile is needed here: the image's `npm ci` does the install.
  run(
    [
      'npm',
      'install',
      '--package-lock-only',
      '--no-audit',
      '--no-fund',
      `./vendor/${tarball}`,
      EXTRA_PACKAGE,
    ],
    { cwd: dir },
  );
  fs.writeFileSync(
    path.join(dir, 'jobs', 'slug.ts'),
    [
      "import slugify from 'slugify';",
      "import { defineProcedure, z } from 'sprocd';",
      '',
      'export default defineProcedure({',
      '  params: z.object({ text: z.string() }),',
      '  run: async ({ text }) => ({ slug: slugify(text, { lower: true }) }),',
      '});',
      '',
    ].join('\n'),
  );
  return {
    label: 'init',
    dir,
    procedure: {
      name: 'slug',
      params: { text: 'Hello Docker World' },
      result: { slug: 'hello-docker-world' },
    },
  };
}

const wanted = process.argv.slice(2);
const runs = wanted.length === 0 ? ['repo', 'init'] : wanted;
say(`using ${COMPOSE.join(' ')}`);
for (const label of runs) {
  if (label === 'repo') {
    await checkStack({
      label: 'repo',
      dir: ROOT,
      procedure: { name: 'hello', params: { who: 'Ada' }, result: { greeting: 'Hello, Ada!' } },
    });
  } else if (label === 'init') {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-compose-init-'));
    try {
      await checkStack(initProject(path.join(scratch, 'app')));
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  } else {
    throw new Error(`unknown stack ${label}; name repo or init`);
  }
}
say(`all checks passed (${runs.join(', ')})`);

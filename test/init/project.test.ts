/**
 * `sprocd init DIR`: the files it writes, its refusal of a folder that has files, and the project it
 * makes running for real: sprocd installed from a packed tarball of this repository (it is not on the
 * registry), a procedure importing a package from the npm registry, a node started the way `npx sprocd
 * start` does, against the test Redis. (The same project runs under `docker compose` in
 * test/docker/compose.ts.)
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { initProject, InitRefusedError } from '../../src/init/project.js';
import { ROOT, childEnv, runSprocd, startProcess, type TestProcess } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, testRedisUrl, uniquePrefix } from '../support/redis.js';

const exec = promisify(execFile);
const own = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-init-'));
const prefix = uniquePrefix('init');
const nodes: TestProcess[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const EXPECTED_FILES = [
  '.dockerignore',
  '.gitignore',
  'Dockerfile',
  'README.md',
  'docker-compose.yml',
  'jobs/hello.ts',
  'lifecycle/onServerShutdown.ts',
  'lifecycle/onServerStartup.ts',
  'package.json',
  'tsconfig.json',
  'vendor/README.md',
];

describe('sprocd init', () => {
  it('writes a project that depends on this sprocd', () => {
    const dir = path.join(scratch, 'My Project');
    expect(initProject(dir).sort()).toEqual(EXPECTED_FILES);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: 'my-project',
      type: 'module',
      private: true,
      engines: { node: '>=24' },
      dependencies: { sprocd: `^${own.version}` },
      scripts: { start: 'sprocd start' },
    });
    const tsconfig = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.json'), 'utf8'));
    expect(tsconfig.include).toEqual(['jobs', 'lifecycle']);
    expect(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toMatch(/RUN npm ci/);
  });

  it('refuses a folder that has files unless --force, and then replaces only its own', () => {
    const dir = path.join(scratch, 'taken');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    const refused = (() => {
      try {
        initProject(dir);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(InitRefusedError);
    expect((refused as InitRefusedError).code).toBe('DIR_NOT_EMPTY');
    expect((refused as Error).message).toMatch(/not empty .*--force/);
    expect(fs.readdirSync(dir).sort()).toEqual(['Dockerfile', 'notes.txt']);

    initProject(dir, { force: true });
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toMatch(/^FROM node:24/m);
  });

  it('is a command of the CLI that says what to do next, and exits 1 on a folder that has files', async () => {
    const dir = path.join(scratch, 'from-cli');
    const made = await runSprocd(['init', dir]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/npm install/);
    expect(fs.existsSync(path.join(dir, 'jobs', 'hello.ts'))).toBe(true);
    const again = await runSprocd(['init', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^sprocd: .* is not empty .*--force/m);
  });

  it('makes a project whose procedures import its own dependencies and run on a node', async () => {
    const dir = path.join(scratch, 'runs');
    initProject(dir);
    // sprocd is not on the registry: pack this repository (its runtime needs no build) into vendor/.
    const packed = await exec(
      'npm',
      ['pack', '--silent', '--ignore-scripts', '--pack-destination', 'vendor', ROOT],
      {
        cwd: dir,
      },
    );
    const tarball = packed.stdout.trim().split('\n').pop() as string;
    await exec(
      'npm',
      [
        'install',
        '--omit=dev',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        `./vendor/${tarball}`,
        'slugify@1.6.6',
      ],
      { cwd: dir, timeout: 240_000 },
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

    // What `npx sprocd start` runs: the project's own copy of sprocd, in the project's folder.
    const node = startProcess(path.join(dir, 'node_modules', '.bin', 'sprocd'), ['start'], {
      cwd: dir,
      env: childEnv({ REDIS_URL: testRedisUrl(), SPROCD_PREFIX: prefix, PORT: '0', LOG_LEVEL: 'info' }),
      label: 'project node',
    });
    nodes.push(node);
    const ready = await node.waitForLine((l) => l.msg === 'sprocd node ready', 60_000);
    expect(node.lines.find((l) => l.msg === 'procedures loaded')).toMatchObject({
      procedures: 2,
      jobsDir: path.join(dir, 'jobs'),
    });
    const client = new SprocdClient({ url: String(ready.url), token: '' });
    const slug = await client.execute('slug', { text: 'Hello Init World' }, { wait: 20_000 });
    expect(slug).toMatchObject({ state: 'completed', result: { slug: 'hello-init-world' } });
    const hello = await client.execute('hello', { who: 'Ada' }, { wait: 20_000 });
    expect(hello).toMatchObject({ state: 'completed', result: { greeting: 'Hello, Ada!', count: 1 } });

    expect(await node.stop()).toBe(0);
    expect(node.lines.some((l) => l.msg === 'node stopping')).toBe(true);
  }, 300_000);
});

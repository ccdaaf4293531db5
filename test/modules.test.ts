/**
 * Finding and loading user modules (jobs/, lifecycle/), without Redis: which files count and under
 * what name, and how a module without a default export or one that throws is reported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModuleLoadError } from '../src/errors.js';
import { importDefault, listModules } from '../src/modules.js';

let dir: string;

function write(relative: string, text = 'export default 1;\n'): string {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-modules-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('listModules', () => {
  it('lists .ts, .mts, .js and .mjs files recursively, named by their path without extension, sorted', () => {
    const root = path.join(dir, 'list');
    for (const f of ['b.ts', 'a.mjs', 'c.js', 'd.mts', 'sub/inner.ts', 'sub/deeper/leaf.js']) {
      write(path.join('list', f));
    }
    expect(listModules(root)).toEqual([
      { name: 'a', file: path.join(root, 'a.mjs') },
      { name: 'b', file: path.join(root, 'b.ts') },
      { name: 'c', file: path.join(root, 'c.js') },
      { name: 'd', file: path.join(root, 'd.mts') },
      { name: 'sub/deeper/leaf', file: path.join(root, 'sub', 'deeper', 'leaf.js') },
      { name: 'sub/inner', file: path.join(root, 'sub', 'inner.ts') },
    ]);
  });

  it('skips declaration files, other extensions, dot files and folders, and node_modules', () => {
    const root = path.join(dir, 'skip');
    for (const f of [
      'kept.ts',
      'types.d.ts',
      'types.d.mts',
      'README.md',
      'data.json',
      'script.cjs',
      '.hidden.ts',
      '.cache/x.ts',
      'node_modules/dep/index.js',
    ]) {
      write(path.join('skip', f));
    }
    expect(listModules(root).map((m) => m.name)).toEqual(['kept']);
  });

  it('lists nothing for a folder that does not exist', () => {
    expect(listModules(path.join(dir, 'absent'))).toEqual([]);
  });

  it('throws for a path that is a file, not a folder', () => {
    const file = write('not-a-folder.ts');
    expect(() => listModules(file)).toThrow(/ENOTDIR/);
  });
});

describe('importDefault', () => {
  it('returns the default export', async () => {
    const file = write('load/value.mjs', 'export default { answer: 42 };\n');
    expect(await importDefault(file, 0)).toEqual({ answer: 42 });
  });

  it('refuses a module without a default export, naming the file', async () => {
    const file = write('load/named.mjs', 'export const x = 1;\n');
    const err = await importDefault(file, 0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModuleLoadError);
    expect(err).toMatchObject({ code: 'MODULE_LOAD_FAILED', details: { file } });
    expect(String((err as Error).message)).toContain(file);
    expect(String((err as Error).message)).toMatch(/no default export/);
  });

  it('reports a module that throws while loading as ModuleLoadError with the reason', async () => {
    const file = write('load/throws.mjs', 'throw new RangeError("bad module");\n');
    const err = await importDefault(file, 0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModuleLoadError);
    expect(String((err as Error).message)).toMatch(/failed to load: RangeError: bad module/);
  });
});

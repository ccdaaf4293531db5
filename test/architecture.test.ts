/**
 * The structure rules of docs/ARCHITECTURE.md, checked on the source itself: the import graph under
 * src/ has no cycle (type imports included), only node.ts sees the whole node, big files say why they
 * are big, and nothing points outside the repository.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const srcDir = path.join(root, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      return sourceFiles(full);
    }
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

const files = sourceFiles(srcDir);
const rel = (file: string): string => path.relative(root, file);

/** Every relative import of a file (static, type-only and re-exports alike), as source file paths. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((ref) => ref.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) =>
      path
        .resolve(path.dirname(file), spec)
        .replace(/\.js$/, '.ts')
        .replace(/\.mjs$/, '.mts'),
    )
    .filter((target) => fs.existsSync(target));
}

const graph = new Map(files.map((file) => [file, importsOf(file)]));

/** One cycle of the import graph, found by depth-first search, as relative paths; undefined when none. */
function findCycle(): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        return [...stack.slice(stack.indexOf(next)), next].map(rel);
      }
      if (!state.has(next)) {
        const found = visit(next);
        if (found) {
          return found;
        }
      }
    }
    stack.pop();
    state.set(file, 'done');
    return undefined;
  };
  for (const file of files) {
    if (!state.has(file)) {
      const found = visit(file);
      if (found) {
        return found;
      }
    }
  }
  return undefined;
}

describe('source structure', () => {
  it('reads the source tree', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(graph.get(path.join(srcDir, 'node.ts'))?.length).toBeGreaterThan(5);
  });

  it('has no import cycle, type imports included', () => {
    expect(findCycle()).toBeUndefined();
  });

  it('lets only node.ts (and the public entry points) import node.ts', () => {
    const allowed = new Set(['src/index.ts', 'src/start.ts'].map((f) => path.join(root, f)));
    const importers = files.filter(
      (file) => !allowed.has(file) && graph.get(file)?.includes(path.join(srcDir, 'node.ts')),
    );
    expect(importers.map(rel)).toEqual([]);
  });

  it('keeps files under about 400 lines unless their opening comment says why ("… is long because …")', () => {
    const long = files.filter((file) => {
      const text = fs.readFileSync(file, 'utf8');
      const head = text.slice(0, 1500);
      return (
        text.split('\n').length > 420 &&
        !/why (this file|it) is (long|large)|is long because|longer than \d+ lines because/i.test(head)
      );
    });
    expect(long.map(rel)).toEqual([]);
  });

  it('points at nothing outside the repository', () => {
    const walk = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const full = path.join(dir, e.name);
        return e.isDirectory() ? walk(full) : [full];
      });
    const product = [...walk(srcDir), ...walk(path.join(root, 'bin')), ...walk(path.join(root, 'docs'))];
    const outside = [...product, path.join(root, 'README.md')].filter((file) =>
      /SPEC\.md|DESIGN\.md|STYLE\.md|\.\.\/shared/.test(fs.readFileSync(file, 'utf8')),
    );
    expect(outside.map(rel)).toEqual([]);
  });
});

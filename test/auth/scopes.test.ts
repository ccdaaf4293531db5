/** Scopes and `execute:PATTERN`: what a caller's grants allow. */
import { describe, expect, it } from 'vitest';
import { Grants, SCOPES, scopeProblem } from '../../src/auth/scopes.js';

describe('scopes', () => {
  it('knows the five scopes and execute:PATTERN', () => {
    for (const scope of [...SCOPES, 'execute:reports/*', 'execute:**', 'execute:a/**', 'execute:x-*_y']) {
      expect(scopeProblem(scope)).toBeUndefined();
    }
    expect(scopeProblem('write')).toMatch(/unknown scope "write"/);
    expect(scopeProblem('execute:')).toMatch(/bad procedure pattern/);
    expect(scopeProblem('execute:../x')).toMatch(/bad procedure pattern/);
    expect(scopeProblem('execute:a//b')).toMatch(/bad procedure pattern/);
    expect(scopeProblem('read:x')).toMatch(/unknown scope/);
    expect(() => new Grants(['read', 'nope'])).toThrow(/unknown scope "nope"/);
  });

  it('holds what it lists and nothing more', () => {
    const grants = new Grants(['read', 'control']);
    expect(grants.has('read')).toBe(true);
    expect(grants.has('control')).toBe(true);
    expect(grants.has('execute')).toBe(false);
    expect(grants.has('admin')).toBe(false);
    expect(grants.has('storage:write')).toBe(false);
    expect(grants.allowsProcedure('hello')).toBe(false);
    const all = Grants.all();
    expect(SCOPES.every((s) => all.has(s))).toBe(true);
    expect(all.allowsProcedure('any/thing')).toBe(true);
  });

  it('a bare execute allows every procedure', () => {
    const grants = new Grants(['execute', 'execute:reports/*']);
    expect(grants.allowsProcedure('billing/send')).toBe(true);
    expect(grants.allowsProcedure('hello')).toBe(true);
  });

  it('execute:reports/* allows the procedures of one folder, * staying within a segment', () => {
    const grants = new Grants(['read', 'execute:reports/*']);
    expect(grants.has('execute')).toBe(true);
    expect(grants.allowsProcedure('reports/daily')).toBe(true);
    expect(grants.allowsProcedure('reports/weekly-sum')).toBe(true);
    expect(grants.allowsProcedure('reports')).toBe(false);
    expect(grants.allowsProcedure('reports/eu/daily')).toBe(false);
    expect(grants.allowsProcedure('billing/daily')).toBe(false);
    expect(grants.allowsProcedure('xreports/daily')).toBe(false);
  });

  it('** spans segments; several patterns add up; a pattern is not a regular expression', () => {
    const grants = new Grants(['execute:reports/**', 'execute:hello', 'execute:task-*']);
    expect(grants.allowsProcedure('reports/eu/daily')).toBe(true);
    expect(grants.allowsProcedure('reports/daily')).toBe(true);
    expect(grants.allowsProcedure('hello')).toBe(true);
    expect(grants.allowsProcedure('hello2')).toBe(false);
    expect(grants.allowsProcedure('task-1')).toBe(true);
    expect(grants.allowsProcedure('task/1')).toBe(false);
    expect(new Grants(['execute:**']).allowsProcedure('a/b/c')).toBe(true);
  });
});

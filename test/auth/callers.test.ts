/** The callers file and the check of a request's token against SPROCD_TOKEN and the file's callers. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CallerDirectory } from '../../src/auth/callers.js';
import { parseCallersFile } from '../../src/auth/callers-file.js';
import { tokenSha256 } from '../../src/auth/tokens.js';
import { ConfigError, UnauthorizedError } from '../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-callers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CI_TOKEN = 'ci-token-0123456789';
const OPS_TOKEN = 'ops-token-0123456789';
const ADMIN_TOKEN = 'admin-token-0123456789';

function writeFile(callers: unknown[], name = 'callers.json'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify({ callers }));
  return file;
}

const ci = { name: 'ci', tokenSha256: tokenSha256(CI_TOKEN), scopes: ['read', 'execute:reports/*'] };
const ops = { name: 'ops', tokenSha256: tokenSha256(OPS_TOKEN).toUpperCase(), scopes: ['read', 'control'] };

describe('the callers file', () => {
  it('reads named callers with their digests and scopes', () => {
    expect(parseCallersFile(JSON.stringify({ callers: [ci, ops] }), 'f')).toEqual([
      ci,
      { ...ops, tokenSha256: tokenSha256(OPS_TOKEN) },
    ]);
  });

  it.each([
    ['not JSON', '{callers', /not JSON/],
    ['no callers list', '{"people":[]}', /the file must be \{"callers"/],
    ['a bad name', JSON.stringify({ callers: [{ ...ci, name: 'c i' }] }), /caller "c i": name: use 1-64/],
    ['a reserved name', JSON.stringify({ callers: [{ ...ci, name: 'SPROCD_TOKEN' }] }), /taken by sprocd/],
    [
      'a digest that is not hex',
      JSON.stringify({ callers: [{ ...ci, tokenSha256: 'x' }] }),
      /SHA-256 of the token/,
    ],
    ['no scope', JSON.stringify({ callers: [{ ...ci, scopes: [] }] }), /at least one scope/],
    ['an unknown scope', JSON.stringify({ callers: [{ ...ci, scopes: ['root'] }] }), /unknown scope "root"/],
    ['an unknown field', JSON.stringify({ callers: [{ ...ci, role: 'x' }] }), /Unrecognized key/],
    ['a name twice', JSON.stringify({ callers: [ci, { ...ops, name: 'ci' }] }), /listed twice/],
    [
      'a token twice',
      JSON.stringify({ callers: [ci, { ...ops, tokenSha256: ci.tokenSha256 }] }),
      /same token/,
    ],
  ])('refuses %s, naming the file and the caller', (_label, text, problem) => {
    let error: unknown;
    try {
      parseCallersFile(text, '/etc/sprocd/callers.json');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^Bad SPROCD_CALLERS_FILE \/etc\/sprocd\/callers.json:/);
    expect((error as Error).message).toMatch(problem);
    // A digest is never shown.
    expect((error as Error).message).not.toMatch(/[0-9a-f]{64}/i);
  });

  it('refuses a raw token in the file, without printing it', () => {
    const text = JSON.stringify({ callers: [{ name: 'ci', token: CI_TOKEN, scopes: ['read'] }] });
    expect(() => parseCallersFile(text, 'f')).toThrow(/holds a "token"; the file keeps only its tokenSha256/);
    expect(() => parseCallersFile(text, 'f')).not.toThrow(new RegExp(CI_TOKEN));
  });
});

describe('CallerDirectory', () => {
  it('names the caller of each token: SPROCD_TOKEN and the file callers', () => {
    const callers = new CallerDirectory({ token: ADMIN_TOKEN, file: writeFile([ci, ops]) });
    expect(callers.open).toBe(false);
    expect(callers.size).toBe(3);
    const admin = callers.authenticate(`Bearer ${ADMIN_TOKEN}`);
    expect(admin.name).toBe('SPROCD_TOKEN');
    expect(admin.grants.has('admin')).toBe(true);
    const c = callers.authenticate(`bearer ${CI_TOKEN}`);
    expect(c.name).toBe('ci');
    expect(c.grants.has('read')).toBe(true);
    expect(c.grants.has('control')).toBe(false);
    expect(callers.authenticate(`Bearer ${OPS_TOKEN}`).name).toBe('ops');
  });

  it('401 for no header, a malformed one, and an unknown token', () => {
    const callers = new CallerDirectory({ file: writeFile([ci]) });
    for (const header of [
      undefined,
      '',
      CI_TOKEN,
      `Basic ${CI_TOKEN}`,
      `Bearer ${CI_TOKEN}x`,
      'Bearer',
      `Bearer ${ADMIN_TOKEN}`,
    ]) {
      expect(() => callers.authenticate(header)).toThrow(UnauthorizedError);
    }
  });

  it('without any token: one loopback caller with every right', () => {
    const callers = new CallerDirectory({});
    expect(callers.open).toBe(true);
    const caller = callers.authenticate(undefined);
    expect(caller.name).toBe('loopback');
    expect(caller.grants.has('admin')).toBe(true);
  });

  it('reload() reads the file again; a bad file throws and the previous callers stay', () => {
    const file = writeFile([ci], 'reload.json');
    const callers = new CallerDirectory({ file });
    expect(callers.authenticate(`Bearer ${CI_TOKEN}`).name).toBe('ci');
    writeFile([ops], 'reload.json');
    expect(callers.reload()).toBe(1);
    expect(() => callers.authenticate(`Bearer ${CI_TOKEN}`)).toThrow(UnauthorizedError);
    expect(callers.authenticate(`Bearer ${OPS_TOKEN}`).name).toBe('ops');
    fs.writeFileSync(file, '{"callers":[{"name":"x"}]}');
    expect(() => callers.reload()).toThrow(ConfigError);
    expect(callers.authenticate(`Bearer ${OPS_TOKEN}`).name).toBe('ops');
  });

  it('a missing file stops the start with its path', () => {
    expect(() => new CallerDirectory({ file: path.join(dir, 'none.json') })).toThrow(
      /SPROCD_CALLERS_FILE .*none\.json cannot be read: ENOENT/,
    );
  });
});

/** The Lua loader: file names, headers, includes, versioned command names, one wrapper per script. */
import fs from 'node:fs';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import * as scripts from '../../src/redis/scripts.js';

const LUA_DIR = new URL('../../src/redis/lua/', import.meta.url);
const loaded = scripts.loadScripts();

describe('Lua scripts', () => {
  it('every file of src/redis/lua is a script named name-<numberOfKeys>.lua (or an include)', () => {
    const files = fs.readdirSync(LUA_DIR).filter((f) => f !== 'includes');
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(file).toMatch(/^[a-z][A-Za-z]*-(\d+|n)\.lua$/);
    }
    expect([...loaded.keys()].sort()).toEqual(files.map((f) => f.replace(/-(\d+|n)\.lua$/, '')).sort());
  });

  it('each opens with an Input/Output header naming exactly its fixed keys', () => {
    for (const script of loaded.values()) {
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(script.lua)?.[1] ?? '';
      expect(header, script.name).toMatch(/\n\s*Input:\n/);
      expect(header, script.name).toMatch(/\n\s*Output:\n/);
      if (script.numberOfKeys !== undefined) {
        const named = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
        expect(Math.max(...named), script.name).toBe(script.numberOfKeys);
      }
    }
  });

  it('includes are resolved, each once', () => {
    const acquire = loaded.get('lockAcquire');
    expect(acquire?.lua).not.toMatch(/^--- @include/m);
    expect(acquire?.lua.match(/local function promote\(/g)).toHaveLength(1);
  });

  it('command names carry a version taken from the text, and differ', () => {
    const commands = [...loaded.values()].map((s) => s.command);
    for (const script of loaded.values()) {
      expect(script.command).toMatch(new RegExp(`^sprocd:${script.name}:[0-9a-f]{8}$`));
    }
    expect(new Set(commands).size).toBe(commands.length);
  });

  it('each script has its typed wrapper, named after it', () => {
    for (const name of loaded.keys()) {
      expect(typeof (scripts as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('registers every script on a connection once, under its versioned name', () => {
    const redis = new Redis({ lazyConnect: true });
    scripts.defineScripts(redis);
    scripts.defineScripts(redis);
    for (const script of loaded.values()) {
      expect(typeof (redis as unknown as Record<string, unknown>)[script.command]).toBe('function');
    }
    redis.disconnect();
  });
});

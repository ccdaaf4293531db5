/**
 * The session's Lua scripts, kept as .lua files beside this module, and a small runner that calls
 * them by SHA and loads them on NOSCRIPT (after a Redis restart, or the first time). The runner does
 * not register commands on the shared connection, so other modules' scripts cannot clash with ours.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

function load(name: string): string {
  return fs.readFileSync(fileURLToPath(new URL(`./${name}.lua`, import.meta.url)), 'utf8');
}

/** One Lua script, run with EVALSHA and loaded with EVAL when Redis does not know it yet. */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script with `keys` and `args` on `redis`. */
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return await redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

const promote = load('promote');
const withPromote = (name: string) => new LuaScript(name, `${promote}\n${load(name)}`);

/** The scripts of the session, by what they do. */
export const scripts = {
  acquire: withPromote('acquire'),
  commit: withPromote('commit'),
  recheck: withPromote('recheck'),
  cancel: withPromote('cancel'),
  heartbeat: new LuaScript('heartbeat', load('heartbeat')),
  identity: new LuaScript('identity', load('identity')),
} as const;

/**
 * The embedded Redis: a private `redis-server` child process for a node started without REDIS_URL,
 * and for the test setup. AOF is on so that acknowledged work survives a crash of either process.
 * A node's embedded Redis requires a password generated at each start (another local user could
 * otherwise connect to 127.0.0.1 and read or change everything), handed to redis-server on its
 * standard input so that it never shows in the process list; its folder is the owner's only (0700).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { formatUnixUrl } from './unix-url.js';
import { SprocdError } from '../errors.js';

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Folder for the AOF, the pid file and the log. Created when missing. */
  dir: string;
  /** TCP port on 127.0.0.1. @defaultValue a free port */
  port?: number;
  /** Keep an append-only file. @defaultValue true */
  appendonly?: boolean;
  /** AOF fsync policy. @defaultValue "always" (an acknowledged execution survives a crash) */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** The binary. @defaultValue "redis-server" from PATH */
  binary?: string;
  /** More redis-server arguments (tests: a password, TLS). */
  args?: string[];
  /**
   * The password clients must give (`requirepass`); `true` generates one (a node's embedded Redis).
   * `url` then carries it. @defaultValue none
   */
  password?: string | true;
  /** Also listen on `<dir>/redis.sock` (mode 700), given as `socketUrl`. @defaultValue false */
  unixSocket?: boolean;
}

/** A running redis-server child. */
export interface RedisServer {
  readonly url: string;
  /**
   * `unix://` URL of its socket, with the password, when started with `unixSocket` and the folder's
   * path is short enough; a node on the same machine reaches it faster so than over TCP.
   */
  readonly socketUrl: string | undefined;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, for fault tests. */
  kill(): Promise<void>;
  /** Starts it again on the same port and folder after stop() or kill(). */
  restart(): Promise<void>;
}

/** redis-server is missing from PATH. */
export class RedisServerMissingError extends SprocdError {
  constructor() {
    super(
      'REDIS_SERVER_MISSING',
      'No REDIS_URL is set and no redis-server is on PATH. Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:6379.',
    );
  }
}

/** Whether a `redis-server` binary can be found on PATH. */
export function hasRedisServerOnPath(binary = 'redis-server'): boolean {
  try {
    execFileSync(binary, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The longest Unix socket path the kernel takes (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** The longest field value a Redis hash keeps in its compact encoding (Redis's default: 64). */
export const HASH_MAX_LISTPACK_VALUE = 256;

/** Starts a redis-server child and resolves once it accepts connections. */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const binary = options.binary ?? 'redis-server';
  if (!hasRedisServerOnPath(binary)) {
    throw new RedisServerMissingError();
  }
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An older folder may be wider: the AOF holds the whole session.
  fs.chmodSync(dir, 0o700);
  reapOrphan(dir);
  const password = options.password === true ? randomBytes(24).toString('hex') : options.password;
  let port = options.port ?? (await freePort());
  // A Unix socket beside the data (sun_path holds at most 107 bytes; a longer folder keeps TCP alone).
  let socketPath =
    options.unixSocket && Buffer.byteLength(path.join(dir, 'redis.sock')) <= MAX_SOCKET_PATH
      ? path.join(dir, 'redis.sock')
      : undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    // With a password, the configuration comes first on standard input ("-"), never in argv.
    const args = [
      ...(password === undefined ? [] : ['-']),
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      options.appendonly === false ? 'no' : 'yes',
      '--appendfsync',
      options.appendfsync ?? 'always',
      '--pidfile',
      path.join(dir, 'redis.pid'),
      '--logfile',
      '',
      '--daemonize',
      'no',
      // A waiting execution's job hash holds its params and ids in fields of 100-200 bytes: past
      // Redis's default 64 the hash leaves the compact listpack encoding and costs about twice the
      // memory (docs/BENCHMARKS.md, "A million executions").
      '--hash-max-listpack-value',
      String(HASH_MAX_LISTPACK_VALUE),
      ...(socketPath === undefined ? [] : ['--unixsocket', socketPath, '--unixsocketperm', '700']),
      ...(options.args ?? []),
    ];
    // Its own process group: a Ctrl-C in the terminal (SIGINT to the whole foreground group) must reach
    // only the node, which still needs Redis for onServerShutdown and to give work back; the node
    // stops this server last.
    const proc = spawn(binary, args, {
      stdio: [password === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    proc.stdin?.on('error', () => undefined); // an early exit is reported below
    proc.stdin?.end(`requirepass ${password}\n`);
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          proc.stdout?.off('data', onData);
          proc.stdout?.resume();
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      proc.once('exit', (code) =>
        reject(
          new SprocdError(
            'REDIS_SERVER_FAILED',
            `redis-server exited (${code}) before it was ready: ${output.trim().slice(-500)}`,
          ),
        ),
      );
    });
    fs.writeFileSync(path.join(dir, 'port'), String(port));
  };

  try {
    await launch();
  } catch (err) {
    if (socketPath !== undefined && /unix ?socket/i.test((err as Error).message)) {
      // A file system without sockets (some container bind mounts): TCP alone, as before.
      socketPath = undefined;
    } else if (options.port === undefined) {
      // The free port was taken between the probe and the start: one more try on another.
      port = await freePort();
    } else {
      throw err;
    }
    await launch();
  }

  const signal = async (sig: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };

  return {
    get url() {
      return password === undefined
        ? `redis://127.0.0.1:${port}`
        : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get socketUrl() {
      return socketPath === undefined ? undefined : formatUnixUrl({ path: socketPath, password });
    },
    get pid() {
      return child?.pid ?? 0;
    },
    dir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      await launch();
    },
  };
}

/**
 * A node killed with SIGKILL cannot stop its redis-server child, which lives on with the AOF open.
 * The next start in the same folder stops such an orphan (its parent is gone) before starting anew;
 * a redis-server whose parent is still alive belongs to another running node, and we refuse to share it.
 */
function reapOrphan(dir: string): void {
  const pidFile = path.join(dir, 'redis.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) {
    return;
  }
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return; // not running (or no /proc: nothing we can check)
  }
  if (!stat.includes('(redis-server)') && !stat.includes('(redis-serv')) {
    return;
  }
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  if (ppid !== 1 && fs.existsSync(`/proc/${ppid}`)) {
    throw new SprocdError(
      'REDIS_DIR_IN_USE',
      `${dir} is used by the redis-server of another running node (pid ${pid}). To run several nodes, give them one Redis with REDIS_URL.`,
    );
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/**
 * `REDIS_URL=unix:///path/to/redis.sock[?db=N&password=...]`: Redis on a Unix socket of the same
 * machine. On loopback TCP the socket write is a node's largest cost per execution; a Unix socket
 * skips the TCP stack (docs/BENCHMARKS.md, "Redis on a Unix socket"). The form is redis-py's and
 * Lettuce's: the password goes in the query, since a URL's user part needs a host.
 */

/** A Unix-socket Redis address. */
export interface UnixTarget {
  path: string;
  db?: number;
  username?: string;
  password?: string;
}

/** Whether `url` names Redis on a Unix socket. */
export function isUnixUrl(url: string): boolean {
  return url.startsWith('unix://');
}

/** The socket path and options of a `unix://` URL; throws a message that says what is wrong. */
export function parseUnixUrl(url: string): UnixTarget {
  const rest = url.slice('unix://'.length);
  const q = rest.indexOf('?');
  const socketPath = decodeURIComponent(q === -1 ? rest : rest.slice(0, q));
  if (!socketPath.startsWith('/')) {
    throw new Error('a unix:// URL names an absolute socket path: unix:///run/redis/redis.sock');
  }
  const target: UnixTarget = { path: socketPath };
  const query = new URLSearchParams(q === -1 ? '' : rest.slice(q + 1));
  for (const [key, value] of query) {
    if (key === 'db') {
      if (!/^\d{1,5}$/.test(value)) {
        throw new Error(`db must be a whole number, not "${value}"`);
      }
      target.db = Number(value);
    } else if (key === 'password') {
      target.password = value;
    } else if (key === 'username') {
      target.username = value;
    } else {
      throw new Error(`a unix:// URL takes db, username and password, not "${key}"`);
    }
  }
  return target;
}

/** The URL with its password hidden, for logs. */
export function redactUnixUrl(url: string): string {
  return url.replace(/([?&]password=)[^&]*/, '$1***');
}

/** The `unix://` URL of `target` (the embedded Redis hands its socket to the node so). */
export function formatUnixUrl(target: UnixTarget): string {
  const query = new URLSearchParams();
  if (target.db !== undefined) {
    query.set('db', String(target.db));
  }
  if (target.username !== undefined) {
    query.set('username', target.username);
  }
  if (target.password !== undefined) {
    query.set('password', target.password);
  }
  const q = query.toString();
  return `unix://${encodeURI(target.path)}${q ? `?${q}` : ''}`;
}

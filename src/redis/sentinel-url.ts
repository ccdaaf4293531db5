/**
 * The Sentinel form of REDIS_URL: `redis+sentinel://[user:password@]host1:26379,host2:26379/mymaster
 * [?db=0&sentinelUsername=...&sentinelPassword=...]` (`rediss+sentinel://` for TLS to the sentinels and
 * the data nodes). WHATWG's URL cannot read a list of hosts, so this module parses and prints the form
 * itself; the user and password are those of the master and replicas, the sentinels have their own.
 */

/** One sentinel's address. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** What a Sentinel URL names. */
export interface SentinelTarget {
  sentinels: SentinelAddress[];
  /** The master group name the sentinels monitor. */
  name: string;
  username?: string;
  password?: string;
  db: number;
  sentinelUsername?: string;
  sentinelPassword?: string;
  tls: boolean;
}

/** The sentinels' port when an address has none (Redis Sentinel's own default). */
export const DEFAULT_SENTINEL_PORT = 26379;

const FORM = /^(rediss?)\+sentinel:\/\/(?:([^@/]*)@)?([^/?#@]+)\/([^/?#\s,]+)\/?(?:\?([^#]*))?$/;
const QUERY_KEYS = new Set(['db', 'sentinelUsername', 'sentinelPassword']);

/** Whether `url` is in the Sentinel form (it may still be malformed: see {@link parseSentinelUrl}). */
export function isSentinelUrl(url: string): boolean {
  return /^rediss?\+sentinel:\/\//i.test(url.trim());
}

/** Reads a Sentinel URL; throws an Error whose message says what is wrong (never the password). */
export function parseSentinelUrl(url: string): SentinelTarget {
  const m = FORM.exec(url.trim());
  if (!m) {
    throw new Error(
      'must look like redis+sentinel://[user:password@]host:26379[,host:26379...]/mastername[?db=0&sentinelPassword=...]',
    );
  }
  const [, scheme, userinfo, hostList, rawName, query] = m as unknown as [
    string,
    string,
    string | undefined,
    string,
    string,
    string | undefined,
  ];
  const target: SentinelTarget = {
    sentinels: hostList.split(',').map((a) => parseAddress(a)),
    name: decode(rawName, 'the master name'),
    db: 0,
    tls: scheme === 'rediss',
  };
  Object.assign(target, parseUserinfo(userinfo));
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    if (!QUERY_KEYS.has(key)) {
      throw new Error(`unknown parameter "${key}" (known: ${[...QUERY_KEYS].join(', ')})`);
    }
    if (key === 'db') {
      if (!/^\d{1,5}$/.test(value)) {
        throw new Error('db must be a whole number');
      }
      target.db = Number(value);
    } else if (value !== '') {
      target[key as 'sentinelUsername' | 'sentinelPassword'] = value;
    }
  }
  return target;
}

/** Prints `target` as a Sentinel URL (what the SPROCD_SENTINELS settings become). */
export function formatSentinelUrl(target: SentinelTarget): string {
  const userinfo = formatUserinfo(target.username, target.password);
  const hosts = formatAddresses(target.sentinels);
  const query = new URLSearchParams();
  if (target.db !== 0) {
    query.set('db', String(target.db));
  }
  if (target.sentinelUsername !== undefined) {
    query.set('sentinelUsername', target.sentinelUsername);
  }
  if (target.sentinelPassword !== undefined) {
    query.set('sentinelPassword', target.sentinelPassword);
  }
  const q = query.toString();
  return `${target.tls ? 'rediss' : 'redis'}+sentinel://${userinfo}${hosts}/${encodeURIComponent(target.name)}${q ? `?${q}` : ''}`;
}

/** `url` fit for a log line: no password of the data nodes or of the sentinels. */
export function redactSentinelUrl(url: string): string {
  try {
    const target = parseSentinelUrl(url);
    if (target.password !== undefined) {
      target.password = '***';
    }
    if (target.sentinelPassword !== undefined) {
      target.sentinelPassword = '***';
    }
    return formatSentinelUrl(target).replaceAll('%2A%2A%2A', '***');
  } catch {
    return '[unparsable url]';
  }
}

/** What an address list holds, for {@link parseAddress}: the port an address without one gets, and its name. */
export interface AddressKind {
  defaultPort: number;
  /** "sentinel", "cluster node": the error message says what the address should have been. */
  noun: string;
}

const SENTINEL: AddressKind = { defaultPort: DEFAULT_SENTINEL_PORT, noun: 'sentinel' };

/** The user and password of a URL's `user:password` part (absent ones, and empty ones, left out). */
export function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined || userinfo === '') {
    return {};
  }
  const colon = userinfo.indexOf(':');
  const username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), 'the user');
  const password = colon < 0 ? '' : decode(userinfo.slice(colon + 1), 'the password');
  return { ...(username === '' ? {} : { username }), ...(password === '' ? {} : { password }) };
}

/** `text` percent-decoded; a message naming `what` when it is not valid percent-encoding. */
function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Error(`${what} is not valid percent-encoding`);
  }
}

/** A URL's `user:password@` (empty when neither is given), encoded. */
export function formatUserinfo(username: string | undefined, password: string | undefined): string {
  if (username === undefined && password === undefined) {
    return '';
  }
  return `${encodeURIComponent(username ?? '')}${password === undefined ? '' : `:${encodeURIComponent(password)}`}@`;
}

/** `host:port,host:port`, an IPv6 host in brackets: the inverse of {@link parseAddress} over a list. */
export function formatAddresses(addresses: readonly SentinelAddress[]): string {
  return addresses.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`).join(',');
}

/**
 * `host:port`, `host` or `[v6]:port`: one address of SPROCD_SENTINELS or of the Sentinel URL's list
 * (or, with `kind`, of another list of addresses: ./cluster-url.ts).
 */
export function parseAddress(text: string, kind: AddressKind = SENTINEL): SentinelAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[3] === undefined ? kind.defaultPort : Number(m[3]);
  if (!m || port < 1 || port > 65535) {
    throw new Error(
      `"${text.trim()}" is not a ${kind.noun} address (host:port, e.g. 10.0.0.5:${kind.defaultPort})`,
    );
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

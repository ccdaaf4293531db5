/**
 * The Redis Cluster form of REDIS_URL: `redis+cluster://[user:password@]host:6379[,host:6379...]`
 * (`rediss+cluster://` for TLS to every node). The hosts are startup nodes: any few of the Cluster's
 * nodes, from which the client learns the rest (CLUSTER SLOTS). A Cluster has only database 0, so the
 * form takes no `db`. WHATWG's URL cannot read a list of hosts, so this module parses and prints the
 * form itself, as ./sentinel-url.ts does for Sentinel's.
 */
import {
  formatAddresses,
  formatUserinfo,
  parseAddress,
  parseUserinfo,
  type AddressKind,
  type SentinelAddress,
} from './sentinel-url.js';

/** What a Cluster URL names. */
export interface ClusterTarget {
  /** The startup nodes. */
  nodes: SentinelAddress[];
  username?: string;
  password?: string;
  tls: boolean;
}

/** A node's port when an address has none (Redis's own default). */
export const DEFAULT_CLUSTER_PORT = 6379;

export const CLUSTER_NODE: AddressKind = { defaultPort: DEFAULT_CLUSTER_PORT, noun: 'cluster node' };

const FORM = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)\/?(?:\?([^#]*))?$/;

/** Whether `url` is in the Cluster form (it may still be malformed: see {@link parseClusterUrl}). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url.trim());
}

/** Reads a Cluster URL; throws an Error whose message says what is wrong (never the password). */
export function parseClusterUrl(url: string): ClusterTarget {
  const m = FORM.exec(url.trim());
  if (!m) {
    throw new Error('must look like redis+cluster://[user:password@]host:6379[,host:6379...]');
  }
  const [, scheme, userinfo, hostList, query] = m as unknown as [
    string,
    string,
    string | undefined,
    string,
    string | undefined,
  ];
  const target: ClusterTarget = {
    nodes: hostList.split(',').map((a) => parseAddress(a, CLUSTER_NODE)),
    tls: scheme === 'rediss',
  };
  Object.assign(target, parseUserinfo(userinfo));
  for (const [key] of new URLSearchParams(query ?? '')) {
    throw new Error(
      key === 'db'
        ? 'a Redis Cluster has only database 0: drop db'
        : `unknown parameter "${key}" (a Cluster URL takes none; rediss+cluster:// for TLS)`,
    );
  }
  return target;
}

/** Prints `target` as a Cluster URL (what SPROCD_CLUSTER_NODES becomes). */
export function formatClusterUrl(target: ClusterTarget): string {
  const userinfo = formatUserinfo(target.username, target.password);
  const hosts = formatAddresses(target.nodes);
  return `${target.tls ? 'rediss' : 'redis'}+cluster://${userinfo}${hosts}`;
}

/** `url` fit for a log line: no password. */
export function redactClusterUrl(url: string): string {
  try {
    const target = parseClusterUrl(url);
    if (target.password !== undefined) {
      target.password = '***';
    }
    return formatClusterUrl(target).replaceAll('%2A%2A%2A', '***');
  } catch {
    return '[unparsable url]';
  }
}

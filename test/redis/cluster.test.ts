/**
 * Redis Cluster without a Cluster: the URL, SPROCD_CLUSTER_NODES, redaction, ioredis's options, the
 * deployment slot, and the errors of a fail-over. The Cluster itself is test/cluster (.ci/cluster-test).
 */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { redactUrl } from '../../src/logger.js';
import { slotOf } from '../../src/redis/cluster.js';
import { isRedisError } from '../../src/redis/errors.js';
import { formatClusterUrl, parseClusterUrl } from '../../src/redis/cluster-url.js';
import { clusterOptions } from '../../src/redis/connections.js';
import { createKeys } from '../../src/redis/keys.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadSettings(env, '/srv/app');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return ((err as ConfigError).details as { problems: string[] }).problems;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('the redis+cluster:// URL', () => {
  it('names the startup nodes and the nodes’ credentials', () => {
    expect(parseClusterUrl('redis+cluster://app:p%40ss@10.0.0.1:7000,node-b,[::1]:7002')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'node-b', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: false,
    });
    expect(parseClusterUrl('rediss+cluster://:pw@h:1/')).toEqual({
      nodes: [{ host: 'h', port: 1 }],
      password: 'pw',
      tls: true,
    });
  });

  it('prints back what it reads', () => {
    const url = 'redis+cluster://app:p%40ss@10.0.0.1:7000,[::1]:7002';
    expect(formatClusterUrl(parseClusterUrl(url))).toBe(url);
  });

  it.each([
    ['redis+cluster://', /must look like redis\+cluster:\/\//],
    ['redis+cluster://h:7000,', /"" is not a cluster node address/],
    [
      'redis+cluster://h:99999',
      /"h:99999" is not a cluster node address \(host:port, e\.g\. 10\.0\.0\.5:6379\)/,
    ],
    ['redis+cluster://h:7000/m', /must look like/],
    ['redis+cluster://h?db=1', /only database 0/],
    ['redis+cluster://h?tls=1', /unknown parameter "tls".*rediss\+cluster/],
  ])('refuses %s', (url, message) => {
    expect(() => parseClusterUrl(url)).toThrow(message);
  });

  it('is a REDIS_URL; a bad one is one line naming REDIS_URL, without its password', () => {
    expect(loadSettings({ REDIS_URL: 'redis+cluster://a:1,b:2' }).redisUrl).toBe('redis+cluster://a:1,b:2');
    expect(problemsOf({ REDIS_URL: 'redis+cluster://u:secret@a:1?db=2' })).toEqual([
      'REDIS_URL=(hidden: it may hold credentials): a Redis Cluster has only database 0: drop db',
    ]);
    expect(problemsOf({ REDIS_URL: 'redis+cluster://u:secret@a:x' })[0]).not.toContain('secret');
  });

  it('is logged without the password', () => {
    expect(redactUrl('redis+cluster://u:secret@a:1,b:2')).toBe('redis+cluster://u:***@a:1,b:2');
  });

  it('becomes ioredis Cluster options: the role’s options on every node, masters only, no DNS lookup', () => {
    const { nodes, cluster } = clusterOptions('rediss+cluster://u:pw@a:1,b:2', 'command', {
      connectionName: 'sprocd:x:command',
      commandTimeout: 1500,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
    });
    expect(nodes).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    expect(cluster).toMatchObject({
      redisOptions: {
        connectionName: 'sprocd:x:command',
        commandTimeout: 1500,
        maxRetriesPerRequest: 1,
        username: 'u',
        password: 'pw',
        tls: {},
      },
      scaleReads: 'master',
      enableOfflineQueue: true,
      slotsRefreshTimeout: 1500,
    });
    expect(cluster.redisOptions).not.toHaveProperty('retryStrategy');
    expect(cluster.clusterRetryStrategy?.(1, new Error('down'))).toBe(100);
    expect(cluster.clusterRetryStrategy?.(50, new Error('down'))).toBe(2000);
    const looked: unknown[] = [];
    cluster.dnsLookup?.('redis.example', (err, address) => looked.push(err, address));
    expect(looked).toEqual([null, 'redis.example']);
  });

  it('lets the roles that wait forever ride through an election, the command role give up sooner', () => {
    const command = clusterOptions('redis+cluster://a:1', 'command', {}).cluster;
    const worker = clusterOptions('redis+cluster://a:1', 'worker', { maxRetriesPerRequest: null }).cluster;
    const span = (o: typeof command) => (o.retryDelayOnFailover ?? 0) * (o.maxRedirections ?? 0);
    expect(span(worker)).toBeGreaterThanOrEqual(20_000);
    expect(span(command)).toBeLessThan(span(worker));
    expect(worker.redisOptions).toMatchObject({ maxRetriesPerRequest: null });
  });
});

describe('SPROCD_CLUSTER_NODES', () => {
  it('becomes the Cluster URL', () => {
    const s = loadSettings({ SPROCD_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2' });
    expect(s.redisUrl).toBe('redis+cluster://10.0.0.1:7000,10.0.0.2:6379');
    expect(loadSettings({ SPROCD_CLUSTER_NODES: 'a:1', SPROCD_REPLICA_ACKS: '1' }).replicaAcks).toBe(1);
  });

  it.each([
    [
      { SPROCD_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://r:6379' },
      /^SPROCD_CLUSTER_NODES: give either SPROCD_CLUSTER_NODES, REDIS_URL or SPROCD_SENTINELS/,
    ],
    [
      { SPROCD_CLUSTER_NODES: 'a:1', SPROCD_SENTINELS: 's:26379', SPROCD_SENTINEL_MASTER: 'm' },
      /^SPROCD_CLUSTER_NODES: give either/,
    ],
    [{ SPROCD_CLUSTER_NODES: 'a:1,b:x' }, /^SPROCD_CLUSTER_NODES="a:1,b:x": "b:x" is not a cluster node/],
    [
      { SPROCD_CLUSTER_NODES: 'a:1', SPROCD_SENTINEL_PASSWORD: 'x' },
      /^SPROCD_SENTINEL_PASSWORD: needs SPROCD_SENTINELS/,
    ],
  ])('%j is refused in one line', (env, line) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(line);
  });
});

describe('the deployment slot', () => {
  it('is the one slot of every key of a deployment, BullMQ’s included', () => {
    const keys = createKeys('shop');
    const slot = slotOf(keys.sequence);
    for (const key of [keys.controlChannel, `${keys.bullPrefix}:procedures:wait`, keys.audit]) {
      expect(slotOf(key)).toBe(slot);
    }
    expect(slotOf('shop')).toBe(slot);
    // Redis's own answer (CLUSTER KEYSLOT foo is 12182 in its documentation).
    expect(slotOf('{foo}:seq')).toBe(12182);
  });
});

describe('a fail-over’s errors', () => {
  it.each([
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'Too many Cluster redirections. Last error: ReplyError: MOVED 15450 127.0.0.1:33491',
    "Cluster isn't ready and enableOfflineQueue options is false",
    'Failed to refresh slots cache.',
  ])('%s means Redis is unavailable (503), not a bug (500)', (message) => {
    expect(isRedisError(new Error(message))).toBe(true);
  });

  it('leaves the errors of a command alone', () => {
    expect(isRedisError(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(isRedisError(new Error('CROSSSLOT Keys in request don’t hash to the same slot'))).toBe(false);
  });
});

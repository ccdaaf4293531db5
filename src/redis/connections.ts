/**
 * Redis connections. A node opens one connection per role and shares it, so their number does not
 * grow with the work (docs/ARCHITECTURE.md#connections); this module makes each role's connection
 * with the options that role needs.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isClusterUrl, parseClusterUrl } from './cluster-url.js';
import { isUnixUrl, parseUnixUrl } from './unix-url.js';
import type { RedisConnection } from './redis-connection.js';
import { isSentinelUrl, parseSentinelUrl } from './sentinel-url.js';

// What acknowledges a write on a connection (./replica-acks.ts), for the parts that import this module.
export { acknowledged, type WriteAcks } from './replica-acks.js';
export type { RedisConnection } from './redis-connection.js';

/** The roles a node opens connections for. */
export type ConnectionRole = 'command' | 'worker' | 'subscriber' | 'events' | 'session';

/** Options for every connection of a node. */
export interface ConnectionOptions {
  url: string;
  /** A command that gets no answer within this fails (SPROCD_REDIS_TIMEOUT_MS). */
  timeoutMs: number;
  /** Names the connection in CLIENT LIST, which makes leaks easy to count. */
  name: string;
}

/**
 * Opens a connection for `role`.
 * - `command` connections fail a command after `timeoutMs` instead of queueing it while Redis is
 *   away, so no request hangs;
 * - `worker`, `subscriber`, `events` and `session` keep retrying forever (BullMQ needs
 *   `maxRetriesPerRequest: null` for blocking commands), so work resumes by itself when Redis is back.
 * A `redis+cluster://` URL gives a Cluster client (see {@link clusterOptions}); every other form one
 * connection to one server.
 */
export function openConnection(role: ConnectionRole, options: ConnectionOptions): RedisConnection {
  const base: RedisOptions = {
    connectionName: `${options.name}:${role}`,
    connectTimeout: Math.max(options.timeoutMs, 1000),
    lazyConnect: false,
  };
  const roleOptions: RedisOptions =
    role === 'command'
      ? { maxRetriesPerRequest: 1, commandTimeout: options.timeoutMs, enableOfflineQueue: true }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  let redis: RedisConnection;
  if (isClusterUrl(options.url)) {
    const { nodes, cluster } = clusterOptions(options.url, role, { ...base, ...roleOptions });
    redis = new Cluster(nodes, cluster);
  } else {
    const single = { ...base, retryStrategy: reconnectDelay, ...roleOptions };
    redis = isSentinelUrl(options.url)
      ? reconnectAfterEnd(new Redis({ ...single, ...sentinelOptions(options.url, options.timeoutMs) }))
      : isUnixUrl(options.url)
        ? new Redis({ ...single, ...parseUnixUrl(options.url) })
        : new Redis(options.url, single);
  }
  // ioredis emits 'error' on every failed reconnect; the node reports connection state through
  // system events and /readyz, so an unhandled 'error' must not crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Reconnect quickly at first, then at most every 2 s: a restarted Redis is picked up fast. */
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2000);
}

/**
 * Behind Sentinel a reconnect asks the sentinels for the master, and the answer changes the moment
 * they fail over: retrying every 250 ms at most leaves a connection on the new master within a
 * quarter second of the switch. With the 2 s cap of {@link reconnectDelay}, a connection that had
 * backed off during the election waited up to 2 s more (bench/failover.ts measured a stall of 1.1 s
 * beyond Sentinel's own time after a SIGKILL of the master).
 */
function sentinelReconnectDelay(times: number): number {
  return Math.min(50 * times, 250);
}

/**
 * ioredis's options for a Cluster URL (./cluster-url.ts): the startup nodes, and how the client
 * rides through a fail-over.
 * - `redisOptions` are each node connection's: the role's (time-out, retries per request), the URL's
 *   credentials and TLS. ioredis drops a node connection that breaks instead of reconnecting it, and
 *   learns the slots again (CLUSTER SLOTS) on the next MOVED or failed command;
 * - `scaleReads: 'master'`: every read goes to the master, so a read sees every acknowledged write
 *   (a replica may lag);
 * - while the master of the deployment's slot is down and its replica not yet elected, a command is
 *   tried again every `retryDelayOnFailover` up to `maxRedirections` times: for the roles that wait
 *   forever that spans an election of several seconds (cluster-node-timeout plus the vote), for the
 *   `command` role its time-out ends it first;
 * - `clusterRetryStrategy`: when no node at all answers, reconnect as a single connection does;
 * - `dnsLookup` passes host names through: with TLS a node's certificate names its host name, which a
 *   lookup to an address would lose (managed Clusters such as ElastiCache announce host names).
 */
export function clusterOptions(
  url: string,
  role: ConnectionRole,
  server: RedisOptions,
): { nodes: { host: string; port: number }[]; cluster: ClusterOptions } {
  const t = parseClusterUrl(url);
  const waitsForever = role !== 'command';
  return {
    nodes: t.nodes,
    cluster: {
      redisOptions: {
        ...server,
        ...(t.username === undefined ? {} : { username: t.username }),
        ...(t.password === undefined ? {} : { password: t.password }),
        ...(t.tls ? { tls: {} } : {}),
      },
      scaleReads: 'master',
      enableOfflineQueue: server.enableOfflineQueue ?? true,
      enableReadyCheck: true,
      clusterRetryStrategy: reconnectDelay,
      retryDelayOnFailover: waitsForever ? 250 : 100,
      retryDelayOnClusterDown: waitsForever ? 250 : 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: waitsForever ? 120 : 16,
      slotsRefreshTimeout: Math.max(server.commandTimeout ?? 0, 1000),
      dnsLookup: (address, callback) => callback(null, address),
    },
  };
}

/**
 * ioredis's options for a Sentinel URL (./sentinel-url.ts): the connection asks the sentinels for
 * the master of `name` on each (re)connect and checks with ROLE that it reached a master.
 * - `failoverDetector` subscribes to the sentinels' +switch-master and drops the connection when a
 *   fail-over happens: a frozen (SIGSTOPped) master keeps its sockets open, and without this a
 *   connection would stay on it (blocking commands forever) after the sentinels elected another;
 * - a demoted master answers writes with READONLY: that error reconnects (to the master the
 *   sentinels now name) and sends the refused command again, which is safe since it did nothing;
 * - `disconnectTimeout`: a connection the detector drops leaves the old master within 50 ms, before a
 *   frozen one can wake and answer what was in flight;
 * - `retryStrategy`: reconnect at least every 250 ms ({@link sentinelReconnectDelay});
 * - `sentinelCommandTimeout`: a frozen sentinel is skipped for the next one instead of hanging.
 */
export function sentinelOptions(url: string, timeoutMs: number): RedisOptions {
  const t = parseSentinelUrl(url);
  return {
    sentinels: t.sentinels,
    name: t.name,
    role: 'master',
    db: t.db,
    ...(t.username === undefined ? {} : { username: t.username }),
    ...(t.password === undefined ? {} : { password: t.password }),
    ...(t.sentinelUsername === undefined ? {} : { sentinelUsername: t.sentinelUsername }),
    ...(t.sentinelPassword === undefined ? {} : { sentinelPassword: t.sentinelPassword }),
    ...(t.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    failoverDetector: true,
    // The detector drops a connection with a graceful end(), and ioredis waits `disconnectTimeout`
    // (2 s by default) for the peer's close before it destroys the socket: a frozen master that
    // thawed in that time still answered the commands in flight, and a write the new master never
    // had was acknowledged. A fail-over leaves the old master at once.
    disconnectTimeout: 50,
    retryStrategy: sentinelReconnectDelay,
    sentinelCommandTimeout: timeoutMs,
    // While no sentinel answers: retry quickly, then every second (null would give up for good).
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

/**
 * Makes a Sentinel connection that ends without its owner closing it connect again, and its
 * duplicates (BullMQ's blocking connections) as well.
 *
 * ioredis ends such a connection for good when its fail-over detector drops it while it is asking
 * the sentinels for the master: the resolve then throws "Connection is closed." and `connect` turns
 * that into the status `end`, which no reconnect leaves. bench/failover.ts hit it in every round once
 * reconnects came every 250 ms: the node's command and session connections stayed `end` after a
 * SIGKILL of the master, and every request answered REDIS_UNAVAILABLE until the node was restarted.
 * Only `quit()` and `disconnect()` without reconnecting, by sprocd or BullMQ, close one for good.
 */
export function reconnectAfterEnd(redis: Redis): Redis {
  let closedByOwner = false;
  const disconnect = redis.disconnect.bind(redis);
  redis.disconnect = (reconnect?: boolean) => {
    closedByOwner ||= reconnect !== true;
    disconnect(reconnect);
  };
  const quit = redis.quit as (...args: unknown[]) => Promise<'OK'>;
  redis.quit = ((...args: unknown[]) => {
    closedByOwner = true;
    return quit.apply(redis, args);
  }) as Redis['quit'];
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override) => reconnectAfterEnd(duplicate(override));
  redis.on('end', () => {
    if (!closedByOwner) {
      setTimeout(() => {
        if (!closedByOwner && redis.status === 'end') {
          redis.connect().catch(() => undefined);
        }
      }, sentinelReconnectDelay(1));
    }
  });
  return redis;
}

/** Waits until `redis` is connected (resolves at once when it already is). */
export async function waitReady(redis: RedisConnection, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') {
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Closes a connection, quickly even when Redis is gone. */
export async function closeConnection(redis: RedisConnection): Promise<void> {
  if (redis.status === 'end') {
    return;
  }
  try {
    await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 500))]);
  } catch {
    // fall through to disconnect
  }
  redis.disconnect();
}

/**
 * Waits for `closing` (a BullMQ close, say) at most `ms`. Such closes wait for Redis to answer, which
 * never happens while it is away; past `ms` the node goes on, and drops its connections itself.
 */
export async function settleWithin(closing: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closing?.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

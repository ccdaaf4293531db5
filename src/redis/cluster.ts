/**
 * What a Redis Cluster connection needs done differently from one server. Every key of a deployment
 * shares the `{prefix}` hash tag, so the keys, scripts, transactions and blocking reads all go to the
 * one master that owns that slot, through ioredis's routing by key; what is left is the commands that
 * name no key, which a Cluster would send to any node:
 * - SCAN sees only the keys of the node it runs on: {@link scanKeys} runs it on every master;
 * - WAIT counts the replicas of the node it runs on, for the writes of the connection it runs on:
 *   {@link masterFor} is the node connection the deployment's writes take (./replica-acks.ts);
 * - `duplicate()` and the options a role's connection was made with sit elsewhere on a Cluster.
 */
import { Cluster, Command, type Redis, type RedisOptions } from 'ioredis';
import type { RedisConnection } from './redis-connection.js';

/** Whether `connection` is a Redis Cluster client (made from a `redis+cluster://` URL). */
export function isCluster(connection: RedisConnection): connection is Cluster {
  return connection instanceof Cluster;
}

/** The options of `connection`'s links to servers (on a Cluster, those of each node connection). */
export function serverOptions(connection: RedisConnection): RedisOptions {
  return isCluster(connection) ? (connection.options.redisOptions ?? {}) : connection.options;
}

/** A new connection like `connection` (to the same server or Cluster), with `override` on its options. */
export function duplicateConnection(
  connection: RedisConnection,
  override: Partial<RedisOptions>,
): RedisConnection {
  if (isCluster(connection)) {
    return connection.duplicate(undefined, {
      redisOptions: { ...serverOptions(connection), ...override },
    });
  }
  return connection.duplicate(override);
}

/** The Cluster slot of `key` (its hash tag's when it has one), as Redis computes it. */
export function slotOf(key: string): number {
  return new Command('get', [key]).getSlot();
}

/**
 * The connection `key`'s commands take: the server itself, or on a Cluster the node connection of the
 * master that owns `key`'s slot, as the client knows it now; undefined while it knows no such master.
 */
export function masterFor(connection: RedisConnection, key: string): Redis | undefined {
  if (!isCluster(connection)) {
    return connection;
  }
  const owner = connection.slots[slotOf(key)]?.[0];
  return owner === undefined
    ? undefined
    : connection.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
}

/**
 * Every key matching `pattern`, batch by batch (SCAN with `count`): on one server, or on each master
 * of a Cluster, since a node's SCAN sees only its own keys.
 */
export async function* scanKeys(
  connection: RedisConnection,
  pattern: string,
  count: number,
): AsyncGenerator<string[]> {
  const servers = isCluster(connection) ? connection.nodes('master') : [connection];
  for (const server of servers) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) {
        yield keys;
      }
    } while (cursor !== '0');
  }
}

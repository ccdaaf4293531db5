/**
 * The one type of a connection to Redis across sprocd: one server (directly or found through
 * Sentinel), or a Redis Cluster (a `redis+cluster://` URL). Every key of a deployment shares the
 * `{prefix}` hash tag, so on a Cluster all of them live in one slot and every multi-key command and
 * script runs as on one server; ./cluster.ts holds what must be done differently on a Cluster.
 * A module of its own, so that the modules ./connections.ts imports can name the type too.
 */
import type { Cluster, Redis } from 'ioredis';

/** A connection of any role (see ./connections.ts), to one server or to a Cluster. */
export type RedisConnection = Redis | Cluster;

/**
 * Replica acknowledgements (SPROCD_REPLICA_ACKS=N): a write the node acknowledges (an execution
 * queued, a storage commit, a backup's snapshot) is first confirmed by N replicas with Redis's WAIT,
 * so a fail-over right after the acknowledgement does not lose it (docs/ARCHITECTURE.md, "Replica
 * acknowledgements").
 *
 * WAIT covers every write sent before it on the same connection, so the writes and the WAIT share the
 * node's command connection, and one WAIT serves every write that completed while the previous WAIT was
 * in flight (a group commit): under load there is about one WAIT per round trip, not one per write.
 *
 * An acknowledgement never spans a reconnect: ioredis sends unanswered commands again after it
 * reconnects, so a WAIT sent to a master that then died could be answered by the new master, which may
 * never have had the write. Each connection change ('close', 'ready') bumps an epoch; a write takes a
 * ticket (the epoch) before it is sent, and is confirmed only when the WAIT's answer comes in the same
 * epoch. Otherwise it fails with NotReplicatedError (503, retryable), as when fewer than N replicas
 * confirm within SPROCD_REPLICA_ACK_TIMEOUT_MS.
 *
 * On a Redis Cluster, WAIT names no key, so it is sent on the node connection of the master that owns
 * the deployment's slot, the one its writes took (./cluster.ts, masterFor); a node connection that
 * comes or goes, or another master for the slot, is a connection change as above. Writes to another
 * slot (a queue shard's, `{prefix:q<i>}`, ./shards.ts) take their acknowledgement from
 * {@link ReplicaAcks.routed}: one group commit per slot, whose WAIT goes to that slot's master, so a
 * shard's write is confirmed by the replicas of the master that took it.
 */
import type { Redis } from 'ioredis';
import { NotReplicatedError } from '../errors.js';
import { isCluster, masterFor } from './cluster.js';
import type { RedisConnection } from './redis-connection.js';

/** The epoch a write started in (see {@link ReplicaAcks.ticket}). */
export type AckTicket = number & { readonly __ackTicket: true };

interface Pending {
  ticket: AckTicket;
  resolve(): void;
  reject(err: unknown): void;
}

/** Options of {@link ReplicaAcks}. */
export interface ReplicaAckOptions {
  /** Replicas that must confirm (0 turns acknowledgements off). */
  replicas: number;
  /** WAIT's time-out. */
  timeoutMs: number;
  /** A key of the deployment: on a Cluster, WAIT goes to the master of its slot (none: every WAIT fails). */
  routeKey?: string;
}

/** The acknowledgements of the writes made on one connection. */
export class ReplicaAcks {
  private epoch = 0;
  /** Confirmations waiting for the next WAIT. */
  private next: Pending[] = [];
  private inFlight = false;
  /** WAITs sent so far (bench/sentinel.ts and the tests read it). */
  waits = 0;
  private readonly bump = () => {
    this.epoch++;
  };
  /** On a Cluster: the node connection the last WAIT target lookup found. */
  private master: Redis | undefined;
  /** The events that mean another connection (a Cluster's node connections come and go as well). */
  private readonly changes: string[];
  /** The group commits of other slots' writes, by their route key (see {@link routed}). */
  private readonly routes = new Map<string, ReplicaAcks>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: ReplicaAckOptions,
  ) {
    this.changes = isCluster(redis) ? ['close', 'ready', '+node', '-node'] : ['close', 'ready'];
    if (options.replicas > 0) {
      for (const event of this.changes) {
        redis.on(event, this.bump);
      }
    }
  }

  /** Whether writes wait for replicas at all. */
  get enabled(): boolean {
    return this.options.replicas > 0;
  }

  /** Taken before a write is sent: its confirmation must come in the same connection epoch. */
  ticket(): AckTicket {
    if (this.enabled) {
      this.target();
    }
    return this.epoch as AckTicket;
  }

  /**
   * Resolves once N replicas have every write sent on the connection before this call; rejects with
   * NotReplicatedError when they do not within the time-out, or the connection changed since `ticket`.
   * Resolves at once when acknowledgements are off.
   */
  confirm(ticket: AckTicket): Promise<void> {
    if (!this.enabled) {
      return Promise.resolve();
    }
    if (ticket !== this.epoch) {
      return Promise.reject(new NotReplicatedError('reconnected', { wanted: this.options.replicas }));
    }
    return new Promise<void>((resolve, reject) => {
      this.next.push({ ticket, resolve, reject });
      this.flush();
    });
  }

  /**
   * The acknowledgements of writes to `routeKey`'s slot: this object for the deployment's own route
   * key (and on a single server, where every write has one master), else a group commit of its own
   * whose WAIT goes to the master of that slot. Made once per key, closed with this object.
   */
  routed(routeKey: string): ReplicaAcks {
    if (!isCluster(this.redis) || routeKey === this.options.routeKey) {
      return this;
    }
    let acks = this.routes.get(routeKey);
    if (acks === undefined) {
      acks = new ReplicaAcks(this.redis, { ...this.options, routeKey });
      this.routes.set(routeKey, acks);
    }
    return acks;
  }

  /** WAITs sent so far by this object and its routes (bench/sentinel.ts and the tests read it). */
  get allWaits(): number {
    let total = this.waits;
    for (const acks of this.routes.values()) {
      total += acks.waits;
    }
    return total;
  }

  /** Stops watching the connection (its routes too). */
  close(): void {
    for (const event of this.changes) {
      this.redis.off(event, this.bump);
    }
    for (const acks of this.routes.values()) {
      acks.close();
    }
    this.routes.clear();
  }

  /**
   * The connection WAIT goes on: the connection itself, or on a Cluster the node connection of the
   * master of `routeKey`'s slot; a change of that master is a new epoch, since the writes of a ticket
   * taken before went to another node.
   */
  private target(): Redis | undefined {
    if (!isCluster(this.redis)) {
      return this.redis;
    }
    // Without a key of the deployment there is no telling which master has its writes: refuse.
    const key = this.options.routeKey;
    const master = key === undefined ? undefined : masterFor(this.redis, key);
    if (master !== this.master) {
      this.master = master;
      this.bump();
    }
    return master;
  }

  private flush(): void {
    if (this.inFlight || this.next.length === 0) {
      return;
    }
    const batch = this.next;
    this.next = [];
    this.inFlight = true;
    this.waits++;
    const wanted = this.options.replicas;
    const target = this.target();
    const waited =
      target === undefined
        ? Promise.reject(new Error('no master known for the deployment slot'))
        : (target.call('WAIT', wanted, this.options.timeoutMs) as Promise<number>);
    waited
      .then(
        (got) => {
          for (const p of batch) {
            if (p.ticket !== this.epoch) {
              p.reject(new NotReplicatedError('reconnected', { wanted, got }));
            } else if (got < wanted) {
              p.reject(new NotReplicatedError('timeout', { wanted, got }));
            } else {
              p.resolve();
            }
          }
        },
        (err: unknown) => {
          for (const p of batch) {
            p.reject(new NotReplicatedError('failed', { wanted }, err));
          }
        },
      )
      .finally(() => {
        this.inFlight = false;
        this.flush();
      });
  }
}

/** Acknowledgements turned off: for parts made without a node (tests, benchmarks, tools). */
export const NO_ACKS = {
  ticket: () => 0 as AckTicket,
  confirm: () => Promise.resolve(),
} as const satisfies Pick<ReplicaAcks, 'ticket' | 'confirm'>;

/** What the parts that acknowledge writes need of {@link ReplicaAcks}. */
export type WriteAcks = Pick<ReplicaAcks, 'ticket' | 'confirm'>;

/**
 * `work`'s result once replicas have its writes. Call it as `acknowledged(acks, start())`: `work` has
 * then run up to its first await, so the ticket taken here is no later than the epoch of its first
 * write (a connection's events come in a later turn). An earlier ticket only fails more often.
 */
export async function acknowledged<T>(acks: WriteAcks | undefined, work: Promise<T>): Promise<T> {
  if (acks === undefined) {
    return work;
  }
  const ticket = acks.ticket();
  const result = await work;
  await acks.confirm(ticket);
  return result;
}

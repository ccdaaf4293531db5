/**
 * Node heartbeats: each node writes its record into one hash every SPROCD_HEARTBEAT_MS, so the
 * cluster knows who is alive (GET /v1/nodes); a node whose record is older than
 * SPROCD_NODE_TIMEOUT_MS has left, and every node that notices says so (node.left).
 */
import os from 'node:os';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Keys } from '../redis/keys.js';
import { VERSION } from '../version.js';

/** One node as GET /v1/nodes shows it. */
export interface NodeRecord {
  node: string;
  host: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  active: number;
  concurrency: number;
  /** The procedures this node has loaded (a node without one hands its executions to one with it). */
  procedures: string[];
  /** The node's sprocd version (a rolling deploy shows two). */
  version?: string;
}

interface HeartbeatOwner {
  name: string;
  keys: Keys;
  settings: { heartbeatMs: number; nodeTimeoutMs: number; concurrency: number };
  registry: { names(): string[] };
  emitSystemEvent(event: { type: string } & Record<string, unknown>): void;
}

/** Reads the live nodes. */
export async function liveNodes(
  redis: RedisConnection,
  keys: Keys,
  timeoutMs: number,
): Promise<NodeRecord[]> {
  const all = await redis.hgetall(keys.nodes);
  const cutoff = Date.now() - timeoutMs;
  return Object.values(all)
    .map((raw) => JSON.parse(raw) as NodeRecord)
    .filter((r) => Date.parse(r.heartbeatAt) >= cutoff)
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** This node's heartbeat. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private known = new Set<string>();
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly owner: HeartbeatOwner,
    private readonly redis: RedisConnection,
    private readonly active: () => number,
  ) {}

  /** Writes the first beat and starts the timer. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => {
      this.beat().catch(() => undefined); // Redis away: the next beat tries again
    }, this.owner.settings.heartbeatMs);
    this.timer.unref();
  }

  /** Stops beating. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Removes this node's record (a clean stop). */
  async leave(): Promise<void> {
    await this.redis.hdel(this.owner.keys.nodes, this.owner.name);
  }

  private async beat(): Promise<void> {
    const o = this.owner;
    const record: NodeRecord = {
      node: o.name,
      host: os.hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      heartbeatAt: new Date().toISOString(),
      active: this.active(),
      concurrency: o.settings.concurrency,
      procedures: o.registry.names(),
      version: VERSION,
    };
    await this.redis.hset(o.keys.nodes, o.name, JSON.stringify(record));
    const all = await this.redis.hgetall(o.keys.nodes);
    const cutoff = Date.now() - o.settings.nodeTimeoutMs;
    const alive = new Set<string>();
    const dead: string[] = [];
    for (const [name, raw] of Object.entries(all)) {
      const r = JSON.parse(raw) as NodeRecord;
      if (Date.parse(r.heartbeatAt) >= cutoff) {
        alive.add(name);
      } else {
        dead.push(name);
      }
    }
    const first = this.known.size === 0;
    for (const name of alive) {
      if (!this.known.has(name) && name !== o.name && !first) {
        o.emitSystemEvent({ type: 'node.joined', joined: name });
      }
    }
    for (const name of this.known) {
      if (!alive.has(name)) {
        o.emitSystemEvent({ type: 'node.left', left: name });
      }
    }
    if (dead.length > 0) {
      await this.redis.hdel(o.keys.nodes, ...dead);
    }
    this.known = alive;
  }
}

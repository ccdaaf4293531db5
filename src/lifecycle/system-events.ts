/**
 * System events this node observes about its own Redis connection (redis.lost, redis.back); the
 * heartbeat reports node.joined and node.left. Each goes to onSystemEvent on this node.
 */
import type { RedisConnection } from '../redis/redis-connection.js';

/** What onSystemEvent receives. */
export interface SystemEvent {
  type: string;
  at: string;
  node: string;
  [detail: string]: unknown;
}

interface EventSink {
  emitSystemEvent(event: { type: string } & Record<string, unknown>): void;
}

/** Watches a connection and reports when it is lost and when it is back. */
export class SystemEvents {
  private lostAt: number | undefined;
  private readonly onClose = () => {
    if (this.lostAt === undefined) {
      this.lostAt = Date.now();
      this.sink.emitSystemEvent({ type: 'redis.lost' });
    }
  };
  private readonly onReady = () => {
    if (this.lostAt !== undefined) {
      const downMs = Date.now() - this.lostAt;
      this.lostAt = undefined;
      this.sink.emitSystemEvent({ type: 'redis.back', downMs });
    }
  };

  constructor(
    private readonly sink: EventSink,
    private readonly redis: RedisConnection,
  ) {
    redis.on('close', this.onClose);
    redis.on('ready', this.onReady);
  }

  /** Stops watching. */
  close(): void {
    this.redis.off('close', this.onClose);
    this.redis.off('ready', this.onReady);
  }
}

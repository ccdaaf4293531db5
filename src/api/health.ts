/** /healthz (the process is alive) and /readyz (it takes work): no token, answer from the start. */
import type { FastifyPluginAsync } from 'fastify';
import type { NodeState } from '../node-state.js';

/** What the health routes need of the node. */
export interface HealthRouteDeps {
  /** The node's name. */
  readonly name: string;
  /** Where the node is in its life. */
  state(): NodeState;
  /** Whether the node takes work: started, not stopping, and Redis answering. */
  isReady(): Promise<{ ready: boolean; reason?: string }>;
  /** /readyz says "redis unavailable" rather than wait longer than this (SPROCD_REDIS_TIMEOUT_MS). */
  readonly redisTimeoutMs: number;
}

/** The health routes, as a fastify plugin. */
export const healthRoutes: FastifyPluginAsync<HealthRouteDeps> = async (app, deps) => {
  app.get('/healthz', async () => ({ status: 'ok', state: deps.state(), node: deps.name }));
  app.get('/readyz', async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ ready: false; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: 'redis unavailable' }), deps.redisTimeoutMs);
    });
    const { ready, reason } = await Promise.race([deps.isReady(), timeout]).finally(() =>
      clearTimeout(timer),
    );
    return reply
      .status(ready ? 200 : 503)
      .send(ready ? { status: 'ready' } : { status: 'not ready', reason });
  });
};

/** /healthz (the process is alive) and /readyz (it takes work): no token, answer from the start. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { NodeState } from '../node-state.js';
import { HealthSchema, NotReadySchema, ReadySchema } from './schemas/cluster.js';
import { errors, ok } from './schemas/common.js';

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
export const healthRoutes: FastifyPluginAsyncZod<HealthRouteDeps> = async (app, deps) => {
  const { 500: internal } = errors();
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'health',
        summary: 'The process is alive (no token).',
        response: { 200: ok('Alive.', HealthSchema), 500: internal },
      },
    },
    async () => ({ status: 'ok' as const, state: deps.state(), node: deps.name }),
  );
  const ready = {
    operationId: 'ready',
    summary: 'The node takes work: started, not stopping, Redis answering (no token).',
    response: {
      200: ok('Ready.', ReadySchema),
      503: ok('Not ready, and why.', NotReadySchema),
      500: internal,
    },
  };
  app.get('/readyz', { schema: ready }, async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ ready: false; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: 'redis unavailable' }), deps.redisTimeoutMs);
    });
    const { ready, reason } = await Promise.race([deps.isReady(), timeout]).finally(() =>
      clearTimeout(timer),
    );
    return reply
      .status(ready ? 200 : 503)
      .send(ready ? { status: 'ready' as const } : { status: 'not ready' as const, reason });
  });
};

/**
 * 4D's signals and semaphores from outside a procedure: read a signal and trigger it (an outside
 * system waking the executions that wait on it), and Test semaphore.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withRedisTimeout } from '../redis/errors.js';
import type { JsonValue } from '../types.js';
import { errors, ok } from './schemas/common.js';
import {
  SemaphoreNameParams,
  SemaphoreStateSchema,
  SignalIdParams,
  SignalTriggerBodySchema,
  SignalTriggeredSchema,
  SignalViewSchema,
} from './schemas/sync.js';

/** A signal as the routes show it. */
export interface SignalView {
  id: string;
  description: string;
  signaled: boolean;
  result?: JsonValue;
}

/** What the routes need of the node's signals and semaphores (procedures/signals.ts, semaphores.ts). */
export interface SyncRouteDeps {
  /** Throw NotReadyError when the node does not serve them now. */
  signals(): {
    state(id: string): Promise<SignalView>;
    triggerFromOutside(id: string, result: JsonValue): Promise<boolean>;
  };
  semaphores(): { test(name: string): Promise<boolean> };
  readonly redisTimeoutMs: number;
}

/** The signal and semaphore routes, as a fastify plugin. */
export const syncRoutes: FastifyPluginAsyncZod<SyncRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.get(
    '/signals/:id',
    {
      schema: {
        operationId: 'signal',
        summary: 'A signal (New signal): its description, whether it was triggered, and its result.',
        params: SignalIdParams,
        response: { 200: ok('The signal.', SignalViewSchema), ...errors(401, 404) },
      },
    },
    async (request) => withRedisTimeout(deps.signals().state(request.params.id), timeout),
  );

  app.post(
    '/signals/:id/trigger',
    {
      schema: {
        operationId: 'triggerSignal',
        summary: 'Triggers a signal: every execution waiting on it, on any node, wakes with the result.',
        description: 'The first trigger wins: a later one changes nothing and answers `triggered: false`.',
        params: SignalIdParams,
        body: SignalTriggerBodySchema.optional(),
        response: {
          200: ok('Triggered, or triggered already.', SignalTriggeredSchema),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const signals = deps.signals();
      const triggered = await withRedisTimeout(
        signals.triggerFromOutside(id, (request.body?.result ?? null) as JsonValue),
        timeout,
      );
      return { triggered, signal: await withRedisTimeout(signals.state(id), timeout) };
    },
  );

  app.get(
    '/semaphores/:name',
    {
      schema: {
        operationId: 'testSemaphore',
        summary: 'Test semaphore: whether an execution holds the semaphore now.',
        params: SemaphoreNameParams,
        response: { 200: ok('Held or free.', SemaphoreStateSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const { name } = request.params;
      return { name, held: await withRedisTimeout(deps.semaphores().test(name), timeout) };
    },
  );
};

/** Schemas of /v1/signals and /v1/semaphores: 4D's signals and semaphores from outside a procedure. */
import { z } from 'zod';
import { JsonValueSchema } from './common.js';

/** A signal id in a URL. */
export const SignalIdParams = z.strictObject({
  id: z.string().min(1).max(100).describe('The signal id (ctx.newSignal().id).'),
});

/** A signal as GET /v1/signals/:id shows it. */
export const SignalViewSchema = z
  .object({
    id: z.string(),
    description: z.string(),
    signaled: z.boolean().describe('Whether it has been triggered.'),
    result: JsonValueSchema.optional().describe('What the first trigger passed, once signaled.'),
  })
  .meta({ id: 'Signal' });

/** The body of POST /v1/signals/:id/trigger. */
export const SignalTriggerBodySchema = z
  .strictObject({
    result: JsonValueSchema.optional().describe('Any JSON; the waiters get it. Default null.'),
  })
  .meta({ id: 'SignalTrigger' });

/** What POST /v1/signals/:id/trigger answers. */
export const SignalTriggeredSchema = z
  .object({
    triggered: z
      .boolean()
      .describe(
        'true when this was the first trigger (whose result stays); false when it had been triggered already.',
      ),
    signal: SignalViewSchema,
  })
  .meta({ id: 'SignalTriggered' });

/** A semaphore name in a URL. */
export const SemaphoreNameParams = z.strictObject({
  name: z.string().min(1).describe('The semaphore name.'),
});

/** Test semaphore. */
export const SemaphoreStateSchema = z
  .object({ name: z.string(), held: z.boolean().describe('Whether an execution holds it now.') })
  .meta({ id: 'SemaphoreState' });

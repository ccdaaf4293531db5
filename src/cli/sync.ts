/** `sprocd signal`, `trigger`, `semaphore`: 4D's signals and semaphores from outside a procedure. */
import { Command } from 'commander';
import type { JsonValue } from '../types.js';
import { jsonValue } from './args.js';
import type { CliContext } from './context.js';
import { printJson } from './output.js';

/** The signal and semaphore commands. */
export function syncCommands(ctx: CliContext): Command[] {
  const signal = new Command('signal')
    .description('a signal (ctx.newSignal): whether it was triggered, and its result')
    .argument('<id>', 'the signal id')
    .action(async (id: string) => {
      const view = await ctx.client().signal(id);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        const what = view.signaled
          ? `signaled, result ${JSON.stringify(view.result ?? null)}`
          : 'not signaled';
        ctx.io.out.write(`signal ${view.id}${view.description ? ` (${view.description})` : ''}: ${what}\n`);
      }
    });

  const trigger = new Command('trigger')
    .description('triggers a signal: the executions waiting on it, on any node, wake with RESULT_JSON')
    .argument('<id>', 'the signal id')
    .argument('[result-json]', 'what the waiters get (default null)', jsonValue)
    .action(async (id: string, result: unknown) => {
      const answer = await ctx.client().triggerSignal(id, (result ?? null) as JsonValue);
      if (ctx.json()) {
        printJson(ctx.io, answer);
      } else {
        ctx.io.out.write(
          answer.triggered
            ? `signal ${id}: triggered\n`
            : `signal ${id}: triggered already (result ${JSON.stringify(answer.signal.result ?? null)} stays)\n`,
        );
      }
    });

  const semaphore = new Command('semaphore')
    .description('Test semaphore: whether an execution holds the semaphore NAME now')
    .argument('<name>', 'the semaphore name')
    .action(async (name: string) => {
      const held = await ctx.client().testSemaphore(name);
      if (ctx.json()) {
        printJson(ctx.io, { name, held });
      } else {
        ctx.io.out.write(`semaphore ${name}: ${held ? 'held' : 'free'}\n`);
      }
    });

  return [signal, trigger, semaphore];
}

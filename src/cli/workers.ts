/** `sprocd workers`, `call-worker`, `kill-worker`: 4D's CALL WORKER and KILL WORKER from the shell. */
import { Command } from 'commander';
import { jsonValue } from './args.js';
import type { CliContext } from './context.js';
import { printJson, printTable } from './output.js';

/** The worker commands. */
export function workerCommands(ctx: CliContext): Command[] {
  const list = new Command('workers')
    .description('list the workers of the cluster: node, pending messages, current message')
    .action(async () => {
      const items = await ctx.client().workers();
      if (ctx.json()) {
        printJson(ctx.io, items);
        return;
      }
      printTable(
        ctx.io,
        ['NAME', 'NODE', 'PENDING', 'CURRENT', 'ATTEMPT', 'STARTED', 'PROCESSED', 'FAILED'],
        items.map((w) => [
          w.ending ? `${w.name} (ending)` : w.name,
          w.node ?? '',
          String(w.pending),
          w.current?.procedure ?? '',
          w.current ? String(w.current.attempt) : '',
          w.current?.startedAt ?? '',
          String(w.processed),
          String(w.failed),
        ]),
      );
    });

  const call = new Command('call-worker')
    .description('CALL WORKER: queue PROCEDURE for worker NAME (created by its first call)')
    .argument('<name>', 'the worker')
    .argument('<procedure>', 'procedure name (its path under jobs/)')
    .argument('[params_json]', 'params as JSON, e.g. \'{"who":"world"}\'', jsonValue)
    .action(async (name: string, procedure: string, params: unknown) => {
      const answer = await ctx.client().callWorker(name, procedure, params);
      if (ctx.json()) {
        printJson(ctx.io, answer);
      } else {
        ctx.io.out.write(`worker ${answer.worker}: ${answer.procedure} queued (${answer.pending} pending)\n`);
      }
    });

  const kill = new Command('kill-worker')
    .description('KILL WORKER: drop its pending messages; it ends once its current message is done')
    .argument('<name>', 'the worker')
    .action(async (name: string) => {
      const answer = await ctx.client().killWorker(name);
      if (ctx.json()) {
        printJson(ctx.io, answer);
      } else {
        const when = answer.outcome === 'ended' ? 'ended' : 'ends after its current message';
        ctx.io.out.write(`worker ${answer.worker}: ${when} (${answer.dropped} pending dropped)\n`);
      }
    });

  return [list, call, kill];
}

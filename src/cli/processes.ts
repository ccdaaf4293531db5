/** `sprocd pause`, `resume`, `processes`, `process`, `state`, `number`: 4D's process commands. */
import { Command } from 'commander';
import { executionNumber } from './args.js';
import type { CliContext } from './context.js';
import { printJson, printTable } from './output.js';

/** What each 4D Process state code means. */
const CODE_MEANING: Record<number, string> = {
  [-100]: 'does not exist (finished or missing)',
  [-1]: 'aborted',
  0: 'executing',
  1: 'delayed',
  4: 'waiting',
  5: 'paused',
};

/** The process commands. */
export function processCommands(ctx: CliContext): Command[] {
  const pause = new Command('pause')
    .description(
      'PAUSE PROCESS: execution N stops at its next ctx.checkpoint or ctx.delay (not started: does not start) until resumed',
    )
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const view = await ctx.client().pause(n);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${view.number}: paused (${view.state})\n`);
      }
    });

  const resume = new Command('resume')
    .description('RESUME PROCESS: paused execution N goes on; one not paused is woken when delayed')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const view = await ctx.client().resume(n);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${view.number}: resumed (${view.state})\n`);
      }
    });

  const processes = new Command('processes')
    .alias('activity')
    .description('Process activity: the live executions of the cluster with their 4D state codes')
    .action(async () => {
      const items = await ctx.client().processes();
      if (ctx.json()) {
        printJson(ctx.io, items);
        return;
      }
      printTable(
        ctx.io,
        ['NUMBER', 'CODE', 'STATE', 'PROCEDURE', 'NAME', 'NODE', 'STARTED'],
        items.map((p) => [
          String(p.number),
          String(p.code),
          CODE_MEANING[p.code] ?? p.state,
          p.procedure,
          p.name,
          p.node ?? '',
          p.startedAt ?? '',
        ]),
      );
    });

  const info = new Command('process')
    .description('Process info: execution N with its 4D state code')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      printJson(ctx.io, await ctx.client().processInfo(n));
    });

  const state = new Command('state')
    .description('Process state: the 4D state code of execution N (5 paused, -100 finished or missing)')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const code = await ctx.client().processState(n);
      if (ctx.json()) {
        printJson(ctx.io, { number: n, code });
      } else {
        ctx.io.out.write(`${code} ${CODE_MEANING[code] ?? ''}\n`);
      }
    });

  const number = new Command('number')
    .description('Process number: the live execution with process name NAME, or 0')
    .argument('<name>', 'process name')
    .action(async (name: string) => {
      const found = await ctx.client().processNumber(name);
      if (ctx.json()) {
        printJson(ctx.io, { name, number: found });
      } else {
        ctx.io.out.write(`${found}\n`);
      }
    });

  return [pause, resume, processes, info, state, number];
}

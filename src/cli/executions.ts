/** `sprocd exec`, `ps`, `get`, `abort`, `wake`, `delay`: executions. */
import { Command, Option } from 'commander';
import { followExecution } from '../cli-events.js';
import type { Execution } from '../client/index.js';
import { MAX_ATTEMPTS, MAX_DELAY_MS, MAX_PRIORITY } from '../procedures/execute.js';
import { MAX_BATCH_EXECUTIONS, MAX_LIST_LIMIT } from '../procedures/executions.js';
import { MAX_WAIT_MS } from '../api/schemas/executions.js';
import { executionNumber, jsonValue, wholeNumber } from './args.js';
import type { CliContext } from './context.js';
import { execBatch } from './exec-batch.js';
import { CliError, EXIT, usageError } from './exit.js';
import { printJson, printTable } from './output.js';

const STATES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'aborted'] as const;
const DEFAULT_WAIT_MS = 60_000;

/** Throws the outcome of an execution that did not complete (exit 5), or is still running (exit 6). */
function assertCompleted(view: Execution, waitedMs: number): void {
  if (view.state === 'failed' || view.state === 'aborted') {
    const code = view.error?.code ?? 'EXECUTION_FAILED';
    throw new CliError(
      code,
      `execution ${view.number} ${view.state}: ${view.error?.message ?? ''}`,
      EXIT.failed,
    );
  }
  if (view.state !== 'completed') {
    throw new CliError(
      'WAIT_TIMEOUT',
      `execution ${view.number} is still ${view.state} after ${waitedMs} ms (sprocd get ${view.number} --follow)`,
      EXIT.timeout,
    );
  }
}

/** The execution commands. */
export function executionCommands(ctx: CliContext): Command[] {
  const exec = new Command('exec')
    .description(
      'Execute on server: start PROCEDURE with PARAMS_JSON; prints the execution. With --batch FILE: ' +
        'many executions, a number a line',
    )
    .argument('[procedure]', 'procedure name, e.g. hello or billing/sendInvoices')
    .argument('[params_json]', 'params as JSON, e.g. \'{"who":"world"}\' or \'[1,2]\'', jsonValue)
    .option('--name <name>', 'process name')
    .option('--unique', 'start nothing when a live execution of --name exists')
    .option('--delay <ms>', 'start after this many milliseconds', wholeNumber(0, MAX_DELAY_MS))
    .option('--priority <n>', '1 is the most urgent (0: none)', wholeNumber(0, MAX_PRIORITY))
    .option('--attempts <n>', 'starts at most when it fails', wholeNumber(1, MAX_ATTEMPTS))
    .option(
      '--wait [ms]',
      `wait for the end (default ${DEFAULT_WAIT_MS} ms) and print the result (--json: the execution)`,
      wholeNumber(0, MAX_WAIT_MS),
    )
    .option('--follow', 'show its progress live until it ends, then print the result')
    .option(
      '--batch <file>',
      `queue the executions of FILE (- for stdin): a JSON array or JSON lines of {"procedure", "params", ` +
        `"name", "delayMs", ...}; prints their numbers, one a line (--json: the answers). Every item is ` +
        `checked before anything is sent; they go ${MAX_BATCH_EXECUTIONS} a request, each request all ` +
        'queued or none, and when the node refuses one the requests before it stay queued',
    )
    .action(async (procedure: string | undefined, params: unknown, opts) => {
      if ((opts as { batch?: string }).batch !== undefined) {
        const alone = procedure === undefined && Object.keys(opts as object).length === 1;
        if (!alone) {
          throw usageError('exec --batch takes neither PROCEDURE nor other options: each item says its own');
        }
        return execBatch(ctx, (opts as { batch: string }).batch);
      }
      if (procedure === undefined) {
        throw usageError("exec needs a PROCEDURE (or --batch FILE); see 'sprocd exec --help'");
      }
      const o = opts as {
        name?: string;
        unique?: boolean;
        delay?: number;
        priority?: number;
        attempts?: number;
        wait?: number | true;
        follow?: boolean;
      };
      const wait = o.wait === undefined ? undefined : o.wait === true ? DEFAULT_WAIT_MS : o.wait;
      const client = ctx.client();
      let view: Execution = await client.execute(procedure, params, {
        name: o.name,
        unique: o.unique,
        delayMs: o.delay,
        priority: o.priority,
        attempts: o.attempts,
        wait: o.follow ? undefined : wait,
      });
      if (o.follow) {
        view = await followExecution(client, view.number);
      } else if (wait === undefined) {
        printJson(ctx.io, view);
        return;
      }
      if (ctx.json()) {
        printJson(ctx.io, view);
      }
      assertCompleted(view, wait ?? 0);
      if (!ctx.json()) {
        printJson(ctx.io, view.result ?? null);
      }
    });

  const ps = new Command('ps')
    .description('list executions, newest first')
    .addOption(new Option('--state <state>', 'only in this state').choices(STATES))
    .option('--name <name>', 'only with this process name')
    .option('--procedure <procedure>', 'only of this procedure')
    .option('--limit <n>', `how many (default 50, at most ${MAX_LIST_LIMIT})`, wholeNumber(1, MAX_LIST_LIMIT))
    .action(
      async (opts: {
        state?: (typeof STATES)[number];
        name?: string;
        procedure?: string;
        limit?: number;
      }) => {
        const items = await ctx.client().list(opts);
        if (ctx.json()) {
          printJson(ctx.io, items);
          return;
        }
        printTable(
          ctx.io,
          ['NUMBER', 'STATE', 'PROCEDURE', 'NAME', 'ATTEMPT', 'CREATED'],
          items.map((e) => [String(e.number), e.state, e.procedure, e.name, String(e.attempt), e.createdAt]),
        );
      },
    );

  const get = new Command('get')
    .description('show one execution')
    .argument('<n>', 'execution number', executionNumber)
    .option('--follow', 'show its progress live until it ends, then print it')
    .action(async (n: number, opts: { follow?: boolean }) => {
      const client = ctx.client();
      printJson(ctx.io, opts.follow ? await followExecution(client, n) : await client.get(n));
    });

  const abort = new Command('abort')
    .description('abort execution N wherever it runs')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const view = await ctx.client().abort(n);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${view.number}: abort requested (${view.state})\n`);
      }
    });

  const delay = new Command('delay')
    .description(
      "DELAY PROCESS: execution N's current ctx.delay, or its delayed start, ends MS from now (0: now)",
    )
    .argument('<n>', 'execution number', executionNumber)
    .argument('<ms>', 'milliseconds from now', wholeNumber(0, 2_147_483_647))
    .action(async (n: number, ms: number) => {
      const view = await ctx.client().delay(n, ms);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${view.number}: delayed ${ms} ms (${view.state})\n`);
      }
    });

  const wake = new Command('wake')
    .description("end execution N's current ctx.delay early")
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const view = await ctx.client().wake(n);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${view.number}: woken\n`);
      }
    });

  const retry = new Command('retry')
    .description('retry failed or aborted execution N: a new one with the same procedure, params and name')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const view = await ctx.client().retry(n);
      if (ctx.json()) {
        printJson(ctx.io, view);
      } else {
        ctx.io.out.write(`execution ${n}: retried as ${view.number} (${view.state})\n`);
      }
    });

  const remove = new Command('rm')
    .alias('remove')
    .description('remove finished execution N')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      await ctx.client().remove(n);
      if (ctx.json()) {
        printJson(ctx.io, { number: n, removed: true });
      } else {
        ctx.io.out.write(`execution ${n}: removed\n`);
      }
    });

  const timeline = new Command('timeline')
    .description("execution N's life: queued, started, delayed, woken, retried, recovered, its end")
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const life = await ctx.client().timeline(n);
      if (ctx.json()) {
        printJson(ctx.io, life);
        return;
      }
      printTable(
        ctx.io,
        ['AT', 'EVENT', 'NODE', 'ATTEMPT', 'MESSAGE'],
        life.items.map((e) => [
          e.at,
          e.type,
          e.node ?? '',
          e.attempt === undefined ? '' : String(e.attempt),
          e.message ?? '',
        ]),
      );
    });

  const logs = new Command('logs')
    .description('the lines execution N wrote through ctx.log, while its nodes keep them')
    .argument('<n>', 'execution number', executionNumber)
    .action(async (n: number) => {
      const lines = await ctx.client().logs(n);
      if (ctx.json()) {
        printJson(ctx.io, lines);
        return;
      }
      for (const l of lines) {
        const fields = l.fields && Object.keys(l.fields).length ? ` ${JSON.stringify(l.fields)}` : '';
        ctx.io.out.write(`${l.at}  ${l.level.padEnd(5)}  ${l.node}  ${l.msg}${fields}\n`);
      }
    });

  return [exec, ps, get, abort, wake, delay, retry, remove, timeline, logs];
}

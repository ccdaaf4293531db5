/**
 * The `sprocd` command. `start` runs a node here; every other command talks to a node's API
 * (SPROCD_URL, SPROCD_TOKEN) and exits 0 on success, or non-zero with a one-line reason.
 */
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { followExecution, watchCommand } from './cli-events.js';
import { ApiError, SprocdClient } from './client.js';
import { initCommand } from './init/command.js';
import { runNode } from './start.js';

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) {
    return '? bytes';
  }
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function parseJsonArg(raw: string | undefined): unknown {
  if (raw === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ApiError(
      'BAD_ARGUMENT',
      `PARAMS_JSON is not JSON (${(err as Error).message}); quote it: '{"who":"world"}'`,
      0,
    );
  }
}

function parseNumberArg(raw: string): number {
  if (!/^[1-9]\d*$/.test(raw)) {
    throw new ApiError(
      'BAD_ARGUMENT',
      `N must be an execution number (a positive integer), not ${JSON.stringify(raw)}`,
      0,
    );
  }
  return Number(raw);
}

/** Builds the command tree; each command makes its client from SPROCD_URL and SPROCD_TOKEN when it runs. */
function buildCli(): Command {
  const client = (): SprocdClient => new SprocdClient();
  const program = new Command('sprocd')
    .description('sprocd: stored procedures on BullMQ and Redis, the 4D Server way')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description('run a node in the current folder (settings from the environment; see README)')
    .action(async () => {
      await runNode();
    });

  program
    .command('exec')
    .description('Execute on server: start PROCEDURE with PARAMS_JSON')
    .argument('<procedure>', 'procedure name, e.g. hello or billing/sendInvoices')
    .argument('[params_json]', 'params as JSON, e.g. \'{"who":"world"}\' or \'[1,2]\'')
    .option('--name <name>', 'process name')
    .option('--unique', 'start nothing when a live execution of --name exists')
    .option('--delay <ms>', 'start after this many milliseconds', (v) => Number(v))
    .option('--priority <n>', '1 is the most urgent', (v) => Number(v))
    .option('--attempts <n>', 'starts at most when it fails', (v) => Number(v))
    .option('--wait [ms]', 'wait for the result (default 60000 ms) and print it')
    .option('--follow', 'show its progress live until it ends, then print the result')
    .action(async (procedure: string, paramsJson: string | undefined, opts) => {
      const wait = opts.wait === undefined ? undefined : opts.wait === true ? 60_000 : Number(opts.wait);
      const view = await client().execute(procedure, parseJsonArg(paramsJson), {
        name: opts.name,
        unique: opts.unique,
        delayMs: opts.delay,
        priority: opts.priority,
        attempts: opts.attempts,
        wait: opts.follow ? undefined : wait,
      });
      if (opts.follow) {
        print((await followExecution(client(), view.number)).result ?? null);
        return;
      }
      if (wait === undefined) {
        print(view);
        return;
      }
      if (view.state === 'completed') {
        print(view.result ?? null);
        return;
      }
      if (view.state === 'failed' || view.state === 'aborted') {
        throw new ApiError(
          view.error?.code ?? 'EXECUTION_FAILED',
          `execution ${view.number} ${view.state}: ${view.error?.message ?? ''}`,
          0,
        );
      }
      throw new ApiError(
        'WAIT_TIMEOUT',
        `execution ${view.number} is still ${view.state} after ${wait} ms`,
        0,
      );
    });

  program
    .command('ps')
    .description('list executions, newest first')
    .option('--state <state>', 'waiting, delayed, active, completed, failed or aborted')
    .option('--name <name>', 'process name')
    .option('--procedure <procedure>', 'procedure name')
    .option('--limit <n>', 'how many (default 50)', (v) => Number(v))
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const items = await client().list({
        state: opts.state,
        name: opts.name,
        procedure: opts.procedure,
        limit: opts.limit,
      });
      if (opts.json) {
        print(items);
        return;
      }
      const rows = items.map((e) => [
        String(e.number),
        e.state,
        e.procedure,
        e.name,
        String(e.attempt),
        e.createdAt,
      ]);
      const header = ['NUMBER', 'STATE', 'PROCEDURE', 'NAME', 'ATTEMPT', 'CREATED'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      for (const row of [header, ...rows]) {
        process.stdout.write(
          `${row
            .map((c, i) => c.padEnd(widths[i] ?? 0))
            .join('  ')
            .trimEnd()}\n`,
        );
      }
    });

  program
    .command('get')
    .description('show one execution')
    .argument('<n>', 'execution number')
    .option('--follow', 'show its progress live until it ends, then print it')
    .action(async (n: string, opts: { follow?: boolean }) =>
      print(
        opts.follow
          ? await followExecution(client(), parseNumberArg(n))
          : await client().get(parseNumberArg(n)),
      ),
    );

  program.addCommand(watchCommand(client));
  program.addCommand(initCommand());

  program
    .command('abort')
    .description('abort execution N wherever it runs')
    .argument('<n>', 'execution number')
    .action(async (n: string) => {
      const view = await client().abort(parseNumberArg(n));
      process.stdout.write(`execution ${view.number}: abort requested (${view.state})\n`);
    });

  program
    .command('wake')
    .description("end execution N's current ctx.delay early")
    .argument('<n>', 'execution number')
    .action(async (n: string) => {
      await client().wake(parseNumberArg(n));
      process.stdout.write(`execution ${n}: woken\n`);
    });

  program
    .command('session')
    .description('show the stored-procedure session')
    .action(async () => print(await client().session()));

  program
    .command('storage')
    .description('show the session storage, or one entry')
    .argument('[key]', 'entry name')
    .action(async (key?: string) => print(await client().storage(key)));

  program
    .command('nodes')
    .description('list the live nodes')
    .action(async () => print(await client().nodes()));

  program
    .command('backup')
    .description('run a backup now on the node (through the backup hooks)')
    .option('--json', 'print the backup record as JSON')
    .action(async (opts: { json?: boolean }) => {
      const started = Date.now();
      process.stderr.write('backup running...');
      const ticker = setInterval(() => {
        process.stderr.write(` ${Math.round((Date.now() - started) / 1000)} s`);
      }, 1000);
      let record: Record<string, unknown>;
      try {
        record = await client().backup();
      } finally {
        clearInterval(ticker);
        process.stderr.write('\n');
      }
      if (opts.json) {
        print(record);
      }
      const seconds = (Number(record.durationMs ?? Date.now() - started) / 1000).toFixed(1);
      if (record.status !== 0) {
        const why = typeof record.message === 'string' ? `: ${record.message}` : '';
        throw new ApiError(
          'BACKUP_FAILED',
          `backup ${String(record.number)} ended with status ${String(record.status)} after ${seconds} s${why}`,
          0,
        );
      }
      process.stdout.write(
        `backup ${String(record.number)} done in ${seconds} s: ${String(record.file)} (${formatBytes(Number(record.size))})\n`,
      );
    });

  program
    .command('restore')
    .description('restore the session and unfinished executions from a backup FILE')
    .argument('<file>', 'a backup file')
    .option(
      '--allow-unsigned',
      'restore a file the node cannot verify (unsigned, signed with another key, format 1): only one you trust',
    )
    .action(async (file: string, opts: { allowUnsigned?: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (err) {
        throw new ApiError(
          'BAD_ARGUMENT',
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          0,
        );
      }
      print(await client().restore(bytes, { allowUnsigned: opts.allowUnsigned === true }));
    });

  return program;
}

/** Runs the CLI with `argv`; exits the process with 0 or a one-line reason and non-zero. */
export async function main(argv = process.argv): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode);
    }
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof ApiError ? ` [${err.code}]` : '';
    process.stderr.write(`sprocd: ${message}${code}\n`);
    process.exit(1);
  }
}

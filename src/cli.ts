/**
 * The `sprocd` command. `start` runs a node here and `init` writes a project; every other command
 * talks to a node's API (--url / SPROCD_URL, --token / SPROCD_TOKEN) and exits 0 on success, or with
 * a one-line reason on stderr and the exit code of its kind of failure (src/cli/exit.ts, README "CLI").
 * The commands live under src/cli/, one file per subject; this file assembles them.
 */
import { Command, CommanderError } from 'commander';
import { watchCommand } from './cli-events.js';
import { auditCommand } from './cli/audit.js';
import { backupCommands } from './cli/backups.js';
import { callersCommand } from './cli/callers.js';
import { completionCommand } from './cli/completion.js';
import type { CliContext } from './cli/context.js';
import { executionCommands } from './cli/executions.js';
import { processCommands } from './cli/processes.js';
import { syncCommands } from './cli/sync.js';
import { EXIT, exitCodeOf } from './cli/exit.js';
import { processIo, type Io } from './cli/output.js';
import { resourceCommands } from './cli/resources.js';
import { workerCommands } from './cli/workers.js';
import { httpUrl } from './cli/args.js';
import { ApiError, SprocdClient } from './client/index.js';
import { initCommand } from './init/command.js';
import { runNode } from './start.js';
import { VERSION } from './version.js';

/** Builds the command tree; the client is made when a command runs, from the options and environment. */
export function buildCli(io: Io = processIo): Command {
  const program = new Command('sprocd')
    .description('sprocd: stored procedures on BullMQ and Redis, the 4D Server way')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--url <url>', 'the node to talk to (default: SPROCD_URL, else http://127.0.0.1:8080)', httpUrl)
    .option('--token <token>', 'its bearer token (default: SPROCD_TOKEN)')
    .option('--json', 'print JSON for scripts')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
      // commander's "error: ..." becomes the same one-line "sprocd: ..." as every other failure.
      outputError: (s, write) => write(`sprocd: ${s.replace(/^error: /, '')}`),
    })
    .showHelpAfterError('(sprocd help [command] shows the usage)')
    .exitOverride();

  const ctx: CliContext = {
    client: () => {
      const { url, token } = program.opts<{ url?: string; token?: string }>();
      return new SprocdClient({ url, token });
    },
    json: () => program.opts<{ json?: boolean }>().json === true,
    io,
  };

  const start = new Command('start')
    .description('run a node in the current folder (settings from the environment; see README)')
    .action(async () => {
      await runNode();
    });
  const commands = [
    start,
    initCommand(),
    ...executionCommands(ctx),
    ...processCommands(ctx),
    ...syncCommands(ctx),
    // watch has its own --json; the program's (which takes it wherever it is written) passes it on.
    watchCommand(ctx.client)
      .alias('events')
      .hook('preAction', (watch) => {
        if (ctx.json()) {
          watch.setOptionValue('json', true);
        }
      }),
    ...resourceCommands(ctx),
    ...workerCommands(ctx),
    ...backupCommands(ctx),
    auditCommand(ctx),
    callersCommand(ctx),
    completionCommand(ctx, program),
  ];
  for (const command of commands) {
    // Commands made apart from the program take its error handling and output.
    command.copyInheritedSettings(program);
    for (const sub of command.commands) {
      sub.copyInheritedSettings(program);
    }
    program.addCommand(command);
  }
  return program;
}

/** Runs the CLI with `argv`; resolves with the exit code after writing the reason of a failure. */
export async function run(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildCli(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end with 0; commander has written the rest (a usage error).
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof ApiError ? err.code : undefined;
    if (program.opts<{ json?: boolean }>().json) {
      io.err.write(`${JSON.stringify({ error: { code: code ?? 'INTERNAL', message } })}\n`);
    } else {
      io.err.write(`sprocd: ${message}${code ? ` [${code}]` : ''}\n`);
    }
    return exitCodeOf(err);
  }
}

/** The `sprocd` executable: runs the CLI on the process's arguments and exits with its code. */
export async function main(argv = process.argv): Promise<void> {
  const code = await run(argv.slice(2));
  if (code !== EXIT.ok) {
    process.exit(code);
  }
}

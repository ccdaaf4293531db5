/** `sprocd backup`, `restore` and `backups [list|run|restore]`. */
import fs from 'node:fs';
import { Command } from 'commander';
import type { BackupRecord } from '../client/index.js';
import { HISTORY_LIMIT } from '../lifecycle/backup-history.js';
import { wholeNumber } from './args.js';
import { confirm } from './confirm.js';
import type { CliContext } from './context.js';
import { CliError, EXIT, usageError } from './exit.js';
import { formatBytes, printJson, printTable } from './output.js';

/** Runs a backup on the node, with a ticker on stderr; exit 5 when it did not end with status 0. */
async function runBackup(ctx: CliContext): Promise<void> {
  const started = Date.now();
  ctx.io.err.write('backup running...');
  const ticker = setInterval(() => {
    ctx.io.err.write(` ${Math.round((Date.now() - started) / 1000)} s`);
  }, 1000);
  let record: BackupRecord;
  try {
    record = await ctx.client().backup();
  } finally {
    clearInterval(ticker);
    ctx.io.err.write('\n');
  }
  if (ctx.json()) {
    printJson(ctx.io, record);
  }
  const seconds = (record.durationMs / 1000).toFixed(1);
  if (record.status !== 0) {
    const why = record.message ? `: ${record.message}` : '';
    throw new CliError(
      'BACKUP_FAILED',
      `backup ${record.number} ended with status ${record.status} after ${seconds} s${why}`,
      EXIT.failed,
    );
  }
  if (!ctx.json()) {
    ctx.io.out.write(
      `backup ${record.number} done in ${seconds} s: ${record.file} (${formatBytes(record.size)})\n`,
    );
  }
}

/** Restores FILE after a confirmation (or --yes); prints the summary. */
async function runRestore(
  ctx: CliContext,
  file: string,
  opts: { yes?: boolean; allowUnsigned?: boolean },
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const client = ctx.client();
  if (!opts.yes) {
    await confirm(
      ctx.io,
      `Restore ${file} (${formatBytes(bytes.length)}) into the deployment of ${client.url}? It replaces the session storage and queues the file's unfinished executions.`,
      '--yes',
    );
  }
  printJson(ctx.io, await client.restore(bytes, { allowUnsigned: opts.allowUnsigned === true }));
}

function listCommand(ctx: CliContext, name: string): Command {
  return new Command(name)
    .description('the backup history, newest first, and the running backup')
    .option('--limit <n>', `how many (default 50, at most ${HISTORY_LIMIT})`, wholeNumber(1, HISTORY_LIMIT))
    .action(async (opts: { limit?: number }) => {
      const status = await ctx.client().backups(opts);
      if (ctx.json()) {
        printJson(ctx.io, status);
        return;
      }
      if (status.running) {
        const r = status.running;
        ctx.io.out.write(`running: ${r.trigger} ${r.number} on ${r.node} since ${r.startedAt}\n`);
      }
      if (status.nextScheduledAt) {
        ctx.io.out.write(`next scheduled: ${status.nextScheduledAt}\n`);
      }
      if (status.automaticStopped) {
        ctx.io.out.write(`automatic backups stopped after ${status.consecutiveFailures} failures (1401)\n`);
      }
      printTable(
        ctx.io,
        ['NUMBER', 'STATUS', 'OUTCOME', 'TRIGGER', 'NODE', 'STARTED', 'SECONDS', 'SIZE', 'FILE'],
        status.items.map((b) => [
          String(b.number),
          String(b.status),
          b.outcome,
          b.trigger,
          b.node,
          b.startedAt,
          (b.durationMs / 1000).toFixed(1),
          b.size === undefined ? '' : formatBytes(b.size),
          b.file ?? b.message ?? '',
        ]),
      );
    });
}

function downloadCommand(ctx: CliContext): Command {
  return new Command('download')
    .description("save backup N's file (from the node that wrote it: --url that node)")
    .argument('<n>', 'backup number', wholeNumber(1))
    .option('-o, --output <file>', 'where to save it (default: sprocd-N.backup here; - for stdout)')
    .action(async (n: number, opts: { output?: string }) => {
      const bytes = await ctx.client().backupFile(n);
      const target = opts.output ?? `sprocd-${n}.backup`;
      if (target === '-') {
        ctx.io.out.write(bytes);
        return;
      }
      try {
        fs.writeFileSync(target, bytes, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        throw usageError(
          `cannot write ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      if (ctx.json()) {
        printJson(ctx.io, { number: n, file: target, size: bytes.length });
      } else {
        ctx.io.out.write(`backup ${n}: ${target} (${formatBytes(bytes.length)})\n`);
      }
    });
}

function runCommand(ctx: CliContext, name: string): Command {
  return new Command(name)
    .description('run a backup now on the node (through the backup hooks)')
    .action(() => runBackup(ctx));
}

function restoreCommand(ctx: CliContext, name: string): Command {
  return new Command(name)
    .description('restore the session and unfinished executions from a backup FILE (asks first)')
    .argument('<file>', 'a backup file')
    .option('-y, --yes', 'do not ask for confirmation (needed when stdin is not a terminal)')
    .option(
      '--allow-unsigned',
      'restore a file the node cannot verify (unsigned, signed with another key, format 1): only one you trust',
    )
    .action((file: string, opts: { yes?: boolean; allowUnsigned?: boolean }) => runRestore(ctx, file, opts));
}

/** The backup commands: `backup` and `restore`, and the `backups` group that holds them all. */
export function backupCommands(ctx: CliContext): Command[] {
  const group = new Command('backups').description('backups: list (the default), run, restore, download');
  group.addCommand(listCommand(ctx, 'list'), { isDefault: true });
  group.addCommand(runCommand(ctx, 'run'));
  group.addCommand(restoreCommand(ctx, 'restore'));
  group.addCommand(downloadCommand(ctx));
  return [runCommand(ctx, 'backup'), restoreCommand(ctx, 'restore'), group];
}

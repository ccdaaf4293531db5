/**
 * `sprocd callers add NAME --scopes …`: makes a caller's token. The token is printed once (the node
 * keeps only its SHA-256), with the line for the callers file; `--file` also adds that line to the
 * file. Runs here, without a node: the file is the node's, read at its start and on SIGHUP.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { CallerEntrySchema, callerLine, parseCallersFile, type CallerEntry } from '../auth/callers-file.js';
import { SCOPES, scopeProblem } from '../auth/scopes.js';
import { newToken, tokenSha256 } from '../auth/tokens.js';
import { ConfigError, formatZodError } from '../errors.js';
import type { CliContext } from './context.js';
import { usageError } from './exit.js';
import { printJson } from './output.js';

/** Scopes from `--scopes a,b` (repeatable), each checked. */
function scopeList(raw: string, previous: string[] = []): string[] {
  const scopes = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const scope of scopes) {
    const problem = scopeProblem(scope);
    if (problem) {
      throw new InvalidArgumentError(`${problem}.`);
    }
  }
  return [...previous, ...scopes];
}

/** Adds `entry` to the callers file at `file` (made when missing), refusing a name it already has. */
function addToFile(file: string, entry: CallerEntry): void {
  let callers: unknown[] = [];
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8');
    let existing: CallerEntry[];
    try {
      existing = parseCallersFile(text, file);
    } catch (err) {
      throw err instanceof ConfigError ? usageError(err.message) : err;
    }
    if (existing.some((c) => c.name === entry.name)) {
      throw usageError(`${file} already has a caller "${entry.name}": remove it first, or pick another name`);
    }
    callers = (JSON.parse(text) as { callers: unknown[] }).callers;
  }
  callers.push(JSON.parse(callerLine(entry)));
  const body = `{"callers":[\n${callers.map((c) => `  ${JSON.stringify(c)}`).join(',\n')}\n]}\n`;
  // A reader (a node on SIGHUP) sees the old file or the new one, never half of it.
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(temp, body, { mode: 0o600 });
  fs.renameSync(temp, file);
}

/** `sprocd callers`. */
export function callersCommand(ctx: CliContext): Command {
  const add = new Command('add')
    .description(
      'make a caller: prints its token once, and the line for the callers file (SPROCD_CALLERS_FILE)',
    )
    .argument('<name>', 'the caller, as the audit trail will name it (1-64 of A-Z a-z 0-9 _ . @ -)')
    .requiredOption(
      '--scopes <scopes>',
      `comma-separated: ${SCOPES.join(', ')}, or execute:PATTERN (e.g. execute:reports/*)`,
      scopeList,
    )
    .option('--file <path>', 'also add the caller to this callers file (made when missing)')
    .action((name: string, opts: { scopes: string[]; file?: string }) => {
      const token = newToken();
      const parsed = CallerEntrySchema.safeParse({
        name,
        tokenSha256: tokenSha256(token),
        scopes: opts.scopes,
      });
      if (!parsed.success) {
        throw usageError(formatZodError(parsed.error));
      }
      const entry = parsed.data;
      if (opts.file) {
        addToFile(path.resolve(opts.file), entry);
      }
      const line = callerLine(entry);
      if (ctx.json()) {
        printJson(ctx.io, { ...entry, token, line, ...(opts.file ? { file: path.resolve(opts.file) } : {}) });
        return;
      }
      const where = opts.file
        ? `Added to ${path.resolve(opts.file)}; send the node SIGHUP to use it. The line:`
        : 'Add this line to the "callers" list of the callers file (SPROCD_CALLERS_FILE), then send the node SIGHUP:';
      ctx.io.out.write(
        `Token of caller "${entry.name}" (shown once: the node keeps only its SHA-256; keep it secret):\n\n` +
          `  ${token}\n\n${where}\n\n  ${line}\n`,
      );
    });
  return new Command('callers').description('manage the callers of a callers file').addCommand(add);
}

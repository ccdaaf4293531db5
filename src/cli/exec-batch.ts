/**
 * `sprocd exec --batch FILE|-`: many executions from a file or stdin, through the batch form of
 * POST /v1/executions. The input is a JSON array of items, or JSON lines (one item a line), each item
 * as the batch form takes it ({procedure, params?, name?, delayMs?, ...}). Every item is checked here
 * first, so a malformed one queues nothing at all; then the items go in chunks of at most
 * MAX_BATCH_EXECUTIONS, one request each. The node queues each chunk whole or not at all (a procedure
 * it does not have, params its schema refuses): a refused chunk stops the command, and the chunks
 * before it stay queued (their numbers are printed as each chunk is queued).
 */
import fs from 'node:fs';
import type { z } from 'zod';
import { ExecuteBatchItemSchema } from '../api/schemas/executions.js';
import type { ExecuteAnswer, SprocdClient } from '../client/index.js';
import { SprocdApiError } from '../client/index.js';
import { MAX_BATCH_EXECUTIONS } from '../procedures/executions.js';
import type { CliContext } from './context.js';
import { CliError, exitCodeOf, usageError } from './exit.js';
import type { Io } from './output.js';
import { printJson } from './output.js';

/** One item of the batch form, as the untyped client takes it. */
type ExecuteBatchItem = Parameters<SprocdClient['executeBatch']>[0][number];

/** One execution of the input, and where it was: "line 7" (JSON lines) or "item 3" (an array). */
export interface BatchItem {
  readonly where: string;
  readonly item: ExecuteBatchItem;
}

/** Reads FILE, or stdin for "-". */
async function readInput(io: Io, file: string): Promise<string> {
  if (file !== '-') {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw usageError(
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The first problem zod found in an item, as one phrase. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) {
    return 'not an execution';
  }
  const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${at}${issue.message}`;
}

/**
 * The items of `text` (named `source` in errors), each checked against the batch form. Throws a
 * usage error naming the line or item of the first bad one.
 */
export function parseBatch(text: string, source: string): BatchItem[] {
  const raw: { where: string; value: unknown }[] = [];
  if (text.trimStart().startsWith('[')) {
    let values: unknown;
    try {
      values = JSON.parse(text) as unknown;
    } catch (err) {
      throw usageError(`${source} is not a JSON array: ${(err as Error).message}`);
    }
    (values as unknown[]).forEach((value, i) => raw.push({ where: `item ${i + 1}`, value }));
  } else {
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') {
        return;
      }
      try {
        raw.push({ where: `line ${i + 1}`, value: JSON.parse(line) as unknown });
      } catch (err) {
        throw usageError(`${source} line ${i + 1} is not JSON: ${(err as Error).message}`);
      }
    });
  }
  if (raw.length === 0) {
    throw usageError(`${source} holds no executions (a JSON array of them, or one JSON object a line)`);
  }
  return raw.map(({ where, value }) => {
    const parsed = ExecuteBatchItemSchema.safeParse(value);
    if (!parsed.success) {
      throw usageError(`${source} ${where}: ${firstIssue(parsed.error)}; nothing was queued`);
    }
    return { where, item: parsed.data as ExecuteBatchItem };
  });
}

/** Splits `items` into requests of at most `size`. */
export function chunksOf<T>(items: readonly T[], size = MAX_BATCH_EXECUTIONS): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) {
    chunks.push(items.slice(i, i + size));
  }
  return chunks;
}

/** Runs `exec --batch`: prints one number a line as each chunk is queued, or (--json) every answer. */
export async function execBatch(ctx: CliContext, file: string): Promise<void> {
  const source = file === '-' ? 'stdin' : file;
  const items = parseBatch(await readInput(ctx.io, file), source);
  const client = ctx.client();
  const answers: ExecuteAnswer[] = [];
  for (const chunk of chunksOf(items)) {
    let queued: ExecuteAnswer[];
    try {
      queued = await client.executeBatch(chunk.map((x) => x.item));
    } catch (err) {
      throw chunkError(err, chunk, source, answers.length);
    }
    answers.push(...queued);
    if (!ctx.json()) {
      ctx.io.out.write(queued.map((x) => `${x.number}\n`).join(''));
    }
  }
  if (ctx.json()) {
    printJson(ctx.io, answers);
  }
}

/**
 * The error of a refused chunk, naming the input's line or item (the node names its index in the
 * chunk) and saying what stayed queued.
 */
function chunkError(
  err: unknown,
  chunk: readonly BatchItem[],
  source: string,
  queuedBefore: number,
): unknown {
  if (!(err instanceof SprocdApiError)) {
    return err;
  }
  const index = (err.details as { index?: unknown } | undefined)?.index;
  const item = typeof index === 'number' ? chunk[index] : undefined;
  const message = item
    ? `${source} ${item.where}: ${err.message.replace(/^executions\[\d+\]: /, '')}`
    : err.message;
  const kept =
    queuedBefore === 0
      ? 'nothing was queued'
      : `nothing of its chunk was queued; the ${queuedBefore} executions of the chunks before it stay queued`;
  return new CliError(err.code, `${message} (${kept})`, exitCodeOf(err));
}

/**
 * The callers file (SPROCD_CALLERS_FILE): named callers, each with the SHA-256 of its token (never
 * the token) and its scopes:
 *
 * ```json
 * {"callers":[{"name":"ci","tokenSha256":"<64 hex>","scopes":["read","execute:reports/*"]}]}
 * ```
 *
 * Read at the start and again on SIGHUP. Its problems are reported by caller name and field, never
 * with a digest in the message.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { scopeProblem } from './scopes.js';

/** The name of the caller SPROCD_TOKEN stands for. */
export const TOKEN_CALLER = 'SPROCD_TOKEN';
/** The name of the caller of a node without any token (loopback only). */
export const LOOPBACK_CALLER = 'loopback';

/** A caller's name: what the audit trail and the log show. */
const CallerName = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'use 1-64 of A-Z a-z 0-9 _ . @ -')
  .refine((name) => name !== TOKEN_CALLER && name !== LOOPBACK_CALLER, {
    message: `"${TOKEN_CALLER}" and "${LOOPBACK_CALLER}" are taken by sprocd`,
  });

/** One caller of the file. */
export const CallerEntrySchema = z.strictObject({
  name: CallerName,
  tokenSha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of the token in hex (64 characters)')
    .transform((hex) => hex.toLowerCase()),
  scopes: z
    .array(z.string().superRefine((text, ctx) => void check(text, ctx)))
    .min(1, 'give at least one scope'),
});

function check(text: string, ctx: z.core.$RefinementCtx<string>): void {
  const problem = scopeProblem(text);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem });
  }
}

/** A caller as the file lists it (digest in lower-case hex). */
export type CallerEntry = z.output<typeof CallerEntrySchema>;

const CallersFileSchema = z.strictObject({ callers: z.array(z.unknown()) });

/** The line a callers file needs for one caller (`sprocd callers add` prints it). */
export function callerLine(entry: CallerEntry): string {
  return JSON.stringify({ name: entry.name, tokenSha256: entry.tokenSha256, scopes: entry.scopes });
}

/**
 * The callers of the file's `text`; throws ConfigError naming `file` and each problem (by caller
 * and field; a digest is never shown).
 */
export function parseCallersFile(text: string, file: string): CallerEntry[] {
  const fail = (problems: string[]): never => {
    throw new ConfigError(`Bad SPROCD_CALLERS_FILE ${file}:\n  ${problems.join('\n  ')}`, { problems });
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail([`not JSON (${(err as Error).message.replace(/ in JSON at.*$/, '')})`]);
  }
  const top = CallersFileSchema.safeParse(json);
  if (!top.success) {
    fail(['the file must be {"callers":[{"name":…,"tokenSha256":…,"scopes":[…]}, …]}']);
  }
  const problems: string[] = [];
  const entries: CallerEntry[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  top.data!.callers.forEach((raw, index) => {
    const label =
      typeof (raw as { name?: unknown } | null)?.name === 'string'
        ? `caller "${String((raw as { name: string }).name).slice(0, 64)}"`
        : `caller #${index + 1}`;
    if (raw !== null && typeof raw === 'object' && 'token' in raw) {
      problems.push(`${label}: holds a "token"; the file keeps only its tokenSha256 (sprocd callers add)`);
      return;
    }
    const parsed = CallerEntrySchema.safeParse(raw);
    if (!parsed.success) {
      // Messages and paths only: zod's messages do not quote the value they refused.
      for (const issue of parsed.error.issues) {
        const at = issue.path.length > 0 ? `${z.core.toDotPath(issue.path)}: ` : '';
        problems.push(`${label}: ${at}${issue.message}`);
      }
      return;
    }
    const entry = parsed.data;
    if (names.has(entry.name)) {
      problems.push(`${label}: the name is listed twice`);
    }
    if (digests.has(entry.tokenSha256)) {
      problems.push(`${label}: the same token as another caller`);
    }
    names.add(entry.name);
    digests.add(entry.tokenSha256);
    entries.push(entry);
  });
  if (problems.length > 0) {
    fail(problems);
  }
  return entries;
}

/** Reads and checks the callers file at `file` (ConfigError when unreadable or bad). */
export function readCallersFile(file: string): CallerEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `SPROCD_CALLERS_FILE ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseCallersFile(text, file);
}

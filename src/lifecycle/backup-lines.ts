/**
 * What a restore accepts in each line of a backup, checked as if it came through the API: procedure
 * and process names, the JSON rule (depth) with the size limits of this deployment (storage entries:
 * SPROCD_STORAGE_MAX_ENTRY_BYTES; params: SPROCD_BODY_LIMIT), the storage key rules, only the job
 * options sprocd itself writes, safe integers for every number and counter. A line that breaks a
 * rule is refused with its number and the rule (docs/BACKUPS.md#restore).
 */
import { z } from 'zod';
import { formatZodError } from '../errors.js';
import { checkJson } from '../json.js';
import { MAX_ATTEMPTS, MAX_PRIORITY } from '../procedures/execute.js';
import { assertProcedureName, assertProcessName } from '../procedures/names.js';
import { assertKey } from '../session/values.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupInvalidError,
  UNSIGNED_VERSION,
  type BackupHeader,
  type ExecutionLine,
} from './backup-format.js';
import { SIGNATURE_ALGORITHM } from './backup-signature.js';

/** The limits of this deployment a restored line must keep. */
export interface RestoreLimits {
  /** SPROCD_STORAGE_MAX_ENTRY_BYTES: the largest storage entry, as JSON. */
  readonly maxEntryBytes: number;
  /** SPROCD_BODY_LIMIT: the largest params of a restored execution, as JSON. */
  readonly maxParamsBytes: number;
}

/** The longest header line (a line 1 longer than this is not a sprocd header). */
export const MAX_HEADER_BYTES = 64 * 1024;

/** The longest line a restore reads: the largest entry or params, with room for the rest of the line. */
export function maxLineBytes(limits: RestoreLimits): number {
  // A key of 255 UTF-16 units escapes to at most 6 bytes each; the other fields are short.
  return Math.max(limits.maxEntryBytes, limits.maxParamsBytes) + 64 * 1024;
}

const safeInt = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

const HeaderV2 = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  version: z.literal(BACKUP_VERSION),
  createdAt: z.string().max(64),
  prefix: z.string().max(256),
  node: z.string().max(256),
  number: safeInt(0),
  trigger: z.string().max(64),
  signature: z.enum([SIGNATURE_ALGORITHM, 'none']),
  keyId: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .optional(),
});
const HeaderV1 = HeaderV2.omit({ signature: true, keyId: true }).extend({
  version: z.literal(UNSIGNED_VERSION),
});

/**
 * The header (line 1): a foreign file, another version or an incomplete header is refused here,
 * before any other line is read.
 */
export function checkHeader(value: unknown): BackupHeader {
  if (!isObject(value) || value.format !== BACKUP_FORMAT) {
    throw new BackupInvalidError('its header is not that of a sprocd backup (a foreign file)');
  }
  if (value.version !== BACKUP_VERSION && value.version !== UNSIGNED_VERSION) {
    throw new BackupInvalidError(
      `it is format version ${JSON.stringify(value.version)}; this sprocd reads version ${BACKUP_VERSION} (and ${UNSIGNED_VERSION} with allowUnsigned)`,
    );
  }
  const parsed = (value.version === BACKUP_VERSION ? HeaderV2 : HeaderV1).safeParse(value);
  if (!parsed.success) {
    throw new BackupInvalidError(`its header is incomplete or malformed (${formatZodError(parsed.error)})`);
  }
  const header = parsed.data as BackupHeader;
  if (header.signature === SIGNATURE_ALGORITHM && header.keyId === undefined) {
    throw new BackupInvalidError('its header says it is signed but names no key id');
  }
  return header;
}

const SessionLine = z.strictObject({
  t: z.literal('session'),
  fields: z.strictObject({
    id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 of A-Z a-z 0-9 . _ : -'),
    createdAtMs: z
      .string()
      .regex(/^\d{1,16}$/, 'must be a whole number of milliseconds')
      .refine((s) => Number.isSafeInteger(Number(s)), 'must be a safe integer'),
    createdBy: z
      .string()
      .max(255)
      .refine((s) => !/\p{Cc}/u.test(s), 'must hold no control characters')
      .optional(),
  }),
});

/** A session line: the identity hash, with only the fields sprocd writes. */
export function checkSession(value: unknown, lineNo: number): Record<string, string> {
  return checked(SessionLine, value, lineNo).fields;
}

const SequenceLine = z.strictObject({ t: z.literal('sequence'), value: safeInt(0) });

/** A sequence line: the execution counter, a safe integer. */
export function checkSequence(value: unknown, lineNo: number): number {
  return checked(SequenceLine, value, lineNo).value;
}

/** A refusal of an entry's value, before the line number and key are added. */
class EntryValueError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** One options object for every entry: nothing is made per line unless the line is refused. */
const ENTRY_CHECK = {
  path: 'v',
  refuse: (path: string, reason: string) => new EntryValueError(path, reason),
};

/**
 * An entry line: a valid storage key and a JSON value of at most `maxEntryBytes`. Returns the
 * entry's JSON text as the storage keeps it. Written by hand: a storage may hold 250,000 of these.
 */
export function checkEntry(
  value: Record<string, unknown>,
  lineNo: number,
  limits: RestoreLimits,
): { name: string; json: string } {
  const { k, v } = value;
  if (Object.keys(value).length !== 3 || !('v' in value)) {
    throw new BackupInvalidError(`line ${lineNo} is malformed (an entry line has exactly t, k and v)`);
  }
  try {
    assertKey(k);
  } catch (err) {
    throw new BackupInvalidError(`line ${lineNo}: ${(err as Error).message}`);
  }
  try {
    checkJson(v, ENTRY_CHECK);
  } catch (err) {
    const { path, reason } = err as EntryValueError;
    throw new BackupInvalidError(`line ${lineNo}: storage entry ${JSON.stringify(k)} at ${path} ${reason}`);
  }
  const json = JSON.stringify(v);
  const bytes = json.length * 3 > limits.maxEntryBytes ? Buffer.byteLength(json) : json.length;
  if (bytes > limits.maxEntryBytes) {
    throw new BackupInvalidError(
      `line ${lineNo}: storage entry ${JSON.stringify(k)} is ${bytes} bytes of JSON, over SPROCD_STORAGE_MAX_ENTRY_BYTES (${limits.maxEntryBytes}) of this deployment`,
    );
  }
  return { name: k as string, json };
}

/** Retention as executions.ts writes it. */
const Retention = z.strictObject({ count: safeInt(0), age: safeInt(1) });

/** Only the job options sprocd writes (executions.ts) and a backup keeps (backup-snapshot.ts). */
const JobOptions = z.strictObject({
  attempts: safeInt(1, MAX_ATTEMPTS).optional(),
  backoff: z.strictObject({ type: z.enum(['fixed', 'exponential']), delay: safeInt(0) }).optional(),
  removeOnComplete: Retention.optional(),
  removeOnFail: Retention.optional(),
  deduplication: z.strictObject({ id: z.string().startsWith('name:') }).optional(),
});

const ExecutionSchema = z.strictObject({
  t: z.literal('execution'),
  n: safeInt(1),
  state: z.enum(['waiting', 'delayed']),
  from: z.enum(['wait', 'paused', 'prioritized', 'delayed', 'active']),
  name: z.string(),
  data: z.strictObject({
    procedure: z.string(),
    params: z.unknown(),
    id: z.uuid(),
    name: z.string(),
  }),
  opts: JobOptions,
  timestamp: safeInt(0),
  dueAt: safeInt(0).optional(),
  priority: safeInt(1, MAX_PRIORITY).optional(),
});

/**
 * An execution line: the names, params and options checked as POST /v1/executions would, and
 * consistent with each other (the job name is the procedure, a unique name is the process name).
 */
export function checkExecution(value: unknown, lineNo: number, limits: RestoreLimits): ExecutionLine {
  const line = checked(ExecutionSchema, value, lineNo);
  const at = `line ${lineNo} (execution ${line.n})`;
  const rule = (check: () => void) => {
    try {
      check();
    } catch (err) {
      throw new BackupInvalidError(`${at}: ${(err as Error).message}`);
    }
  };
  rule(() => assertProcedureName(line.name));
  if (line.data.procedure !== line.name) {
    throw new BackupInvalidError(`${at}: its data names procedure ${JSON.stringify(line.data.procedure)}`);
  }
  if (line.data.name !== '') {
    rule(() => assertProcessName(line.data.name));
  }
  if (
    line.opts.deduplication &&
    (line.data.name === '' || line.opts.deduplication.id !== `name:${line.data.name}`)
  ) {
    throw new BackupInvalidError(`${at}: its unique-name option does not match its process name`);
  }
  if ((line.state === 'delayed') !== (line.from === 'delayed')) {
    throw new BackupInvalidError(`${at}: state ${line.state} does not fit list ${line.from}`);
  }
  checkJson(line.data.params, {
    path: 'params',
    refuse: (path, reason) => new BackupInvalidError(`${at}: ${path} ${reason}`),
  });
  const bytes = Buffer.byteLength(JSON.stringify(line.data.params) ?? 'null');
  if (bytes > limits.maxParamsBytes) {
    throw new BackupInvalidError(
      `${at}: its params are ${bytes} bytes of JSON, over SPROCD_BODY_LIMIT (${limits.maxParamsBytes}) of this deployment`,
    );
  }
  return line as ExecutionLine;
}

/** Whether `value` is a JSON object (not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checked<T>(schema: z.ZodType<T>, value: unknown, lineNo: number): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BackupInvalidError(`line ${lineNo} is malformed (${formatZodError(parsed.error)})`);
  }
  return parsed.data;
}

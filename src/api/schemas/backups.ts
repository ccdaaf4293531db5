/** Schemas of /v1/backups and /v1/restore. */
import { z } from 'zod';
import { HISTORY_LIMIT } from '../../lifecycle/backup-history.js';
import { IsoTime } from './common.js';

/** How a backup started. */
const BackupTriggerSchema = z.enum(['manual', 'schedule', 'retry', 'missed']);

/** One backup as its history keeps it. */
export const BackupRecordSchema = z
  .object({
    number: z.number().int().positive(),
    trigger: BackupTriggerSchema,
    node: z.string(),
    startedAt: IsoTime,
    finishedAt: IsoTime,
    durationMs: z.number().min(0),
    status: z.number().int().describe('0, the number onBackupStartup returned, or an error status (README).'),
    outcome: z.enum(['done', 'cancelled', 'failed', 'skipped']),
    message: z.string().optional(),
    file: z.string().optional().describe('Full path of the file on the node that wrote it.'),
    size: z.number().int().min(0).optional().describe('File size in bytes.'),
    entries: z.number().int().min(0).optional(),
    executions: z.number().int().min(0).optional(),
    snapshotMs: z.number().min(0).optional(),
    scheduledAt: IsoTime.optional(),
    attempt: z.number().int().min(0).optional(),
    cause: z.number().int().optional(),
    shutdownHookError: z.string().optional(),
  })
  .meta({ id: 'BackupRecord' });

/** The query of GET /v1/backups. */
export const BackupListQuerySchema = z.strictObject({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(HISTORY_LIMIT)
    .optional()
    .describe(`How many records at most (default 50, at most ${HISTORY_LIMIT}).`),
});

/** The answer of GET /v1/backups. */
export const BackupStatusSchema = z
  .object({
    items: z.array(BackupRecordSchema).describe('The history, newest first.'),
    running: z
      .object({
        number: z.number().int().min(0).describe('The backup number; 0 for a restore.'),
        node: z.string(),
        trigger: z.enum(['manual', 'schedule', 'retry', 'missed', 'restore']),
        startedAt: IsoTime,
        progress: z.object({ phase: z.string(), done: z.number(), total: z.number() }).optional(),
      })
      .optional()
      .describe('The backup or restore running now, on any node.'),
    automaticStopped: z.boolean().describe('Automatic backups stopped after repeated failures (1401).'),
    consecutiveFailures: z.number().int().min(0),
    nextScheduledAt: IsoTime.optional().describe('When the next scheduled backup is due.'),
  })
  .meta({ id: 'BackupStatus' });

/** The answer of POST /v1/restore. */
export const RestoreSummarySchema = z
  .object({
    session: z.string().describe('The restored session id.'),
    entries: z.number().int().min(0).describe('Storage entries put back.'),
    executions: z.number().int().min(0).describe('Executions queued again.'),
    skipped: z.number().int().min(0).describe('Executions left alone because they exist.'),
    sequence: z.number().int().min(0).describe('The execution counter after the restore.'),
    signature: z
      .enum(['verified', 'unsigned', 'other-key', 'version-1'])
      .describe(
        "How far the file was trusted: verified (signed with this node's SPROCD_BACKUP_KEY) unless allowUnsigned let it in.",
      ),
    from: z.object({
      prefix: z.string(),
      node: z.string(),
      number: z.number().int(),
      createdAt: IsoTime,
    }),
  })
  .meta({ id: 'RestoreSummary' });

/** The body of POST /v1/restore: the bytes of a backup file (checked by the route, not here). */
export const BackupFileBody = z
  .any()
  .meta({ type: 'string', contentMediaType: 'application/octet-stream', description: 'A backup file.' });

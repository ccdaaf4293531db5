/** /v1/backups and /v1/restore. */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { z } from 'zod';
import { SprocdError, ValidationError } from '../errors.js';
import type { RestoreRequest } from '../lifecycle/restore.js';
import type { Access } from '../node-state.js';
import { withRedisTimeout } from '../redis/errors.js';
import {
  BackupFileBody,
  BackupListQuerySchema,
  BackupRecordSchema,
  BackupStatusSchema,
  RestoreSummarySchema,
} from './schemas/backups.js';
import { errors, ok } from './schemas/common.js';

/** The backups as their routes use them. */
export interface BackupsApi {
  /** The history (newest first, at most `limit`), the running backup, the automatic-backup state. */
  status(limit?: number): Promise<Omit<z.output<typeof BackupStatusSchema>, 'nextScheduledAt'>>;
  /** When the next scheduled backup is due (ISO), or undefined without a schedule. */
  nextBackupAt(): Promise<string | undefined>;
  /** Runs a manual backup here; resolves when it has ended (done, cancelled or failed). */
  runManual(): Promise<z.output<typeof BackupRecordSchema>>;
  /**
   * Restores the backup file the request streams: takes the backup lock first (ConflictError
   * before the body is read), then checks the file whole before it changes anything.
   */
  restore(request: RestoreRequest): Promise<z.output<typeof RestoreSummarySchema>>;
}

/** What the backup routes need of the node. */
export interface BackupsRouteDeps {
  /** The backups for `access`; throws NotReadyError or StoppingError when the node does not serve that now. */
  backups(access: Access): BackupsApi;
  /** SPROCD_RESTORE_MAX_BYTES: the largest backup file POST /v1/restore takes. */
  readonly restoreMaxBytes: number;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
  /** Where the route's own refusals of a restore are logged (the restore logs the rest). */
  readonly log: Logger;
}

/** The query of POST /v1/restore. */
const RestoreQuerySchema = z.strictObject({
  allowUnsigned: z
    .enum(['true', 'false'])
    .optional()
    .describe(
      'true: restore a file this node cannot verify (unsigned, signed with another key, format 1). Logged.',
    ),
});

const SEND_BYTES = 'Send the backup file as the body, with Content-Type: application/octet-stream.';

/** The backup routes, as a fastify plugin. */
export const backupRoutes: FastifyPluginAsyncZod<BackupsRouteDeps> = async (app, deps) => {
  const list = {
    operationId: 'listBackups',
    summary: 'The backup history (newest first), the running backup, the automatic-backup state.',
    querystring: BackupListQuerySchema,
    response: { 200: ok('The backups.', BackupStatusSchema), ...errors(400, 401) },
  };
  app.get('/backups', { schema: list }, async (request) => {
    const { limit } = request.query;
    const backups = deps.backups('read');
    const [status, nextScheduledAt] = await withRedisTimeout(
      Promise.all([backups.status(limit), backups.nextBackupAt()]),
      deps.redisTimeoutMs,
    );
    return nextScheduledAt === undefined ? status : { ...status, nextScheduledAt };
  });

  // Runs the backup on this node and answers when it has ended (done, cancelled or failed).
  const run = {
    operationId: 'runBackup',
    summary: 'Run a backup on this node; answers with its record when it has ended.',
    description: 'The record says how it ended: status 0 is done; see the README for the other statuses.',
    response: {
      200: ok('The backup ended (done, cancelled or failed).', BackupRecordSchema),
      ...errors(401, 409),
    },
  };
  app.post('/backups', { schema: run }, async () => deps.backups('work').runManual());

  // The restore takes the body as a stream, read only once the restore holds the backup lock (a
  // second restore is refused before its body is read); SPROCD_RESTORE_MAX_BYTES is counted here.
  await app.register(async (scope) => {
    const limit = deps.restoreMaxBytes;
    const refuse = (err: SprocdError): never => {
      deps.log.warn({ part: 'restore', code: err.code, reason: err.message }, 'restore refused');
      throw err;
    };
    scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    scope.setErrorHandler((err, request, reply) => {
      if (!request.raw.readableEnded) {
        // What is left of the upload is not read: the connection closes after the answer.
        void reply.header('connection', 'close');
      }
      if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        refuse(new SprocdError('UNSUPPORTED_MEDIA_TYPE', SEND_BYTES));
      }
      throw err; // the API's own handler answers (and logs what is unexpected)
    });
    const restore = {
      operationId: 'restore',
      summary: 'Restore the session and unfinished executions from a backup file.',
      description:
        "The file must be signed with this node's SPROCD_BACKUP_KEY unless allowUnsigned=true. One restore or backup at a time in the deployment (409).",
      consumes: ['application/octet-stream'],
      querystring: RestoreQuerySchema,
      body: BackupFileBody,
      response: { 200: ok('Restored.', RestoreSummarySchema), ...errors(400, 401, 409, 413, 415) },
    };
    scope.post('/restore', { schema: restore }, async (request) => {
      const backups = deps.backups('work');
      const body: unknown = request.body;
      if (!(body instanceof Readable)) {
        return refuse(new SprocdError('UNSUPPORTED_MEDIA_TYPE', SEND_BYTES));
      }
      const length = Number(request.headers['content-length'] ?? Number.NaN);
      if (length === 0) {
        return refuse(new ValidationError('Send the bytes of a backup file (sprocd restore FILE does).'));
      }
      if (length > limit) {
        return refuse(
          new SprocdError(
            'PAYLOAD_TOO_LARGE',
            `The backup file is larger than SPROCD_RESTORE_MAX_BYTES (${limit} bytes).`,
          ),
        );
      }
      // Checked by the schema above (this scope has fastify's own types, not the zod provider's).
      const query = request.query as z.output<typeof RestoreQuerySchema>;
      return backups.restore({ body, allowUnsigned: query.allowUnsigned === 'true' });
    });
  });
};

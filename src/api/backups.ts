/** /v1/backups and /v1/restore. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { SprocdError, ValidationError } from '../errors.js';
import type { Access } from '../node-state.js';
import { withRedisTimeout } from '../redis/errors.js';
import { toHttpError } from './errors.js';
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
  /** Checks and restores a backup file's bytes. */
  restore(bytes: Buffer): Promise<z.output<typeof RestoreSummarySchema>>;
}

/** What the backup routes need of the node. */
export interface BackupsRouteDeps {
  /** The backups for `access`; throws NotReadyError or StoppingError when the node does not serve that now. */
  backups(access: Access): BackupsApi;
  /** SPROCD_RESTORE_MAX_BYTES: the largest backup file POST /v1/restore takes. */
  readonly restoreMaxBytes: number;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
}

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

  // The restore takes raw bytes, up to SPROCD_RESTORE_MAX_BYTES: its own parser and limit, here only.
  await app.register(async (scope) => {
    const limit = deps.restoreMaxBytes;
    scope.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: limit },
      (_req, body, done) => done(null, body),
    );
    scope.setErrorHandler((err, _request, reply) => {
      const code = (err as { code?: string }).code;
      const mapped =
        code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? new SprocdError(
              'PAYLOAD_TOO_LARGE',
              `The backup file is larger than SPROCD_RESTORE_MAX_BYTES (${limit} bytes).`,
            )
          : code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? new SprocdError('UNSUPPORTED_MEDIA_TYPE', SEND_BYTES)
            : err;
      const { status, body } = toHttpError(mapped);
      void reply.status(status).send(body);
    });
    const restore = {
      operationId: 'restore',
      summary: 'Restore the session and unfinished executions from a backup file.',
      consumes: ['application/octet-stream'],
      body: BackupFileBody,
      response: { 200: ok('Restored.', RestoreSummarySchema), ...errors(400, 401, 409, 413, 415) },
    };
    scope.post('/restore', { bodyLimit: limit, schema: restore }, async (request) => {
      const backups = deps.backups('work');
      const body = request.body;
      if (body !== undefined && body !== null && !Buffer.isBuffer(body)) {
        throw new SprocdError('UNSUPPORTED_MEDIA_TYPE', SEND_BYTES);
      }
      if (!body || body.length === 0) {
        throw new ValidationError('Send the bytes of a backup file (sprocd restore FILE does).');
      }
      return backups.restore(body);
    });
  });
};

/** /v1/backups and /v1/restore. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { SprocdError, ValidationError } from '../errors.js';
import { HISTORY_LIMIT } from '../lifecycle/backup-history.js';
import type { Access } from '../node-state.js';
import { withRedisTimeout } from '../redis/errors.js';
import { toHttpError } from './errors.js';
import { parseOr400 } from './executions.js';

/** The backups as their routes use them. */
export interface BackupsApi {
  /** The history (newest first, at most `limit`), the running backup, the automatic-backup state. */
  status(limit?: number): Promise<object>;
  /** When the next scheduled backup is due (ISO), or undefined without a schedule. */
  nextBackupAt(): Promise<string | undefined>;
  /** Runs a manual backup here; resolves when it has ended (done, cancelled or failed). */
  runManual(): Promise<object>;
  /** Checks and restores a backup file's bytes. */
  restore(bytes: Buffer): Promise<object>;
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

const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(HISTORY_LIMIT).optional(),
});

const SEND_BYTES = 'Send the backup file as the body, with Content-Type: application/octet-stream.';

/** The backup routes, as a fastify plugin. */
export const backupRoutes: FastifyPluginAsync<BackupsRouteDeps> = async (app, deps) => {
  app.get('/backups', async (request) => {
    const { limit } = parseOr400(ListQuery, request.query, 'query');
    const backups = deps.backups('read');
    const [status, nextScheduledAt] = await withRedisTimeout(
      Promise.all([backups.status(limit), backups.nextBackupAt()]),
      deps.redisTimeoutMs,
    );
    return nextScheduledAt === undefined ? status : { ...status, nextScheduledAt };
  });

  // Runs the backup on this node and answers when it has ended (done, cancelled or failed).
  app.post('/backups', async () => deps.backups('work').runManual());

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
    scope.post('/restore', { bodyLimit: limit }, async (request) => {
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

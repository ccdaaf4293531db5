/** /v1/backups and /v1/restore. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { NotReadyError, SprocdError, StoppingError, ValidationError } from '../errors.js';
import { HISTORY_LIMIT } from '../lifecycle/backup.js';
import type { LifecycleServices } from '../lifecycle/index.js';
import type { SprocdNode } from '../node.js';
import { withRedisTimeout } from '../redis/errors.js';
import { toHttpError } from './errors.js';
import { parseOr400 } from './executions.js';

const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(HISTORY_LIMIT).optional(),
});

export function backupRoutes(app: FastifyInstance, node: SprocdNode): void {
  const timeout = node.settings.redisTimeoutMs;
  const lifecycle = (): LifecycleServices => {
    if (node.state === 'stopping' || node.state === 'stopped') {
      throw new StoppingError();
    }
    if (node.state !== 'ready' || !node.lifecycle) {
      throw new NotReadyError();
    }
    return node.lifecycle;
  };

  app.get('/backups', async (request) => {
    const { limit } = parseOr400(ListQuery, request.query, 'query');
    const services = node.lifecycle;
    if (!services) {
      throw new NotReadyError();
    }
    const [status, nextScheduledAt] = await withRedisTimeout(
      Promise.all([services.backups.status(limit), services.schedules.nextBackupAt()]),
      timeout,
    );
    return nextScheduledAt === undefined ? status : { ...status, nextScheduledAt };
  });

  // Runs the backup on this node and answers when it has ended (done, cancelled or failed).
  app.post('/backups', async () => lifecycle().backups.run('manual'));

  // The restore takes raw bytes, up to SPROCD_RESTORE_MAX_BYTES: its own parser and limit, here only.
  void app.register(async (scope) => {
    const limit = node.settings.restoreMaxBytes;
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
            ? new SprocdError(
                'UNSUPPORTED_MEDIA_TYPE',
                'Send the backup file as the body, with Content-Type: application/octet-stream.',
              )
            : err;
      const { status, body } = toHttpError(mapped);
      void reply.status(status).send(body);
    });
    scope.post('/restore', { bodyLimit: limit }, async (request) => {
      const services = lifecycle();
      const body = request.body;
      if (body !== undefined && body !== null && !Buffer.isBuffer(body)) {
        throw new SprocdError(
          'UNSUPPORTED_MEDIA_TYPE',
          'Send the backup file as the body, with Content-Type: application/octet-stream.',
        );
      }
      if (!body || body.length === 0) {
        throw new ValidationError('Send the bytes of a backup file (sprocd restore FILE does).');
      }
      return services.restore(body);
    });
  });
}

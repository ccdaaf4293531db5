/** GET /v1/audit: the audit trail (who changed what), newest first, page by page. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AuditPage, AuditQuery } from '../auth/audit.js';
import { withRedisTimeout } from '../redis/errors.js';
import { AuditPageSchema, AuditQuerySchema } from './schemas/audit.js';
import { errors, ok } from './schemas/common.js';

/** The trail as the route reads it. */
export interface AuditReader {
  page(query: AuditQuery): Promise<AuditPage>;
}

/** What the audit route needs of the node. */
export interface AuditRouteDeps {
  /** The trail; throws NotReadyError until the node has Redis. Absent (API tests' fakes): an empty trail. */
  readonly audit?: () => AuditReader;
  readonly redisTimeoutMs: number;
}

/** The audit route, as a fastify plugin. */
export const auditRoutes: FastifyPluginAsyncZod<AuditRouteDeps> = async (app, deps) => {
  app.get(
    '/audit',
    {
      schema: {
        operationId: 'listAudit',
        summary: 'The audit trail: who executed, aborted, retried, backed up, restored or edited what.',
        description:
          'Newest first; the trail keeps the last SPROCD_AUDIT_MAX entries of the deployment (every node writes to it).',
        querystring: AuditQuerySchema,
        response: { 200: ok('A page of the trail.', AuditPageSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const trail = deps.audit?.();
      if (!trail) {
        return { items: [] };
      }
      return withRedisTimeout(trail.page(request.query), deps.redisTimeoutMs);
    },
  );
};

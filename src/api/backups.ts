/** /v1/backups and /v1/restore. */
import type { FastifyInstance } from 'fastify';
import type { SprocdNode } from '../node.js';

export function backupRoutes(_app: FastifyInstance, _node: SprocdNode): void {
  // filled in by the backup issue
}

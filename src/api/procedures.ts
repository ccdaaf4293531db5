/** /v1/procedures: what jobs/ holds, with params as JSON Schema. */
import type { FastifyInstance } from 'fastify';
import type { SprocdNode } from '../node.js';

export function procedureRoutes(app: FastifyInstance, node: SprocdNode): void {
  app.get('/procedures', async () => ({ items: node.registry.list() }));
}

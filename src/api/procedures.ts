/** /v1/procedures: what jobs/ holds, with params as JSON Schema. */
import type { FastifyPluginAsync } from 'fastify';
import type { ProcedureListing } from '../procedures/registry.js';

/** What the procedure routes need of the node. */
export interface ProceduresRouteDeps {
  /** The loaded procedures as GET /v1/procedures lists them. */
  procedures(): ProcedureListing[];
}

/** The procedure routes, as a fastify plugin. */
export const procedureRoutes: FastifyPluginAsync<ProceduresRouteDeps> = async (app, deps) => {
  app.get('/procedures', async () => ({ items: deps.procedures() }));
};

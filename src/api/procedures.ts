/** /v1/procedures: what jobs/ holds, with params as JSON Schema. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ProcedureListing } from '../procedures/registry.js';
import { ProcedureListSchema } from './schemas/cluster.js';
import { errors, ok } from './schemas/common.js';

/** What the procedure routes need of the node. */
export interface ProceduresRouteDeps {
  /** The loaded procedures as GET /v1/procedures lists them. */
  procedures(): ProcedureListing[] | Promise<ProcedureListing[]>;
}

/** The procedure routes, as a fastify plugin. */
export const procedureRoutes: FastifyPluginAsyncZod<ProceduresRouteDeps> = async (app, deps) => {
  const schema = {
    operationId: 'listProcedures',
    summary: 'The procedures of jobs/, with the JSON Schema of their params.',
    response: { 200: ok('The procedures.', ProcedureListSchema), ...errors(401) },
  };
  app.get('/procedures', { schema }, async () => ({ items: await deps.procedures() }));
};

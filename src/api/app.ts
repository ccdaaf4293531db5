/**
 * The HTTP API (fastify): health routes that answer from the first moment, and /v1 behind the bearer
 * token. Routes live one file per resource; errors are mapped once, in ./errors.ts.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { SprocdNode } from '../node.js';
import { bearerChecker } from './auth.js';
import { backupRoutes } from './backups.js';
import { toHttpError } from './errors.js';
import { executionRoutes } from './executions.js';
import { healthRoutes } from './health.js';
import { nodeRoutes } from './nodes.js';
import { procedureRoutes } from './procedures.js';
import { sessionRoutes } from './session.js';

/** The node's HTTP server. */
export interface Api {
  readonly app: FastifyInstance;
  /** The URL it listens on (after listen()). */
  readonly url: string;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** Builds the API of `node`. */
export async function buildApi(node: SprocdNode): Promise<Api> {
  const s = node.settings;
  const app = Fastify({
    bodyLimit: s.bodyLimit,
    // Requests are not logged one by one (executions are); unexpected errors are, below.
    logger: false,
    // Request ids are for logs only; no header in, no header out.
    return503OnClosing: true,
    // Errors fastify raises before a route runs (a URL that does not decode) get our error shape too.
    frameworkErrors: (err, _request, reply) => {
      const { status, body } = toHttpError(err);
      void (reply as unknown as FastifyReply).status(status).send(body);
    },
  });
  app.removeContentTypeParser('text/plain');
  const log = node.log.child({ part: 'api' });
  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toHttpError(err);
    if (status >= 500 && body.error.code === 'INTERNAL') {
      log.error({ err, method: request.method, url: request.url }, 'request failed');
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url}.` } });
  });

  healthRoutes(app, node);
  const checkToken = bearerChecker(s.token);
  // Prometheus scrapes with the same bearer token as /v1 (scrape_configs: authorization).
  app.get('/metrics', async (request, reply) => {
    checkToken(request.headers.authorization);
    const body = await node.metrics.registry.metrics();
    return reply.type(node.metrics.registry.contentType).send(body);
  });
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request) => {
        checkToken(request.headers.authorization);
      });
      executionRoutes(v1, node);
      procedureRoutes(v1, node);
      sessionRoutes(v1, node);
      nodeRoutes(v1, node);
      backupRoutes(v1, node);
    },
    { prefix: '/v1' },
  );

  let url = '';
  return {
    app,
    get url() {
      return url;
    },
    async listen() {
      url = await app.listen({ host: s.host, port: s.port });
      const address = app.server.address();
      if (address && typeof address === 'object') {
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        url = `http://${host}:${address.port}`;
      }
    },
    async close() {
      await app.close();
    },
  };
}

/**
 * The API's OpenAPI 3.1 document at /openapi.json and its interactive docs at /docs (Swagger UI,
 * served from node_modules). The document is made by @fastify/swagger from the routes' own zod
 * schemas (the ones that validate requests), and completed at each request with what only the node
 * knows: one request body variant of POST /v1/executions per loaded procedure, with that
 * procedure's params schema as a request gives them (zod's `io: 'input'`). The document and the docs'
 * files carry no data and are served without the token, as /healthz is.
 */
import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { VERSION } from '../version.js';
import { MAX_BATCH_EXECUTIONS } from '../procedures/execution-requests.js';
import { errors, ok } from './schemas/common.js';
import { ExecuteFields } from './schemas/executions.js';

/** A loaded procedure, as the document describes it. */
export interface DocumentedProcedure {
  readonly name: string;
  readonly description?: string;
  /** The zod schema of its params (its input side is documented). */
  readonly params?: unknown;
}

/** What the document needs of the node. */
export interface OpenApiRouteDeps {
  /** The loaded procedures with their params schemas (none while the node starts). */
  procedureSchemas(): Iterable<DocumentedProcedure>;
}

/** An OpenAPI document, as far as this module reads it. */
type Document = Record<string, unknown> & {
  paths?: Record<
    string,
    Record<string, { requestBody?: { content?: Record<string, { schema?: unknown }> } }>
  >;
  components?: { schemas?: Record<string, unknown> };
};

/** Where the docs live; their files and the document need no token. */
export const DOCS_PREFIX = '/docs';

// Swagger UI's own files only: no CDN, no validator.swagger.io, and no upgrade to https (a node on a
// private network often answers plain http). Swagger UI sets style attributes, hence 'unsafe-inline'.
const DOCS_POLICY = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
].join('; ');

const zodTransform = createJsonSchemaTransform({ skipList: [] });
const zodTransformObject = createJsonSchemaTransformObject({});

/** The tag of a route: its resource (executions, session, ...), or what it is for. */
function tagOf(url: string): string {
  const parts = url.split('/').filter(Boolean);
  if (parts[0] === 'v1') {
    return parts[1] ?? 'v1';
  }
  if (url === '/healthz' || url === '/readyz' || url === '/metrics') {
    return 'operations';
  }
  return parts[0] === 'console' ? 'console' : 'docs';
}

/** The console's files are not API but are routes of the node: documented briefly. */
const CONSOLE_DOC = {
  summary: "The operator's console (HTML, scripts, styles); no token, its data calls need one.",
  response: {
    200: { description: 'A file of the console.', content: { 'text/html': { schema: { type: 'string' } } } },
    302: { description: 'To /console/.' },
    304: { description: 'Not modified (ETag).' },
    404: {
      description: 'No such file.',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    },
  },
};

/** @fastify/swagger's per-route transform: zod → JSON Schema, then tags, security and the console. */
const transform: SwaggerTransform = (input) => {
  const { url } = input;
  const converted = input.schema ? zodTransform(input) : { schema: undefined, url };
  const schema: Record<string, unknown> = {
    ...(converted.schema as Record<string, unknown> | undefined),
    ...(url === '/console' || url.startsWith('/console/') ? CONSOLE_DOC : {}),
  };
  schema.tags ??= [tagOf(url)];
  if (url.startsWith('/v1/') || url === '/metrics') {
    schema.security = [{ bearer: [] }];
  }
  return { schema, url };
};

/**
 * Drops the components nothing refers to: the zod registry gives every named schema an input and
 * an output form, and most are used one way only.
 */
function pruneComponents(doc: Document): Document {
  const schemas = doc.components?.schemas;
  if (!schemas) {
    return doc;
  }
  const refsIn = (value: unknown): string[] =>
    [...JSON.stringify(value).matchAll(/"#\/components\/schemas\/([^"/]+)/g)].map((m) => m[1]!);
  const used = new Set(refsIn({ ...doc, components: { ...doc.components, schemas: {} } }));
  for (const queue = [...used]; queue.length > 0;) {
    for (const id of refsIn(schemas[queue.pop()!])) {
      if (!used.has(id)) {
        used.add(id);
        queue.push(id);
      }
    }
  }
  doc.components!.schemas = Object.fromEntries(Object.entries(schemas).filter(([id]) => used.has(id)));
  return doc;
}

/** A component name for procedure `name`'s request body (OpenAPI allows [A-Za-z0-9._-]). */
function componentName(name: string, taken: Set<string>, prefix = 'Execute'): string {
  const base = `${prefix}.${name.replace(/[^A-Za-z0-9_-]/g, '.')}`;
  let id = base;
  for (let i = 2; taken.has(id); i++) {
    id = `${base}.${i}`;
  }
  taken.add(id);
  return id;
}

const optionsJson = z.toJSONSchema(ExecuteFields, { io: 'input', target: 'draft-2020-12' }) as {
  properties: Record<string, unknown>;
};

/** A batch item takes the options of a single request but `wait`. */
const itemOptionsJson = Object.fromEntries(
  Object.entries(optionsJson.properties).filter(([name]) => name !== 'wait'),
);

const variants = new WeakMap<
  object,
  { id: string; itemId: string; schema: Record<string, unknown>; item: Record<string, unknown> }
>();

/**
 * Whether a request may leave out the params of a procedure with `schema`: the node then runs it
 * with what the schema makes of undefined, or of {} (src/procedures/params.ts).
 */
function runsWithoutParams(schema: z.ZodType): boolean {
  try {
    return schema.safeParse(undefined).success || schema.safeParse({}).success;
  } catch {
    return false; // an async refinement: it says nothing here
  }
}

/**
 * The request body of POST /v1/executions for one procedure: Execute on server's options with
 * `procedure` fixed and `params` as the procedure's input schema (required unless it runs without).
 */
export function procedureRequestSchema(
  procedure: DocumentedProcedure,
  id: string,
  form: 'single' | 'batch item' = 'single',
): Record<string, unknown> {
  let params: Record<string, unknown> = { description: 'Any JSON value (the procedure declares no schema).' };
  let required = false;
  if (procedure.params) {
    try {
      const schema = procedure.params as z.ZodType;
      params = z.toJSONSchema(schema, {
        io: 'input',
        unrepresentable: 'any',
        target: 'draft-2020-12',
      }) as Record<string, unknown>;
      delete params.$schema;
      required = !runsWithoutParams(schema);
    } catch {
      params = {};
    }
  }
  const schema = {
    type: 'object',
    title: procedure.name,
    ...(procedure.description ? { description: procedure.description } : {}),
    properties: {
      procedure: { const: procedure.name },
      params,
      ...(form === 'single' ? optionsJson.properties : itemOptionsJson),
    },
    required: required ? ['procedure', 'params'] : ['procedure'],
    additionalProperties: false,
  };
  // References inside the params schema point at its own $defs, which now live under the component.
  const at = `#/components/schemas/${id}/properties/params`;
  return JSON.parse(
    JSON.stringify(schema)
      .replaceAll('"#/$defs/', `"${at}/$defs/`)
      .replaceAll('"$ref":"#"', `"$ref":"${at}"`),
  ) as Record<string, unknown>;
}

/**
 * `document` (a copy) with POST /v1/executions' body as one variant per procedure, by `procedure`
 * (component `Execute`), or a batch whose items are the same variants without `wait`
 * (`ExecuteBatch`, items `ExecuteBatchItem`).
 */
export function withProcedures(document: Document, procedures: Iterable<DocumentedProcedure>): Document {
  const doc = structuredClone(document);
  const body = doc.paths?.['/v1/executions']?.post?.requestBody?.content?.['application/json'];
  const list = [...procedures];
  if (!body || list.length === 0) {
    return doc;
  }
  const schemas = (doc.components ??= {}).schemas ?? {};
  doc.components.schemas = schemas;
  const taken = new Set(Object.keys(schemas));
  const mapping: Record<string, string> = {};
  const itemMapping: Record<string, string> = {};
  for (const procedure of list) {
    const id = componentName(procedure.name, taken);
    const itemId = componentName(procedure.name, taken, 'ExecuteBatchItem');
    // A procedure object lives until the next reload: its schema is converted once.
    let cached = variants.get(procedure);
    if (cached?.id !== id || cached.itemId !== itemId) {
      cached = {
        id,
        itemId,
        schema: procedureRequestSchema(procedure, id),
        item: procedureRequestSchema(procedure, itemId, 'batch item'),
      };
      variants.set(procedure, cached);
    }
    schemas[id] = cached.schema;
    schemas[itemId] = cached.item;
    mapping[procedure.name] = `#/components/schemas/${id}`;
    itemMapping[procedure.name] = `#/components/schemas/${itemId}`;
  }
  schemas.Execute = {
    oneOf: Object.values(mapping).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'procedure', mapping },
  };
  schemas.ExecuteBatchItem = {
    oneOf: Object.values(itemMapping).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'procedure', mapping: itemMapping },
  };
  schemas.ExecuteBatch = {
    type: 'object',
    title: 'batch',
    description: `1 to ${MAX_BATCH_EXECUTIONS} executions, all queued or none; answered with them in order.`,
    properties: {
      executions: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH_EXECUTIONS,
        items: { $ref: '#/components/schemas/ExecuteBatchItem' },
      },
    },
    required: ['executions'],
    additionalProperties: false,
  };
  body.schema = {
    oneOf: [{ $ref: '#/components/schemas/Execute' }, { $ref: '#/components/schemas/ExecuteBatch' }],
  };
  return doc;
}

/**
 * Registers the document's generator (before any route, so that it sees them all), GET
 * /openapi.json and the docs at /docs.
 */
export async function registerOpenApi(app: FastifyInstance, deps: OpenApiRouteDeps): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'sprocd',
        version: VERSION,
        description:
          "A node's HTTP API: Execute on server, executions, the shared session, backups. Errors answer " +
          '`{"error":{"code","message","details"?}}`. Everything under /v1 and /metrics needs ' +
          '`Authorization: Bearer <SPROCD_TOKEN>` when the node has a token.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'SPROCD_TOKEN' } },
      },
    },
    transform,
    transformObject: (input) => pruneComponents(zodTransformObject(input) as Document) as never,
  });

  const documentNow = (): Document =>
    withProcedures(app.swagger() as unknown as Document, deps.procedureSchemas());

  app.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This OpenAPI 3.1 document.',
        operationId: 'openapi',
        response: {
          200: ok('The OpenAPI document.', z.record(z.string(), z.unknown())),
          ...errors(),
        },
      },
    },
    async () => documentNow(),
  );

  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: DOCS_POLICY,
    // The UI shows the same document as /openapi.json, with the procedures' variants.
    transformSpecificationClone: false,
    transformSpecification: () => documentNow(),
    uiConfig: { deepLinking: true, displayRequestDuration: true },
  });
}

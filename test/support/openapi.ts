/**
 * Checks answers against the node's own /openapi.json: the route and status must be documented, the
 * content type too, and a JSON body must match the schema of that route, status and type (ajv,
 * JSON Schema 2020-12 as OpenAPI 3.1 uses it). fakeApi's `inject` and the test nodes' clients run
 * every answer through it, so the suite checks the document wherever it calls the API.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';

/** An OpenAPI document, as far as the checker reads it. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

/** One answer to check. */
export interface Answer {
  method: string;
  /** The request URL (path and query). */
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Matches request paths to the document's path templates, the most specific first. */
function pathMatchers(doc: OpenApiDocument): { template: string; re: RegExp }[] {
  return Object.keys(doc.paths)
    .map((template) => ({
      template,
      params: (template.match(/\{[^}]+\}/g) ?? []).length,
      re: new RegExp(
        `^${template
          .split(/(\{[^}]+\})/)
          .map((part) => (part === '{*}' ? '.*' : part.startsWith('{') ? '[^/]+' : escape(part)))
          .join('')}$`,
      ),
    }))
    .sort((a, b) => a.params - b.params)
    .map(({ template, re }) => ({ template, re }));
}

/** A checker of answers against `doc`. */
export class ResponseChecker {
  private readonly ajv: Ajv2020;
  private readonly paths: { template: string; re: RegExp }[];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly doc: OpenApiDocument) {
    // The document holds OpenAPI keywords (discriminator, ...) besides JSON Schema: not strict.
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    addFormats.default(this.ajv);
    this.ajv.addSchema(doc as object, 'openapi.json');
    this.paths = pathMatchers(doc);
  }

  /** The path template of `path`, or undefined when the document has none. */
  templateOf(path: string): string | undefined {
    return this.paths.find(({ re }) => re.test(path))?.template;
  }

  /** Throws with what does not match when `answer` is not what the document says. */
  check(answer: Answer): void {
    const path = answer.url.split('?')[0] ?? '';
    if (answer.method === 'HEAD') {
      // fastify answers HEAD for every GET route: the GET documents it, without a body.
      this.check({ ...answer, method: 'GET', contentType: undefined });
      return;
    }
    const where = `${answer.method} ${path} → ${answer.status}`;
    if (path === '/docs' || path.startsWith('/docs/')) {
      return; // Swagger UI's own files: hidden from the document on purpose
    }
    const template = this.templateOf(path);
    const operation = template ? this.doc.paths[template]?.[answer.method.toLowerCase()] : undefined;
    if (!template || !operation) {
      // No route: fastify's not-found handler, which answers the error shape.
      if (answer.status !== 404 && answer.status !== 405) {
        throw new Error(`${where}: /openapi.json has no ${answer.method} ${path}`);
      }
      this.validate(where, '#/components/schemas/Error', answer.body);
      return;
    }
    const status = String(answer.status);
    const response = operation.responses[status] ?? operation.responses[`${status[0]}XX`];
    if (!response) {
      throw new Error(
        `${where}: status ${status} is not documented for ${answer.method} ${template} (src/api/schemas)`,
      );
    }
    if (!response.content || answer.status === 304 || answer.contentType === undefined) {
      return;
    }
    const type = (answer.contentType ?? '').split(';')[0]!.trim();
    const mediaType = Object.keys(response.content).find((t) => t.split(';')[0]!.trim() === type);
    if (mediaType === undefined) {
      throw new Error(
        `${where}: content type ${JSON.stringify(type)} is not documented (${Object.keys(response.content).join(', ')})`,
      );
    }
    if (type === 'application/json') {
      const pointer = [
        'paths',
        template,
        answer.method.toLowerCase(),
        'responses',
        status,
        'content',
        mediaType,
        'schema',
      ]
        .map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1'))
        .join('/');
      this.validate(where, `#/${pointer}`, answer.body);
    }
  }

  private validate(where: string, pointer: string, body: string): void {
    let validate = this.compiled.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `openapi.json${pointer}` });
      this.compiled.set(pointer, validate);
    }
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      throw new Error(`${where}: the body is not JSON: ${body.slice(0, 200)}`);
    }
    if (!validate(value)) {
      const why = (validate.errors ?? [])
        .slice(0, 5)
        .map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
        .join('; ');
      throw new Error(
        `${where}: the body does not match /openapi.json (src/api/schemas): ${why}\n${body.slice(0, 500)}`,
      );
    }
  }
}

const checkers = new Map<string, Promise<ResponseChecker>>();

/** The checker of the node at `url` (its /openapi.json read once). */
function checkerOf(url: string): Promise<ResponseChecker> {
  let checker = checkers.get(url);
  if (!checker) {
    checker = fetch(`${url}/openapi.json`)
      .then((res) => res.json())
      .then((doc) => new ResponseChecker(doc as OpenApiDocument));
    // A node not listening yet is asked again by the next request.
    checker.catch(() => checkers.delete(url));
    checkers.set(url, checker);
  }
  return checker;
}

/**
 * A fetch for a SprocdClient that checks each answer of the node at `base` against the node's own
 * /openapi.json. Event streams are not read here (they never end).
 */
export function checkedFetch(base: string): typeof fetch {
  return async (input, init) => {
    // Asked for beside the request, so an answer that arrives after its node stopped (a wait cut
    // short by the stop) is still checked against the document that node served.
    const checker = checkerOf(base);
    checker.catch(() => undefined);
    const response = await fetch(input, init);
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (response.headers.get('content-type')?.startsWith('text/event-stream') || !url.href.startsWith(base)) {
      return response;
    }
    const body = await response.clone().text();
    (await checker).check({
      method: init?.method ?? 'GET',
      url: url.pathname + url.search,
      status: response.status,
      contentType: response.headers.get('content-type') ?? undefined,
      body,
    });
    return response;
  };
}

/** Makes `app.inject` check every answer against the app's own /openapi.json. */
export function checkAnswers(app: FastifyInstance): void {
  const inject = app.inject.bind(app) as (opts: InjectOptions | string) => Promise<LightMyRequestResponse>;
  let checker: Promise<ResponseChecker> | undefined;
  const checked = async (opts: InjectOptions | string): Promise<LightMyRequestResponse> => {
    const res = await inject(opts);
    checker ??= inject({ url: '/openapi.json' }).then((r) => new ResponseChecker(r.json()));
    const o = typeof opts === 'string' ? { url: opts } : opts;
    const url = typeof o.url === 'string' ? o.url : ((o.path as string | undefined) ?? '/');
    (await checker).check({
      method: o.method ?? 'GET',
      url,
      status: res.statusCode,
      contentType: res.headers['content-type'] as string | undefined,
      body: res.body,
    });
    return res;
  };
  app.inject = checked as typeof app.inject;
}

/**
 * /openapi.json and /docs: the document is valid OpenAPI 3.1, documents every route the API
 * registers, has one POST /v1/executions body variant per loaded procedure (its input schema), and
 * the response checker the API tests use catches an answer that does not match it.
 */
import { validate, compileErrors } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import path from 'node:path';
import type { RouteOptions } from 'fastify';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DocumentedProcedure } from '../../src/api/openapi.js';
import { ProcedureRegistry } from '../../src/procedures/registry.js';
import { FakeExecutions, fakeApi, fakeContext } from '../support/api.js';
import { ROOT } from '../support/node.js';
import { ResponseChecker, type OpenApiDocument } from '../support/openapi.js';

const TOKEN = 'openapi-test-token-0123456789';
/** Debian's chromium, as the console's tests use it. */
const CHROMIUM = '/usr/bin/chromium';

const hello: DocumentedProcedure = {
  name: 'hello',
  description: 'Says hello.',
  params: z.object({ who: z.string().min(1), times: z.number().int().default(1) }),
};
const nested: DocumentedProcedure = {
  name: 'reports/monthly',
  params: z.object({ month: z.string().regex(/^\d{4}-\d{2}$/) }).optional(),
};
const free: DocumentedProcedure = { name: 'free' };
const defaults: DocumentedProcedure = {
  name: 'defaults',
  params: z.object({ who: z.string().default('world') }),
};

async function documented(procedures: DocumentedProcedure[] = [hello, nested, free, defaults]) {
  const routes: RouteOptions[] = [];
  let current = procedures;
  const app = await fakeApi(
    fakeContext({
      procedureSchemas: () => current,
      settings: { host: '127.0.0.1', port: 0, token: TOKEN, bodyLimit: 64 * 1024 },
    }),
    { onRoute: (route) => routes.push(route) },
  );
  const read = async () => {
    const res = await app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    return res.json() as OpenApiDocument;
  };
  return {
    app,
    routes,
    read,
    reload: (next: DocumentedProcedure[]) => {
      current = next;
    },
  };
}

/** The OpenAPI path of a fastify URL: `:name` → `{name}`, `*` → `{*}`. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}').replace(/\*/g, '{*}');

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document, served without the token', async () => {
    const { read } = await documented();
    const doc = await read();
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  });

  it("is valid with the fixture procedures' own schemas, each one a body variant", async () => {
    const registry = new ProcedureRegistry(path.join(ROOT, 'test', 'fixtures', 'jobs'));
    await registry.load();
    const procedures = registry.names().map((name) => registry.get(name)!);
    const doc = await (await documented(procedures)).read();
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    const mapping = (doc.components?.schemas?.Execute as { discriminator: { mapping: object } }).discriminator
      .mapping;
    expect(Object.keys(mapping).sort()).toEqual(registry.names().sort());
    expect(doc.components?.schemas?.['Execute.validated']).toMatchObject({
      properties: { params: { properties: { a: { type: 'integer' }, b: { type: 'integer' } } } },
      required: ['procedure', 'params'],
    });
  });

  it('documents every route the API registers (HEAD comes with GET; the docs UI hides its files)', async () => {
    const { routes, read } = await documented();
    const doc = await read();
    const registered = routes
      .filter((r) => !(r.schema as { hide?: boolean } | undefined)?.hide)
      .flatMap((r) => [r.method].flat().map((m) => `${m} ${r.url}`))
      .filter((r) => !r.startsWith('HEAD '));
    expect(registered.length).toBeGreaterThan(15);
    const missing = registered.filter((r) => {
      const [method, url] = r.split(' ') as [string, string];
      return !doc.paths[openApiPath(url)]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
    // And the other way round: nothing documented that the API does not have.
    const documentedOps = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documentedOps.sort()).toEqual(
      registered.map((r) => r.replace(/ (.*)$/, (_m, url: string) => ` ${openApiPath(url)}`)).sort(),
    );
  });

  it('asks for the bearer token on /v1 and /metrics, and on nothing else', async () => {
    const doc = await (await documented()).read();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops) as { security?: unknown }[]) {
        const secured = path.startsWith('/v1/') || path === '/metrics';
        expect(op.security, path).toEqual(secured ? [{ bearer: [] }] : undefined);
      }
    }
  });

  it('documents the error shape with the codes of each status', async () => {
    const doc = await (await documented()).read();
    const notFound = doc.paths['/v1/executions/{number}']?.get?.responses['404'];
    expect(notFound?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/Error404',
    });
    expect(doc.components?.schemas?.Error404).toMatchObject({
      properties: {
        error: {
          properties: { code: { enum: expect.arrayContaining(['EXECUTION_NOT_FOUND', 'NOT_FOUND']) } },
          required: ['code', 'message'],
        },
      },
    });
  });

  it('has one body variant of POST /v1/executions per procedure, with its input schema', async () => {
    const doc = await (await documented()).read();
    const body = doc.paths['/v1/executions']?.post as unknown as {
      requestBody: { content: { 'application/json': { schema: Record<string, unknown> } } };
    };
    const schema = body.requestBody.content['application/json'].schema;
    // One execution, or a batch of them.
    expect(schema).toEqual({
      oneOf: [{ $ref: '#/components/schemas/Execute' }, { $ref: '#/components/schemas/ExecuteBatch' }],
    });
    expect(doc.components?.schemas?.Execute).toEqual({
      oneOf: [
        { $ref: '#/components/schemas/Execute.hello' },
        { $ref: '#/components/schemas/Execute.reports.monthly' },
        { $ref: '#/components/schemas/Execute.free' },
        { $ref: '#/components/schemas/Execute.defaults' },
      ],
      discriminator: {
        propertyName: 'procedure',
        mapping: {
          hello: '#/components/schemas/Execute.hello',
          'reports/monthly': '#/components/schemas/Execute.reports.monthly',
          free: '#/components/schemas/Execute.free',
          defaults: '#/components/schemas/Execute.defaults',
        },
      },
    });
    expect(doc.components?.schemas?.['Execute.hello']).toMatchObject({
      title: 'hello',
      description: 'Says hello.',
      required: ['procedure', 'params'],
      properties: {
        procedure: { const: 'hello' },
        // The input side: `times` has a default, so a request may leave it out.
        params: {
          properties: { who: { type: 'string', minLength: 1 }, times: { default: 1 } },
          required: ['who'],
        },
        priority: { type: 'integer' },
      },
    });
    // An optional params schema, or one whose fields all have defaults: the body may leave params out.
    expect(doc.components?.schemas?.['Execute.reports.monthly']).toMatchObject({ required: ['procedure'] });
    expect(doc.components?.schemas?.['Execute.defaults']).toMatchObject({ required: ['procedure'] });

    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema(doc, 'openapi.json');
    const check = ajv.compile({
      $ref: 'openapi.json#/paths/~1v1~1executions/post/requestBody/content/application~1json/schema',
    });
    expect(check({ procedure: 'hello', params: { who: 'world' }, name: 'greeter' })).toBe(true);
    expect(check({ procedure: 'hello', params: { who: '' } })).toBe(false);
    expect(check({ procedure: 'hello' })).toBe(false);
    expect(check({ procedure: 'reports/monthly' })).toBe(true);
    expect(check({ procedure: 'free', params: [1, 'x'] })).toBe(true);
    expect(check({ procedure: 'nope' })).toBe(false);
    expect(check({ procedure: 'defaults' })).toBe(true);
    // The batch form: the same variants per item, without `wait`.
    expect(check({ executions: [{ procedure: 'hello', params: { who: 'a' } }, { procedure: 'free' }] })).toBe(
      true,
    );
    expect(check({ executions: [{ procedure: 'hello', params: { who: 'a' } }, { procedure: 'nope' }] })).toBe(
      false,
    );
    expect(check({ executions: [{ procedure: 'free', wait: 100 }] })).toBe(false);
    expect(check({ executions: [] })).toBe(false);
    expect(doc.components?.schemas?.['ExecuteBatchItem.hello']).toMatchObject({
      properties: { procedure: { const: 'hello' }, priority: { type: 'integer' } },
    });
  });

  it('keeps the references of a recursive params schema valid inside the document', async () => {
    const Node: z.ZodType<{ name: string; children?: unknown[] }> = z.object({
      name: z.string(),
      get children() {
        return z.array(Node).optional();
      },
    });
    const Wrapper = z.object({ root: Node, extra: Node.optional() });
    const { read } = await documented([
      { name: 'tree', params: Node },
      { name: 'forest', params: Wrapper },
    ]);
    const doc = await read();
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema(doc, 'openapi.json');
    const check = ajv.compile({
      $ref: 'openapi.json#/paths/~1v1~1executions/post/requestBody/content/application~1json/schema',
    });
    const tree = { name: 'a', children: [{ name: 'b', children: [{ name: 'c' }] }] };
    expect(check({ procedure: 'tree', params: tree })).toBe(true);
    expect(check({ procedure: 'tree', params: { name: 'a', children: [{ name: 1 }] } })).toBe(false);
    expect(check({ procedure: 'forest', params: { root: tree, extra: { name: 'x' } } })).toBe(true);
    expect(check({ procedure: 'forest', params: { root: { children: [] } } })).toBe(false);
  });

  it('follows the procedures as they are reloaded; without any, the body is the generic one', async () => {
    const { read, reload } = await documented([hello]);
    expect(Object.keys((await read()).components?.schemas ?? {})).toContain('Execute.hello');
    reload([free]);
    const after = await read();
    expect(Object.keys(after.components?.schemas ?? {})).not.toContain('Execute.hello');
    expect(Object.keys(after.components?.schemas ?? {})).toContain('Execute.free');
    reload([]);
    const none = (await read()).paths['/v1/executions']?.post as unknown as {
      requestBody: { content: { 'application/json': { schema: unknown } } };
    };
    expect(none.requestBody.content['application/json'].schema).toEqual({
      anyOf: [
        { $ref: '#/components/schemas/ExecuteRequestInput' },
        { $ref: '#/components/schemas/ExecuteBatchRequestInput' },
      ],
    });
  });
});

describe('/docs', () => {
  it('serves Swagger UI from node_modules without the token, under a CSP that allows only its own files', async () => {
    const { app } = await documented();
    const page = await app.inject({ url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).not.toMatch(/https?:|upgrade-insecure-requests/);
    const scripts = [...page.body.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      const res = await app.inject({ url: new URL(src, 'http://node/docs/').pathname });
      expect(res.statusCode, src).toBe(200);
    }
    // The UI reads the same document, procedures included.
    const json = await app.inject({ url: '/docs/json' });
    expect(json.json().components.schemas).toHaveProperty(['Execute.hello']);
  });
});

describe('/docs in a real browser', () => {
  it('renders every operation from node_modules alone, with no script or CSP error', async () => {
    const { app } = await documented();
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') {
          problems.push(m.text());
        }
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      const outside: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(url) && !r.url().startsWith('data:')) {
          outside.push(r.url());
        }
      });
      await page.goto(`${url}/docs/`);
      await page.waitForSelector('.opblock-summary-path', { timeout: 20_000 });
      const paths = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.textContent));
      expect(paths).toEqual(expect.arrayContaining(['/v1/executions', '/openapi.json']));
      expect(problems).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('the response checker of the API tests', () => {
  it('passes what the document says and names what does not match', async () => {
    const executions = new FakeExecutions();
    await executions.execute('p', null);
    const app = await fakeApi(fakeContext({ executions: () => executions }));
    const checker = new ResponseChecker((await app.inject({ url: '/openapi.json' })).json());
    const good = (await app.inject({ url: '/v1/executions/1' })).body;
    const answer = { method: 'GET', url: '/v1/executions/1', status: 200, contentType: 'application/json' };
    expect(() => checker.check({ ...answer, body: good })).not.toThrow();
    const extra = JSON.stringify({ ...JSON.parse(good), surprise: 1 });
    expect(() => checker.check({ ...answer, body: extra })).toThrow(/additional propert.*surprise/);
    expect(() => checker.check({ ...answer, body: JSON.stringify({ number: 1 }) })).toThrow(/required/);
    expect(() => checker.check({ ...answer, status: 418, body: good })).toThrow(
      /status 418 is not documented/,
    );
    expect(() =>
      checker.check({
        ...answer,
        status: 404,
        body: JSON.stringify({ error: { code: 'NOPE', message: '' } }),
      }),
    ).toThrow(/allowed values/);
  });

  it('checks every answer of fakeApi: an undocumented field fails the request', async () => {
    const executions = new FakeExecutions();
    await executions.execute('p', null);
    executions.views.set(1, { ...(await executions.get(1)), surprise: true } as never);
    const app = await fakeApi(fakeContext({ executions: () => executions }));
    await expect(app.inject({ url: '/v1/executions/1' })).rejects.toThrow(/surprise/);
  });
});

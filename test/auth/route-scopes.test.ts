/**
 * The route → scope table against the API as it is built: every route is public or has a scope (a
 * route without one does not even register), every guarded route refuses a caller lacking its scope
 * with 403 naming that scope, and `execute:PATTERN` is checked against the procedure of the request.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type RouteOptions } from 'fastify';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { guardRoutes } from '../../src/api/auth.js';
import { CallerDirectory } from '../../src/auth/callers.js';
import { ROUTE_SCOPES, isPublicRoute, ruleOf } from '../../src/auth/route-scopes.js';
import { SCOPES, type Scope } from '../../src/auth/scopes.js';
import { tokenSha256 } from '../../src/auth/tokens.js';
import { FakeExecutions, fakeApi, fakeContext } from '../support/api.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-scopes-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const tokenOf = (name: string) => `${name}-token-0123456789abcdef`;

/** Callers: `only-<scope>` holds that scope alone, `all-but-<scope>` every other one. */
function callersFile(extra: { name: string; scopes: string[] }[] = []): string {
  const callers = [
    ...SCOPES.map((s) => ({ name: `only-${s.replace(':', '-')}`, scopes: [s] })),
    ...SCOPES.map((s) => ({ name: `all-but-${s.replace(':', '-')}`, scopes: SCOPES.filter((o) => o !== s) })),
    ...extra,
  ].map((c) => ({ ...c, tokenSha256: tokenSha256(tokenOf(c.name)) }));
  const file = path.join(dir, `callers-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify({ callers }));
  return file;
}

async function api(extra: { name: string; scopes: string[] }[] = [], executions = new FakeExecutions()) {
  const routes: RouteOptions[] = [];
  const app = await fakeApi(
    fakeContext({
      callers: new CallerDirectory({ file: callersFile(extra) }),
      executions: () => executions,
      settings: { host: '127.0.0.1', port: 0, token: undefined, bodyLimit: 64 * 1024 },
    }),
    { onRoute: (route) => routes.push(route) },
  );
  return { app, routes, executions };
}

/** Each guarded route once, as `METHOD url` with its parameters filled in. */
function guarded(routes: RouteOptions[]): { method: string; url: string; pattern: string; scope: Scope }[] {
  return routes.flatMap((route) =>
    [route.method]
      .flat()
      .filter((method) => method !== 'HEAD' && !isPublicRoute(route.url))
      .map((method) => ({
        method,
        pattern: route.url,
        url: route.url.replace(':number', '1').replace(':key', 'k').replace('*', 'x'),
        scope: ruleOf(method, route.url)!.scope,
      })),
  );
}

const auth = (name: string) => ({ authorization: `Bearer ${tokenOf(name)}` });

describe('the route → scope table', () => {
  it('gives every registered route a scope, or lists it as public', async () => {
    const { routes } = await api();
    expect(routes.length).toBeGreaterThan(20);
    const missing = routes
      .flatMap((r) => [r.method].flat().map((m) => `${m} ${r.url}`))
      .filter((name) => {
        const [method, url] = name.split(' ') as [string, string];
        return !isPublicRoute(url) && ruleOf(method, url) === undefined;
      });
    expect(missing).toEqual([]);
    // Public routes are exactly health, the document and docs, and the console's files.
    const open = [...new Set(routes.filter((r) => isPublicRoute(r.url)).map((r) => r.url))];
    expect(open.every((url) => /^\/(healthz|readyz|openapi\.json|docs|console)/.test(url))).toBe(true);
    // Every guarded route is behind the token: no token is 401.
    const { app } = await api();
    for (const route of guarded(routes)) {
      const res = await app.inject({ method: route.method as 'GET', url: route.url });
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(401);
    }
  });

  it('refuses to register a route behind the token that the table does not list', async () => {
    const app = Fastify();
    const built = (async () => {
      await app.register(async (secured) => {
        guardRoutes(secured, { callers: new CallerDirectory({}), node: 'n', log: pino({ level: 'silent' }) });
        secured.get('/v1/something-new', async () => 'ok');
      });
      await app.ready();
    })();
    await expect(built).rejects.toThrow(
      'Route GET /v1/something-new has no scope: add it to ROUTE_SCOPES in src/auth/route-scopes.ts.',
    );
    await app.close();
  });

  it('maps state-changing routes to an audit action, and reads to read', () => {
    for (const [route, rule] of Object.entries(ROUTE_SCOPES)) {
      if (route.startsWith('GET ')) {
        expect(rule.audit, route).toBeUndefined();
      } else {
        expect(rule.audit, route).toBeDefined();
        expect(rule.scope, route).not.toBe('read');
      }
    }
  });
});

describe('403 per scope', () => {
  it.each(SCOPES)('every route needing %s refuses a caller holding every other scope', async (scope) => {
    const { app, routes } = await api();
    const needing = guarded(routes).filter((r) => r.scope === scope);
    expect(needing.length, `routes needing ${scope}`).toBeGreaterThan(0);
    for (const route of needing) {
      const res = await app.inject({
        method: route.method as 'GET',
        url: route.url,
        headers: auth(`all-but-${scope.replace(':', '-')}`),
      });
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(403);
      expect(res.json().error).toMatchObject({
        code: 'FORBIDDEN',
        details: { scope, caller: `all-but-${scope.replace(':', '-')}` },
      });
      expect(res.json().error.message).toContain(`lacks the scope "${scope}"`);
    }
  });

  it.each(SCOPES)(
    'a caller holding only %s passes the guard of its routes, and only those',
    async (scope) => {
      const { app, routes } = await api();
      for (const route of guarded(routes)) {
        const res = await app.inject({
          method: route.method as 'GET',
          url: route.url,
          headers: { ...auth(`only-${scope.replace(':', '-')}`), 'content-type': 'application/json' },
          payload: route.method === 'GET' ? undefined : '{}',
        });
        if (route.scope === scope) {
          expect([401, 403], `${route.method} ${route.url}`).not.toContain(res.statusCode);
        } else {
          expect(res.statusCode, `${route.method} ${route.url}`).toBe(403);
        }
      }
    },
  );

  it('documents 403 and the scope on every guarded route of /openapi.json', async () => {
    const { app } = await api();
    const doc = (await app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { description?: string; responses: Record<string, unknown> }>>;
    };
    for (const [route, rule] of Object.entries(ROUTE_SCOPES)) {
      const [method, url] = route.split(' ') as [string, string];
      const op = doc.paths[url.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
      if (op) {
        expect(op.responses['403'], route).toBeDefined();
        expect(op.description, route).toContain(`Needs the \`${rule.scope}\` scope.`);
      }
    }
  });
});

describe('tokens', () => {
  it('answers 401 to an unknown token, and to a known one sent wrongly', async () => {
    const { app } = await api();
    for (const authorization of [
      'Bearer not-a-known-token-at-all',
      `Bearer ${tokenOf('only-read')}x`,
      tokenOf('only-read'),
      `Basic ${tokenOf('only-read')}`,
    ]) {
      const res = await app.inject({ url: '/v1/procedures', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    }
    expect((await app.inject({ url: '/v1/procedures', headers: auth('only-read') })).statusCode).toBe(200);
  });

  it('gives the route the caller on request.caller', async () => {
    const app = Fastify();
    let seen: unknown;
    await app.register(async (secured) => {
      guardRoutes(secured, {
        callers: new CallerDirectory({ file: callersFile() }),
        node: 'n',
        log: pino({ level: 'silent' }),
      });
      secured.get('/v1/procedures', async (request) => {
        seen = request.caller?.name;
        return 'ok';
      });
    });
    expect((await app.inject({ url: '/v1/procedures', headers: auth('only-read') })).statusCode).toBe(200);
    expect(seen).toBe('only-read');
    await app.close();
  });
});

describe('execute:PATTERN over HTTP', () => {
  const post = (procedure: unknown, name: string) => ({
    method: 'POST' as const,
    url: '/v1/executions',
    headers: auth(name),
    payload: { procedure, params: null },
  });

  it('allows the procedures its patterns match and refuses the others with 403', async () => {
    const { app, executions } = await api([
      { name: 'reports', scopes: ['read', 'execute:reports/*'] },
      { name: 'anything', scopes: ['execute'] },
    ]);
    const ok = await app.inject(post('reports/daily', 'reports'));
    expect(ok.statusCode).toBe(202);
    for (const procedure of ['billing/send', 'reports/eu/daily', 'reports']) {
      const res = await app.inject(post(procedure, 'reports'));
      expect(res.statusCode, procedure).toBe(403);
      expect(res.json().error).toMatchObject({
        code: 'FORBIDDEN',
        details: { scope: `execute:${procedure}`, caller: 'reports' },
      });
    }
    expect(executions.requests.map((r) => r.procedure)).toEqual(['reports/daily']);
    expect((await app.inject(post('billing/send', 'anything'))).statusCode).toBe(202);
  });

  it('checks every procedure of a batch: one the caller may not execute refuses the batch', async () => {
    const { app, executions } = await api([{ name: 'reports', scopes: ['read', 'execute:reports/*'] }]);
    const batch = (procedures: string[]) => ({
      method: 'POST' as const,
      url: '/v1/executions',
      headers: auth('reports'),
      payload: { executions: procedures.map((procedure) => ({ procedure })) },
    });
    const refused = await app.inject(batch(['reports/daily', 'billing/send', 'reports/weekly']));
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error).toMatchObject({ details: { scope: 'execute:billing/send' } });
    expect(executions.requests).toEqual([]);
    const ok = await app.inject(batch(['reports/daily', 'reports/weekly']));
    expect(ok.statusCode).toBe(202);
    expect(executions.requests.map((r) => r.procedure)).toEqual(['reports/daily', 'reports/weekly']);
  });

  it('describes a batch in one audit entry: how many, which procedures, the numbers', () => {
    const rule = ROUTE_SCOPES['POST /v1/executions']!;
    const body = { executions: [{ procedure: 'a' }, { procedure: 'b' }, { procedure: 'a' }] };
    const answer = { executions: [{ number: 7 }, { number: 9 }, { number: 8 }] };
    expect(rule.describe?.({ params: {}, query: {}, body, answer })).toEqual({
      batch: 3,
      procedures: ['a', 'b'],
      from: 7,
      to: 9,
    });
    expect(rule.procedure?.(body)).toEqual(['a', 'b', 'a']);
  });

  it("a body that names no procedure is the validator's (400), not a pass", async () => {
    const { app, executions } = await api([{ name: 'reports', scopes: ['execute:reports/*'] }]);
    const res = await app.inject(post(42, 'reports'));
    expect(res.statusCode).toBe(400);
    expect(executions.requests).toEqual([]);
  });
});

/** /v1/executions against fake executions: statuses, checks before anything is queued, error shape. */
import { describe, expect, it } from 'vitest';
import { NotReadyError, StoppingError } from '../../src/errors.js';
import type { Access } from '../../src/node-state.js';
import { FakeExecutions, fakeApi, fakeContext } from '../support/api.js';

async function setup(executions = new FakeExecutions()) {
  const accesses: Access[] = [];
  const app = await fakeApi(
    fakeContext({
      executions: (access) => {
        accesses.push(access);
        return executions;
      },
    }),
  );
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return { app, executions, accesses, post };
}

describe('POST /v1/executions', () => {
  it('queues an execution: 202 with its view, the options passed on as given', async () => {
    const { post, executions, accesses } = await setup();
    const res = await post({ procedure: 'hello', params: { who: 'world' }, name: 'greeter', priority: 3 });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ number: 1, procedure: 'hello', name: 'greeter', state: 'waiting' });
    expect(executions.requests).toEqual([
      { procedure: 'hello', params: { who: 'world' }, options: { name: 'greeter', priority: 3 } },
    ]);
    expect(accesses).toEqual(['work']);
  });

  it('answers 200 with "existing" when unique finds a live execution of that name', async () => {
    const { post } = await setup();
    expect((await post({ procedure: 'p', name: 'one', unique: true })).statusCode).toBe(202);
    const again = await post({ procedure: 'p', name: 'one', unique: true });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ number: 1, existing: true });
  });

  it('with wait, answers 200 and the result once it finished', async () => {
    const { post } = await setup();
    const res = await post({ procedure: 'p', wait: 1000 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ state: 'completed', result: 'done' });
  });

  it('with wait, answers 202 when the wait ran out first', async () => {
    const executions = new FakeExecutions();
    executions.finishAs = 'active';
    const { post } = await setup(executions);
    const res = await post({ procedure: 'p', wait: 10 });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ state: 'active' });
  });

  it.each([
    ['an unknown field', { procedure: 'p', delay: 5 }, /Bad body: .*"delay"/],
    ['a negative delay', { procedure: 'p', delayMs: -1 }, /Bad body: delayMs: /],
    ['a fractional priority', { procedure: 'p', priority: 1.5 }, /priority: /],
    ['attempts of 0', { procedure: 'p', attempts: 0 }, /attempts: /],
    ['a wait over ten minutes', { procedure: 'p', wait: 600_001 }, /wait: /],
    ['no procedure', { params: 1 }, /procedure: /],
    ['a body that is not an object', [1, 2], /Bad body/],
  ])('refuses %s with 400 VALIDATION_FAILED and queues nothing', async (_label, body, message) => {
    const { post, executions } = await setup();
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: {
        code: 'VALIDATION_FAILED',
        message: expect.stringMatching(message),
        details: {
          issues: expect.arrayContaining([expect.objectContaining({ message: expect.any(String) })]),
        },
      },
    });
    expect(executions.requests).toEqual([]);
  });

  it('asks for a body when there is none', async () => {
    const { app } = await setup();
    const res = await app.inject({ method: 'POST', url: '/v1/executions' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/JSON body/),
    });
  });

  it('refuses malformed JSON (400 BAD_JSON), other content types (415), and big bodies (413)', async () => {
    const { post } = await setup();
    expect((await post('{"procedure": "p",')).json().error.code).toBe('BAD_JSON');
    const text = await post('p', { 'content-type': 'text/plain' });
    expect([text.statusCode, text.json().error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const big = await post({ procedure: 'p', params: 'x'.repeat(70 * 1024) });
    expect([big.statusCode, big.json().error.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
  });

  it('refuses with 503 NOT_READY while starting and 503 STOPPING while stopping', async () => {
    for (const [error, code] of [
      [new NotReadyError(), 'NOT_READY'],
      [new StoppingError(), 'STOPPING'],
    ] as const) {
      const app = await fakeApi(
        fakeContext({
          executions: () => {
            throw error;
          },
        }),
      );
      const res = await app.inject({ method: 'POST', url: '/v1/executions', payload: { procedure: 'p' } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ error: { code, message: error.message } });
    }
  });

  it('answers 503 REDIS_UNAVAILABLE when Redis does not answer in time', async () => {
    const executions = new FakeExecutions();
    executions.execute = () => new Promise(() => undefined);
    const app = await fakeApi(fakeContext({ redisTimeoutMs: 50, executions: () => executions }));
    const res = await app.inject({ method: 'POST', url: '/v1/executions', payload: { procedure: 'p' } });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('REDIS_UNAVAILABLE');
  });

  it('hides an unexpected error behind 500 INTERNAL', async () => {
    const executions = new FakeExecutions();
    executions.execute = async () => {
      throw new TypeError('secret detail');
    };
    const { post } = await setup(executions);
    const res = await post({ procedure: 'p' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: { code: 'INTERNAL', message: 'Internal error; the node log has the details.' },
    });
  });
});

describe('POST /v1/executions with a batch', () => {
  it('queues every execution and answers 202 with them in the order asked', async () => {
    const { post, executions, accesses } = await setup();
    const res = await post({
      executions: [
        { procedure: 'hello', params: { who: 'a' } },
        { procedure: 'reports/daily', name: 'daily', unique: true, delayMs: 5 },
        { procedure: 'reports/daily', name: 'daily', unique: true },
      ],
    });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      executions: [
        expect.objectContaining({ number: 1, procedure: 'hello', state: 'waiting' }),
        expect.objectContaining({ number: 2, procedure: 'reports/daily', name: 'daily', state: 'delayed' }),
        // A unique name an earlier item of the batch took: that live execution, as a single request.
        expect.objectContaining({ number: 2, existing: true }),
      ],
    });
    expect(res.json().executions[0]).not.toHaveProperty('existing');
    expect(executions.requests.map((r) => r.procedure)).toEqual(['hello', 'reports/daily', 'reports/daily']);
    expect(accesses).toEqual(['work']);
  });

  it.each([
    ['an empty batch', { executions: [] }, /executions: /],
    [
      'a batch over 1,000',
      { executions: Array.from({ length: 1001 }, () => ({ procedure: 'p' })) },
      /executions: /,
    ],
    [
      'an item with a bad option',
      { executions: [{ procedure: 'p' }, { procedure: 'p', delayMs: -1 }] },
      /executions\[1\]\.delayMs: /,
    ],
    ['an item with wait', { executions: [{ procedure: 'p', wait: 10 }] }, /executions\[0\]: .*"wait"/],
    ['an item without procedure', { executions: [{ params: 1 }] }, /executions\[0\]\.procedure: /],
    ['a batch beside single fields', { executions: [{ procedure: 'p' }], procedure: 'p' }, /Bad body/],
  ])(
    'refuses %s with 400 VALIDATION_FAILED naming the item, and queues nothing',
    async (_label, body, message) => {
      const { post, executions } = await setup();
      const res = await post(body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({
        code: 'VALIDATION_FAILED',
        message: expect.stringMatching(message),
      });
      expect(executions.requests).toEqual([]);
    },
  );

  it("refuses the whole batch when one item fails its procedure's checks, with its index", async () => {
    const { post, executions } = await setup();
    const res = await post({ executions: [{ procedure: 'hello' }, { procedure: 'missing' }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/^executions\[1\]: /),
      details: { index: 1, code: 'UNKNOWN_PROCEDURE' },
    });
    expect(executions.requests).toEqual([]);
  });
});

describe('reading, aborting, waking', () => {
  it('lists with the filters of the query, asking for read access', async () => {
    const { app, post, executions, accesses } = await setup();
    await post({ procedure: 'p' });
    const res = await app.inject({ url: '/v1/executions?state=waiting&limit=5&procedure=p' });
    expect(res.statusCode).toBe(200);
    expect(res.json().items).toHaveLength(1);
    expect(executions.filters).toEqual([{ state: 'waiting', limit: 5, procedure: 'p' }]);
    expect(accesses).toEqual(['work', 'read']);
  });

  it.each([
    ['an unknown state', 'state=done'],
    ['a limit over 1000', 'limit=1001'],
    ['an unknown filter', 'color=red'],
  ])('refuses a list query with %s (400)', async (_label, query) => {
    const { app } = await setup();
    const res = await app.inject({ url: `/v1/executions?${query}` });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/^Bad query: /),
    });
  });

  it('reads one execution; 404 EXECUTION_NOT_FOUND with the number for an unknown one', async () => {
    const { app, post } = await setup();
    await post({ procedure: 'p' });
    expect((await app.inject({ url: '/v1/executions/1' })).json()).toMatchObject({ number: 1 });
    const missing = await app.inject({ url: '/v1/executions/7' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: {
        code: 'EXECUTION_NOT_FOUND',
        message: expect.stringMatching(/No execution 7/),
        details: { number: 7 },
      },
    });
  });

  it.each(['0', '-1', '1.5', 'abc', '99999999999999999'])(
    'refuses the execution number %s (400)',
    async (raw) => {
      const { app } = await setup();
      const res = await app.inject({ url: `/v1/executions/${raw}` });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    },
  );

  it('aborts and wakes with 202; 409 EXECUTION_FINISHED once it finished', async () => {
    const { app, post, executions } = await setup();
    await post({ procedure: 'p' });
    expect((await app.inject({ method: 'POST', url: '/v1/executions/1/abort' })).statusCode).toBe(202);
    expect((await app.inject({ method: 'POST', url: '/v1/executions/1/wake' })).statusCode).toBe(202);
    const delay = (payload: unknown) =>
      app.inject({ method: 'POST', url: '/v1/executions/1/delay', payload: payload as object });
    expect((await delay({ ms: 250 })).statusCode).toBe(202);
    const bad = await delay({ ms: -1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await delay({})).statusCode).toBe(400);
    expect(executions.signals).toEqual([
      { op: 'abort', number: 1 },
      { op: 'wake', number: 1 },
      { op: 'delay', number: 1, ms: 250 },
    ]);
    executions.views.set(1, { ...(await executions.get(1)), state: 'completed' });
    const late = await app.inject({ method: 'POST', url: '/v1/executions/1/abort' });
    expect(late.statusCode).toBe(409);
    expect(late.json().error).toMatchObject({
      code: 'EXECUTION_FINISHED',
      details: { number: 1, state: 'completed' },
    });
  });
});

/**
 * PAUSE PROCESS and RESUME PROCESS over HTTP, and /v1/processes (Process activity, info, state,
 * number), against fake executions and process reads: statuses, error shape, the documented answers.
 */
import { describe, expect, it } from 'vitest';
import type { ProcessReads } from '../../src/api/processes.js';
import type { ProcessDetails } from '../../src/types.js';
import { FakeExecutions, fakeApi, fakeContext } from '../support/api.js';

const paused: ProcessDetails = {
  number: 7,
  id: 'id-7',
  name: 'nightly',
  procedure: 'report',
  state: 'active',
  code: 5,
  node: 'node-a',
  attempt: 1,
  startedAt: '2026-01-01T00:00:00.000Z',
};

const reads: ProcessReads = {
  number: async (name) => (name === 'nightly' ? 7 : 0),
  state: async (n) => (n === 7 ? 5 : -100),
  info: async (n) => (n === 7 ? paused : undefined),
  activity: async () => [paused],
};

async function setup() {
  const executions = new FakeExecutions();
  const app = await fakeApi(fakeContext({ executions: () => executions, processes: () => reads }));
  return { app, executions };
}

describe('POST /v1/executions/:number/pause and /resume', () => {
  it('answer 202 with the execution; 404 missing; 409 EXECUTION_FINISHED once it finished', async () => {
    const { app, executions } = await setup();
    await executions.execute('p', null);
    for (const op of ['pause', 'resume']) {
      const res = await app.inject({ method: 'POST', url: `/v1/executions/1/${op}` });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toMatchObject({ number: 1, procedure: 'p' });
    }
    expect(executions.signals).toEqual([
      { op: 'pause', number: 1 },
      { op: 'resume', number: 1 },
    ]);
    const missing = await app.inject({ method: 'POST', url: '/v1/executions/42/pause' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('EXECUTION_NOT_FOUND');
    executions.views.set(1, { ...(await executions.get(1)), state: 'completed' });
    for (const op of ['pause', 'resume']) {
      const late = await app.inject({ method: 'POST', url: `/v1/executions/1/${op}` });
      expect(late.statusCode).toBe(409);
      expect(late.json().error).toMatchObject({
        code: 'EXECUTION_FINISHED',
        message: 'Execution 1 has already finished (completed).',
        details: { number: 1, state: 'completed' },
      });
    }
    expect((await app.inject({ method: 'POST', url: '/v1/executions/abc/pause' })).statusCode).toBe(400);
  });
});

describe('GET /v1/processes', () => {
  it('Process activity, info (404 missing), state (-100 missing) and number (0 for none)', async () => {
    const { app } = await setup();
    expect((await app.inject({ url: '/v1/processes' })).json()).toEqual({ items: [paused] });
    expect((await app.inject({ url: '/v1/processes/7' })).json()).toEqual(paused);
    const missing = await app.inject({ url: '/v1/processes/8' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('EXECUTION_NOT_FOUND');
    expect((await app.inject({ url: '/v1/processes/7/state' })).json()).toEqual({ number: 7, code: 5 });
    expect((await app.inject({ url: '/v1/processes/8/state' })).json()).toEqual({ number: 8, code: -100 });
    expect((await app.inject({ url: '/v1/processes/by-name/nightly' })).json()).toEqual({
      name: 'nightly',
      number: 7,
    });
    expect((await app.inject({ url: '/v1/processes/by-name/none%20here' })).json()).toEqual({
      name: 'none here',
      number: 0,
    });
    expect((await app.inject({ url: '/v1/processes/0' })).statusCode).toBe(400);
  });
});

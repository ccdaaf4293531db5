/** The session over HTTP and the CLI, and the same session in procedures, hooks and every node. */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { runSprocd } from '../support/process.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sapi');
const nodes: ChildNode[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('the session over HTTP and the CLI', () => {
  it('is one session for procedures and hooks on every node', async () => {
    const env = {
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'session-jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-record'),
    };
    const [a, b] = await Promise.all([spawnNode(prefix, env), spawnNode(prefix, env)]);
    nodes.push(a, b);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).client.execute('bump', null, { wait: 20_000 })),
    );
    const session = await a.client.session();
    expect(session).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      info: { type: 'storedProcedure', userName: 'sprocd', state: 'active' },
      privileges: ['WebAdmin'],
    });
    expect(session.info.ID).toBe(session.id);
    expect(new Set(results.map((r) => (r.result as { session: string }).session))).toEqual(
      new Set([session.id]),
    );
    expect(results.every((r) => (r.result as { guest: boolean }).guest === false)).toBe(true);
    expect(await b.client.storage('counter')).toEqual({ n: 40 });
    expect(await a.client.storage()).toEqual({ counter: { n: 40 }, lifecycle: { startups: 2 } });
    await expect(a.client.storage('absent')).rejects.toMatchObject({
      status: 404,
      code: 'STORAGE_ENTRY_NOT_FOUND',
    });

    const cli = async (args: string[]) => {
      const res = await runSprocd(args, { env: { SPROCD_URL: a.url } });
      expect(res, res.stderr).toMatchObject({ code: 0 });
      return res.stdout;
    };
    expect(JSON.parse(await cli(['session']))).toMatchObject({ id: session.id });
    expect(JSON.parse(await cli(['storage', 'counter']))).toEqual({ n: 40 });
    expect(JSON.parse(await cli(['storage']))).toMatchObject({ counter: { n: 40 } });

    // The session outlives its nodes.
    await a.stop();
    await b.stop();
    const c = await spawnNode(prefix, env);
    nodes.push(c);
    expect((await c.client.session()).id).toBe(session.id);
    expect(await c.client.storage('lifecycle')).toEqual({ startups: 3, shutdowns: 2 });
  });
});

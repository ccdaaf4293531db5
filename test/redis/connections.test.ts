/** Connection hygiene: a node opens a fixed set of connections, does not grow them with work, and closes all. */
import { afterAll, describe, expect, it } from 'vitest';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('conn');

afterAll(async () => {
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

async function connectionsOf(nodeName: string): Promise<string[]> {
  const list = (await testClient().client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? '')
    .filter((name) => name.includes(nodeName));
}

describe('connections', () => {
  it('are a fixed set per node, do not grow with work, and all close on stop', async () => {
    const { node, client } = await startInProcessNode(prefix, { SPROCD_NODE_NAME: `conn-${prefix}` });
    const before = await connectionsOf(`conn-${prefix}`);
    expect(before.length).toBeGreaterThan(0);
    await Promise.all(Array.from({ length: 100 }, (_, i) => client.execute('echo', i, { wait: 10_000 })));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        node.session.storage.use(`k${i % 3}`, (d) => {
          d.n = ((d.n as number | undefined) ?? 0) + 1;
        }),
      ),
    );
    const after = await connectionsOf(`conn-${prefix}`);
    // The only connection opened on demand is the one that reads queue events for `wait`.
    expect(after.length).toBeLessThanOrEqual(before.length + 1);
    await node.stop();
    await new Promise((r) => setTimeout(r, 200));
    expect(await connectionsOf(`conn-${prefix}`)).toEqual([]);
  });
});

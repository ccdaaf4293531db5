/**
 * Starting nodes in tests: in this process (fast, for API and queue behaviour) or as real child
 * processes of bin/sprocd.js (for anything that crosses processes: two nodes, kill, stop, restart).
 */
import path from 'node:path';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { SprocdClient } from '../../src/client.js';
import { createKeys, type Keys } from '../../src/redis/keys.js';
import { checkedFetch } from './openapi.js';
import { BIN, ROOT, childEnv, startProcess, type TestProcess } from './process.js';
import { testRedisUrl } from './redis.js';

export { ROOT };
/** The fixture folders (jobs/, lifecycle hooks) of the tests. */
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

/**
 * SPROCD_QUEUE_SHARDS of the nodes the tests start: SPROCD_TEST_QUEUE_SHARDS, so that the same suites
 * run again with the executions spread over queue shards (the `queue-shards` project of vitest.config.ts).
 */
export const TEST_QUEUE_SHARDS = Number(process.env.SPROCD_TEST_QUEUE_SHARDS ?? '1');

/** The keys of a test deployment, with the shard count its test nodes get. */
export function testKeys(prefix: string): Keys {
  return createKeys(prefix, TEST_QUEUE_SHARDS);
}

/** Settings for a test node: the test Redis, a free port, silent logs, quick leases. */
export function testEnv(prefix: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl(),
    SPROCD_PREFIX: prefix,
    SPROCD_QUEUE_SHARDS: String(TEST_QUEUE_SHARDS),
    PORT: '0',
    LOG_LEVEL: 'silent',
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs'),
    SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'no-lifecycle'),
    SPROCD_SHUTDOWN_GRACE_MS: '2000',
    SPROCD_EXECUTION_LEASE_MS: '2000',
    SPROCD_HEARTBEAT_MS: '500',
    SPROCD_NODE_TIMEOUT_MS: '2000',
    ...env,
  };
}

/** A client of the node at `url` that checks every answer against the node's /openapi.json. */
function testClient(url: string, env: Record<string, string>): SprocdClient {
  return new SprocdClient({ url, token: env.SPROCD_TOKEN ?? '', fetch: url ? checkedFetch(url) : undefined });
}

/** A node in this process, started. */
export async function startInProcessNode(
  prefix: string,
  env: Record<string, string> = {},
): Promise<{
  node: SprocdNode;
  client: SprocdClient;
  url: string;
}> {
  const settings = loadSettings(testEnv(prefix, env), ROOT);
  const node = new SprocdNode(settings, createLogger(settings.logLevel, { pretty: false }));
  await node.start();
  const url = node.url;
  return { node, url, client: testClient(url, env) };
}

/** A node running as its own process (see support/process.ts for the output and signals). */
export interface ChildNode extends TestProcess {
  /** The node's HTTP address, once ready ('' when started with `waitReady: false`). */
  url: string;
  client: SprocdClient;
}

/** Spawns `bin/sprocd.js start` with the test settings and waits until it is ready (or exits). */
export async function spawnNode(
  prefix: string,
  env: Record<string, string> = {},
  options: { waitReady?: boolean; cwd?: string; detached?: boolean } = {},
): Promise<ChildNode> {
  const child = startProcess(BIN, ['start'], {
    env: childEnv(testEnv(prefix, { LOG_LEVEL: 'info', ...env })),
    cwd: options.cwd,
    detached: options.detached,
    label: 'node',
  });
  let url = '';
  if (options.waitReady !== false) {
    const ready = await child.waitForLine((l) => l.msg === 'sprocd node ready', 30_000);
    url = String(ready.url);
  }
  return { ...child, url, client: testClient(url, env) };
}

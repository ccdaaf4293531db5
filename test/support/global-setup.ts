/**
 * One Redis for the whole test run, chosen by {@link chooseRedisSource}; each test file then works
 * under its own key prefix (test/support/redis.ts), so files run in parallel without meeting.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import type { TestProject } from 'vitest/node';
import { startRedisServer, hasRedisServerOnPath, type RedisServer } from '../../src/redis/embedded.js';
import { chooseRedisSource } from './redis-source.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: RedisServer | undefined;
let container: { stop(): Promise<unknown> } | undefined;

export async function setup(project: TestProject): Promise<void> {
  const source = chooseRedisSource({
    named: process.env.SPROCD_TEST_REDIS,
    redisUrl: process.env.REDIS_URL,
    hasRedisServer: hasRedisServerOnPath(),
    hasDocker: () => dockerAnswers(),
  });
  let url: string;
  if (source === 'url') {
    if (process.env.REDIS_URL === undefined || process.env.REDIS_URL === '') {
      throw new Error('SPROCD_TEST_REDIS=url needs REDIS_URL');
    }
    url = process.env.REDIS_URL;
  } else if (source === 'redis-server') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-test-redis-'));
    server = await startRedisServer({ dir, appendfsync: 'everysec' });
    url = server.url;
  } else if (source === 'testcontainers') {
    // The image docker-compose.yml runs. On a machine with no registry access, .ci/docker-standins
    // provides it; CI also sets TESTCONTAINERS_RYUK_DISABLED=true, as Ryuk's image cannot be fetched.
    const { RedisContainer } = await import('@testcontainers/redis');
    const started = await new RedisContainer('redis:7-alpine').start();
    container = started;
    url = started.getConnectionUrl();
    process.stdout.write(`test Redis: a redis:7-alpine container started by testcontainers, ${url}\n`);
  } else {
    throw new Error(
      'Tests need Redis: set REDIS_URL, put redis-server on PATH (apt-get install redis-server), or run a Docker engine.',
    );
  }
  process.env.SPROCD_TEST_REDIS_URL = url;
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  await container?.stop();
}

function dockerAnswers(): boolean {
  return fs.existsSync('/var/run/docker.sock') || process.env.DOCKER_HOST !== undefined;
}

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
    redisUrl: process.env.REDIS_URL,
    hasRedisServer: hasRedisServerOnPath(),
    hasDocker: () => dockerAnswers(),
  });
  let url: string;
  if (source === 'url') {
    url = process.env.REDIS_URL as string;
  } else if (source === 'redis-server') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-test-redis-'));
    server = await startRedisServer({ dir, appendfsync: 'everysec' });
    url = server.url;
  } else if (source === 'testcontainers') {
    const { RedisContainer } = await import('@testcontainers/redis');
    const started = await new RedisContainer('redis:7-alpine').start();
    container = started;
    url = started.getConnectionUrl();
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

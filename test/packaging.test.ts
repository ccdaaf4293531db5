/**
 * Packaging: docker-compose.yml is valid for Compose (checked with Debian's docker-compose, which
 * .ci/run installs) and says what the container rules say (a password for Redis, an init, loopback
 * by default); the Dockerfiles run node itself as an unprivileged user on the Node major that
 * package.json's engines names; `sprocd init` ships the same compose file; and the test Redis is
 * chosen as documented. `docker compose up` itself runs in .ci/docker-test (test/docker/compose.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/node.js';
import { chooseRedisSource } from './support/redis-source.js';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
const TEMPLATE = 'src/init/template';
const SECRETS = { SPROCD_TOKEN: 'a-token-of-sixteen-chars', REDIS_PASSWORD: 'a-redis-password' };

function composeConfig(env: Record<string, string | undefined>, file = 'docker-compose.yml'): string {
  const full: NodeJS.ProcessEnv = { ...process.env, SPROCD_PUBLISH: undefined, ...env };
  for (const [name, value] of Object.entries(full)) {
    if (value === undefined) {
      delete full[name];
    }
  }
  return execFileSync('docker-compose', ['-f', path.join(ROOT, file), 'config'], {
    env: full,
    encoding: 'utf8',
    stdio: 'pipe',
  });
}

describe('docker-compose.yml', () => {
  it('passes docker-compose config: Redis with a password, node behind an init, API on loopback', () => {
    const out = composeConfig(SECRETS);
    expect(out).toMatch(/condition: service_healthy/);
    expect(out).toMatch(/appendonly/);
    expect(out).toMatch(/SPROCD_TOKEN: a-token-of-sixteen-chars/);
    expect(out).toMatch(/- --requirepass\n\s+- a-redis-password/);
    expect(out).toMatch(/REDIS_URL: redis:\/\/:a-redis-password@redis:6379/);
    expect(out).toMatch(/REDISCLI_AUTH: a-redis-password/);
    expect(out).toMatch(/init: true/);
    expect(out).toMatch(/- 127\.0\.0\.1:8080:8080/);
  });

  it('publishes on another address only when SPROCD_PUBLISH says so', () => {
    expect(composeConfig({ ...SECRETS, SPROCD_PUBLISH: '0.0.0.0:9090' })).toMatch(/- 0\.0\.0\.0:9090:8080/);
  });

  it.each([['SPROCD_TOKEN'], ['REDIS_PASSWORD']])('refuses to start without %s', (name) => {
    expect(() => composeConfig({ ...SECRETS, [name]: undefined })).toThrow(new RegExp(`set ${name}`));
  });

  it('is the file `sprocd init` writes into a project', () => {
    expect(read(`${TEMPLATE}/docker-compose.yml`)).toBe(read('docker-compose.yml'));
  });
});

describe('Dockerfile', () => {
  const engines = JSON.parse(read('package.json')).engines.node as string;
  const enginesMajor = Number(/^>=(\d+)$/.exec(engines)?.[1]);

  it.each([
    ['Dockerfile', 'bin/sprocd.js'],
    [`${TEMPLATE}/Dockerfile`, 'node_modules/sprocd/bin/sprocd.js'],
  ])('%s: node as the command, as the node user, on the engines major, health on PORT', (file, bin) => {
    const dockerfile = read(file);
    expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
    expect(dockerfile).toContain(`CMD ["node", "${bin}", "start"]`);
    expect(dockerfile).not.toMatch(/CMD \["npm"/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/HEALTHCHECK[^\n]*\n[^\n]*process\.env\.PORT/);
    expect(Number(/^FROM node:(\d+)/m.exec(dockerfile)?.[1])).toBe(enginesMajor);
  });

  it('follows the README (npm ci, then the start that npm start runs) and targets Node 24', () => {
    const readme = read('README.md');
    expect(readme).toMatch(/npm ci/);
    expect(readme).toMatch(/npm start/);
    expect(JSON.parse(read('package.json')).scripts.start).toBe('node bin/sprocd.js start');
    expect(enginesMajor).toBe(24);
  });
});

describe('where the tests get Redis', () => {
  const docker = () => true;
  const noDocker = () => false;

  it('prefers REDIS_URL, then redis-server from PATH, then a Docker container', () => {
    expect(chooseRedisSource({ redisUrl: 'redis://x:1', hasRedisServer: true, hasDocker: docker })).toBe(
      'url',
    );
    expect(chooseRedisSource({ redisUrl: undefined, hasRedisServer: true, hasDocker: docker })).toBe(
      'redis-server',
    );
    expect(chooseRedisSource({ redisUrl: '', hasRedisServer: false, hasDocker: docker })).toBe(
      'testcontainers',
    );
    expect(chooseRedisSource({ redisUrl: undefined, hasRedisServer: false, hasDocker: noDocker })).toBe(
      'none',
    );
  });

  it('takes the source SPROCD_TEST_REDIS names over the others, and refuses an unknown one', () => {
    const probe = { redisUrl: 'redis://x:1', hasRedisServer: true, hasDocker: noDocker };
    expect(chooseRedisSource({ ...probe, named: 'testcontainers' })).toBe('testcontainers');
    expect(chooseRedisSource({ ...probe, named: 'redis-server' })).toBe('redis-server');
    expect(chooseRedisSource({ ...probe, named: '' })).toBe('url');
    expect(() => chooseRedisSource({ ...probe, named: 'docker' })).toThrow(/SPROCD_TEST_REDIS/);
  });
});

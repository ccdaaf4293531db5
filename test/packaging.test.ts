/**
 * Packaging: docker-compose.yml is valid for Compose (checked with Debian's docker-compose, which
 * .ci/run installs), the Dockerfile keeps the README's steps, and the test Redis is chosen as documented.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/node.js';
import { chooseRedisSource } from './support/redis-source.js';

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

describe('docker-compose.yml', () => {
  it('passes docker-compose config', () => {
    const out = execFileSync('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config'], {
      env: { ...process.env, SPROCD_TOKEN: 'a-token-of-sixteen-chars' },
      encoding: 'utf8',
    });
    expect(out).toMatch(/condition: service_healthy/);
    expect(out).toMatch(/appendonly/);
    expect(out).toMatch(/SPROCD_TOKEN: a-token-of-sixteen-chars/);
  });

  it('refuses to start without a token', () => {
    const env = { ...process.env };
    delete env.SPROCD_TOKEN;
    expect(() =>
      execFileSync('docker-compose', ['-f', path.join(ROOT, 'docker-compose.yml'), 'config', '-q'], {
        env,
        stdio: 'pipe',
      }),
    ).toThrow(/SPROCD_TOKEN/);
  });
});

describe('Dockerfile', () => {
  it('installs and starts the way the README says', () => {
    const dockerfile = read('Dockerfile');
    const readme = read('README.md');
    expect(dockerfile).toMatch(/RUN npm ci/);
    expect(dockerfile).toMatch(/CMD \["npm", "start"\]/);
    expect(readme).toMatch(/npm ci/);
    expect(readme).toMatch(/npm start/);
    expect(dockerfile).toMatch(/FROM node:24/);
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
});

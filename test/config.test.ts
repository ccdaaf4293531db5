/** Settings from the environment, without Redis: the defaults, and one clear line per bad setting. */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { isLoopbackHost, isValidTimezone, loadSettings } from '../src/config.js';

/** The ConfigError loading `env` throws, or a failure. */
function refusal(env: Record<string, string>): ConfigError {
  try {
    loadSettings(env, '/srv/app');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

const problemsOf = (env: Record<string, string>) => (refusal(env).details as { problems: string[] }).problems;

describe('defaults', () => {
  it('gives every setting its default, with folders resolved against the working directory', () => {
    const s = loadSettings({}, '/srv/app');
    expect(s).toEqual({
      redisUrl: undefined,
      clusterNodes: undefined,
      sentinels: undefined,
      sentinelMaster: undefined,
      sentinelPassword: undefined,
      replicaAcks: 0,
      storageSlots: 1,
      replicaAckTimeoutMs: 1000,
      prefix: 'sprocd',
      host: '127.0.0.1',
      port: 8080,
      token: undefined,
      callersFile: undefined,
      auditMax: 10_000,
      concurrency: 16,
      queueShards: 1,
      workerBatch: 32,
      jobsDir: '/srv/app/jobs',
      lifecycleDir: '/srv/app/lifecycle',
      shutdownGraceMs: 10_000,
      backupCron: undefined,
      backupTimezone: undefined,
      backupDir: '/srv/app/backups',
      backupKeep: 3,
      backupRetries: 3,
      backupRetryDelayMs: 60_000,
      backupMaxFailures: 5,
      logLevel: 'info',
      userName: 'sprocd',
      lockLeaseMs: 10_000,
      lockTimeoutMs: 30_000,
      storageMaxEntryBytes: 1024 * 1024,
      keepFinished: 1000,
      keepFinishedSeconds: 24 * 3600,
      bodyLimit: 1024 * 1024,
      restoreMaxBytes: 512 * 1024 * 1024,
      redisTimeoutMs: 2000,
      rateLimit: 3000,
      rateLimitWindowMs: 10_000,
      maxWaits: 1000,
      maxWaiting: 0,
      maxConnections: 1000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 300_000,
      keepAliveTimeoutMs: 72_000,
      executionLeaseMs: 30_000,
      maxRecoveries: 5,
      heartbeatMs: 5000,
      nodeTimeoutMs: 15_000,
      nodeName: `${os.hostname()}-${process.pid}`,
      dataDir: path.resolve('/srv/app', '.sprocd'),
    });
  });

  it('reads what is set, trims numbers, and treats an empty variable as unset', () => {
    const s = loadSettings(
      {
        REDIS_URL: 'redis://r:6379/2',
        PORT: ' 9000 ',
        SPROCD_CONCURRENCY: '',
        SPROCD_JOBS_DIR: '/abs/jobs',
        SPROCD_NODE_NAME: 'node-a:1',
        HOST: '0.0.0.0',
        SPROCD_TOKEN: 'x'.repeat(16),
        SPROCD_BACKUP_CRON: '0 3 * * *',
        SPROCD_BACKUP_TZ: 'Europe/Paris',
      },
      '/srv/app',
    );
    expect(s).toMatchObject({
      redisUrl: 'redis://r:6379/2',
      port: 9000,
      concurrency: 16,
      jobsDir: '/abs/jobs',
      nodeName: 'node-a:1',
      host: '0.0.0.0',
      backupCron: '0 3 * * *',
      backupTimezone: 'Europe/Paris',
    });
  });

  it('takes "off" as a backup schedule', () => {
    expect(loadSettings({ SPROCD_BACKUP_CRON: 'off' }).backupCron).toBe('off');
  });
});

describe('bad settings', () => {
  it.each([
    [
      'REDIS_URL',
      'localhost:6379',
      /^REDIS_URL="localhost:6379": must start with redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/, rediss\+sentinel:\/\/, redis\+cluster:\/\/, rediss\+cluster:\/\/ or unix:\/\/$/,
    ],
    ['SPROCD_PREFIX', 'a b', /^SPROCD_PREFIX="a b": use 1-64 of/],
    ['PORT', '70000', /^PORT="70000": Too big: expected number to be <=65535$/],
    ['PORT', 'http', /^PORT="http": must be a whole number$/],
    ['SPROCD_TOKEN', 'short', /^SPROCD_TOKEN=\(hidden\): must be at least 16 characters$/],
    ['SPROCD_CONCURRENCY', '0', /^SPROCD_CONCURRENCY="0": Too small: expected number to be >=1$/],
    ['SPROCD_CONCURRENCY', '1.5', /^SPROCD_CONCURRENCY="1.5": must be a whole number$/],
    ['SPROCD_QUEUE_SHARDS', '0', /^SPROCD_QUEUE_SHARDS="0": Too small: expected number to be >=1$/],
    ['SPROCD_QUEUE_SHARDS', '65', /^SPROCD_QUEUE_SHARDS="65": Too big: expected number to be <=64$/],
    ['SPROCD_WORKER_BATCH', '0', /^SPROCD_WORKER_BATCH="0": Too small: expected number to be >=1$/],
    ['SPROCD_JOBS_DIR', '   ', /^SPROCD_JOBS_DIR=" {3}": must not be empty$/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL="loud": Invalid option: expected one of/],
    ['SPROCD_NODE_NAME', 'a/b', /^SPROCD_NODE_NAME="a\/b": use 1-100 of/],
    ['SPROCD_REDIS_TIMEOUT_MS', '10', /^SPROCD_REDIS_TIMEOUT_MS="10": Too small/],
    ['SPROCD_BACKUP_CRON', 'at noon', /^SPROCD_BACKUP_CRON="at noon": /],
    ['SPROCD_BACKUP_TZ', 'Mars/Olympus', /^SPROCD_BACKUP_TZ="Mars\/Olympus": not a known IANA time zone$/],
    ['HOST', '0.0.0.0', /^HOST="0.0.0.0": listening beyond loopback needs SPROCD_TOKEN/],
  ])('%s=%j is one line that names the variable', (variable, value, line) => {
    const problems = problemsOf({ [variable]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(line);
  });

  it('checks the heartbeat against the node time-out', () => {
    expect(problemsOf({ SPROCD_HEARTBEAT_MS: '5000', SPROCD_NODE_TIMEOUT_MS: '5000' })).toEqual([
      'SPROCD_NODE_TIMEOUT_MS: must be longer than SPROCD_HEARTBEAT_MS',
    ]);
  });

  it('lists every bad setting at once, one per line, in the message', () => {
    const err = refusal({ SPROCD_CONCURRENCY: 'many', SPROCD_BACKUP_CRON: 'at noon', PORT: '-1' });
    expect(err.code).toBe('CONFIG_INVALID');
    const lines = err.message.split('\n');
    expect(lines[0]).toBe('Bad settings:');
    expect(lines.slice(1)).toHaveLength(3);
    expect(err.message).toMatch(/ {2}PORT="-1": must be a whole number/);
    expect(err.message).toMatch(/ {2}SPROCD_CONCURRENCY="many": must be a whole number/);
    expect(err.message).toMatch(/ {2}SPROCD_BACKUP_CRON="at noon"/);
  });

  it('does not ask for a token on a non-loopback host when the token itself is bad', () => {
    expect(problemsOf({ HOST: '0.0.0.0', SPROCD_TOKEN: 'short' })).toEqual([
      'SPROCD_TOKEN=(hidden): must be at least 16 characters',
    ]);
  });
});

describe('helpers', () => {
  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });

  it('knows IANA time zones', () => {
    expect(isValidTimezone('UTC')).toBe(true);
    expect(isValidTimezone('America/New_York')).toBe(true);
    expect(isValidTimezone('Nowhere/Else')).toBe(false);
  });
});

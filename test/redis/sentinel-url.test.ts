/** The Sentinel forms of the settings, without Redis: the URL, SPROCD_SENTINELS, redaction, ioredis's options. */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { redactUrl } from '../../src/logger.js';
import { sentinelOptions } from '../../src/redis/connections.js';
import { formatSentinelUrl, parseSentinelUrl } from '../../src/redis/sentinel-url.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadSettings(env, '/srv/app');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return ((err as ConfigError).details as { problems: string[] }).problems;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('the redis+sentinel:// URL', () => {
  it('names the sentinels, the master group, the data nodes’ credentials and the sentinels’ own', () => {
    expect(
      parseSentinelUrl(
        'redis+sentinel://app:p%40ss@10.0.0.1:26379,sentinel-b,[::1]:26380/my-master?db=2&sentinelUsername=sen&sentinelPassword=s3',
      ),
    ).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'sentinel-b', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'my-master',
      username: 'app',
      password: 'p@ss',
      db: 2,
      sentinelUsername: 'sen',
      sentinelPassword: 's3',
      tls: false,
    });
    expect(parseSentinelUrl('rediss+sentinel://:pw@h:1/m')).toMatchObject({ password: 'pw', tls: true });
    expect(parseSentinelUrl('redis+sentinel://h:1/m')).not.toHaveProperty('password');
  });

  it('prints back what it reads', () => {
    const url = 'redis+sentinel://app:p%40ss@10.0.0.1:26379,[::1]:26380/m?db=2&sentinelPassword=s3';
    expect(formatSentinelUrl(parseSentinelUrl(url))).toBe(url);
  });

  it.each([
    ['redis+sentinel://h:26379', /must look like redis\+sentinel:\/\//],
    ['redis+sentinel://h:26379,/m', /"" is not a sentinel address/],
    ['redis+sentinel://h:99999/m', /"h:99999" is not a sentinel address/],
    ['redis+sentinel://h/m?db=x', /db must be a whole number/],
    ['redis+sentinel://h/m?role=slave', /unknown parameter "role"/],
  ])('refuses %s', (url, message) => {
    expect(() => parseSentinelUrl(url)).toThrow(message);
  });

  it('is a REDIS_URL; a bad one is one line naming REDIS_URL, without its passwords', () => {
    expect(loadSettings({ REDIS_URL: 'redis+sentinel://a:1,b:2/m' }).redisUrl).toBe(
      'redis+sentinel://a:1,b:2/m',
    );
    expect(problemsOf({ REDIS_URL: 'redis+sentinel://a:1/m?db=x' })).toEqual([
      'REDIS_URL="redis+sentinel://a:1/m?db=x": db must be a whole number',
    ]);
    // A URL that does not read cannot be redacted: it is hidden whole.
    expect(problemsOf({ REDIS_URL: 'redis+sentinel://u:secret@a:1/m?db=x' })).toEqual([
      'REDIS_URL=(hidden: it may hold credentials): db must be a whole number',
    ]);
    expect(problemsOf({ REDIS_URL: 'redis+sentinel://u:secret@a:x/m' })[0]).not.toContain('secret');
  });

  it('is logged without the passwords of the data nodes or of the sentinels', () => {
    const shown = redactUrl('redis+sentinel://u:secret@a:1/m?sentinelPassword=other');
    expect(shown).toBe('redis+sentinel://u:***@a:1/m?sentinelPassword=***');
  });

  it('becomes ioredis options that ask the sentinels for the master and follow its fail-overs', () => {
    const options = sentinelOptions('redis+sentinel://u:pw@a:1,b:2/m?db=3&sentinelPassword=sp', 2000);
    expect(options).toMatchObject({
      sentinels: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ],
      name: 'm',
      role: 'master',
      db: 3,
      username: 'u',
      password: 'pw',
      sentinelPassword: 'sp',
      failoverDetector: true,
      sentinelCommandTimeout: 2000,
    });
    expect(
      options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica.")),
    ).toBe(2);
    expect(options.reconnectOnError?.(new Error('ERR other'))).toBe(false);
    // A connection that backed off while the sentinels elected a master tries again within 250 ms.
    expect(options.retryStrategy?.(1)).toBe(50);
    expect(options.retryStrategy?.(40)).toBe(250);
    // A connection the fail-over detector drops leaves a frozen master at once, not after 2 s.
    expect(options.disconnectTimeout).toBeLessThanOrEqual(100);
  });
});

describe('SPROCD_SENTINELS and SPROCD_SENTINEL_MASTER', () => {
  it('become the Sentinel URL, with SPROCD_SENTINEL_PASSWORD in it', () => {
    const s = loadSettings({
      SPROCD_SENTINELS: '10.0.0.1:26379, 10.0.0.2',
      SPROCD_SENTINEL_MASTER: 'mymaster',
      SPROCD_SENTINEL_PASSWORD: 'sp',
    });
    expect(parseSentinelUrl(s.redisUrl ?? '')).toMatchObject({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'mymaster',
      sentinelPassword: 'sp',
    });
  });

  it('adds SPROCD_SENTINEL_PASSWORD to a Sentinel REDIS_URL', () => {
    const s = loadSettings({ REDIS_URL: 'redis+sentinel://:pw@a:1/m', SPROCD_SENTINEL_PASSWORD: 'sp' });
    expect(parseSentinelUrl(s.redisUrl ?? '')).toMatchObject({ password: 'pw', sentinelPassword: 'sp' });
  });

  it.each([
    [{ SPROCD_SENTINELS: 'a:1' }, /^SPROCD_SENTINELS and SPROCD_SENTINEL_MASTER: give both/],
    [{ SPROCD_SENTINEL_MASTER: 'm' }, /^SPROCD_SENTINELS and SPROCD_SENTINEL_MASTER: give both/],
    [
      { SPROCD_SENTINELS: 'a:1', SPROCD_SENTINEL_MASTER: 'm', REDIS_URL: 'redis://r:6379' },
      /^REDIS_URL: give either REDIS_URL or SPROCD_SENTINELS/,
    ],
    [
      { SPROCD_SENTINELS: 'a:1,b:x', SPROCD_SENTINEL_MASTER: 'm' },
      /^SPROCD_SENTINELS="a:1,b:x": "b:x" is not/,
    ],
    [{ SPROCD_SENTINELS: 'a', SPROCD_SENTINEL_MASTER: 'm m' }, /^SPROCD_SENTINEL_MASTER="m m": use 1-100 of/],
    [
      { REDIS_URL: 'redis://r', SPROCD_SENTINEL_PASSWORD: 'x' },
      /^SPROCD_SENTINEL_PASSWORD: needs SPROCD_SENTINELS/,
    ],
  ])('%j is refused in one line', (env, line) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(line);
  });
});

describe('SPROCD_REPLICA_ACKS', () => {
  it('is off by default and read with its time-out', () => {
    expect(loadSettings({})).toMatchObject({ replicaAcks: 0, replicaAckTimeoutMs: 1000 });
    expect(
      loadSettings({
        REDIS_URL: 'redis://r',
        SPROCD_REPLICA_ACKS: '2',
        SPROCD_REPLICA_ACK_TIMEOUT_MS: '500',
      }),
    ).toMatchObject({ replicaAcks: 2, replicaAckTimeoutMs: 500 });
  });

  it.each([
    [
      { SPROCD_REPLICA_ACKS: '1' },
      /^SPROCD_REPLICA_ACKS: needs REDIS_URL, SPROCD_SENTINELS or SPROCD_CLUSTER_NODES/,
    ],
    [
      { REDIS_URL: 'redis://r', SPROCD_REPLICA_ACKS: '1', SPROCD_REPLICA_ACK_TIMEOUT_MS: '2000' },
      /^SPROCD_REPLICA_ACK_TIMEOUT_MS: must be shorter than SPROCD_REDIS_TIMEOUT_MS$/,
    ],
    [{ SPROCD_REPLICA_ACKS: '-1' }, /^SPROCD_REPLICA_ACKS="-1": must be a whole number$/],
  ])('%j is refused in one line', (env, line) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(line);
  });
});

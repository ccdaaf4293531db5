/** Configuration errors never show a secret: SPROCD_TOKEN, SPROCD_BACKUP_KEY, and URL credentials. */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { runSprocd } from '../support/process.js';

function messageOf(env: Record<string, string>): string {
  try {
    loadSettings(env, '/srv');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('loadSettings accepted it');
}

describe('configuration errors', () => {
  it.each([
    ['SPROCD_TOKEN', 'tooshort-s3cr3t', 'tooshort-s3cr3t', /SPROCD_TOKEN=\(hidden\): must be at least 16/],
    [
      'SPROCD_BACKUP_KEY',
      'short-k3y-s3cr3t',
      'short-k3y-s3cr3t',
      /SPROCD_BACKUP_KEY=\(hidden\): must be at least 32 bytes/,
    ],
    [
      'REDIS_URL',
      'http://admin:pa55w0rd-s3cr3t@db:6379',
      'pa55w0rd-s3cr3t',
      /REDIS_URL="http:\/\/\*\*\*:\*\*\*@db:6379\/?": must start/,
    ],
    [
      'REDIS_URL',
      'tcp://t0ken-as-user-s3cr3t@db:6379',
      't0ken-as-user-s3cr3t',
      /REDIS_URL="tcp:\/\/\*\*\*@db:6379\/?": must start/,
    ],
    [
      'REDIS_URL',
      'db:6379 pa55w0rd-s3cr3t@',
      'pa55w0rd-s3cr3t',
      /REDIS_URL=\(hidden: it may hold credentials\)/,
    ],
  ])('%s: its value is not shown', (variable, value, secret, shown) => {
    const message = messageOf({ [variable]: value });
    expect(message).toMatch(shown);
    expect(message).not.toContain(secret);
  });

  it('sprocd start prints none of them, and exits 2', async () => {
    const { code, stdout, stderr } = await runSprocd(['start'], {
      env: {
        SPROCD_TOKEN: 'tooshort-s3cr3t',
        SPROCD_BACKUP_KEY: 'short-k3y-s3cr3t',
        REDIS_URL: 'http://admin:pa55w0rd-s3cr3t@db:6379',
        HOST: '0.0.0.0',
      },
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^sprocd: Bad settings:/);
    expect(stderr).toMatch(/SPROCD_TOKEN=\(hidden\)/);
    for (const secret of ['tooshort-s3cr3t', 'short-k3y-s3cr3t', 'pa55w0rd-s3cr3t']) {
      expect(stdout + stderr).not.toContain(secret);
    }
  });
});

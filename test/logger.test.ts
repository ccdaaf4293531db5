/**
 * The node's logger, without Redis: secrets never reach a log line (tokens, passwords, the Redis URL,
 * the Authorization header), whatever the level, and Redis URLs are shown without their password.
 */
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../src/logger.js';

/** A JSON logger made by createLogger whose lines are kept here instead of written to stdout. */
function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const logger = createLogger('info', { pretty: false });
  const written: string[] = [];
  // pino looks its destination up on each write; pino.symbols is its documented integration point.
  (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = {
    write: (s: string) => written.push(s),
  };
  return { logger, lines: () => written.map((s) => JSON.parse(s) as Record<string, unknown>) };
}

const SECRET = 's3cr3t-value';

describe('createLogger', () => {
  it('writes JSON lines named sprocd at the level asked', () => {
    const { logger, lines } = capture();
    logger.debug('hidden');
    logger.info({ n: 1 }, 'shown');
    expect(lines()).toEqual([expect.objectContaining({ name: 'sprocd', msg: 'shown', n: 1, level: 30 })]);
  });

  it.each([
    ['a token', { token: SECRET }, ['token']],
    ['a nested token', { settings: { token: SECRET } }, ['settings', 'token']],
    ['a password', { password: SECRET }, ['password']],
    ['a nested password', { redis: { password: SECRET } }, ['redis', 'password']],
    ['the Redis URL', { redisUrl: `redis://:${SECRET}@host:6379` }, ['redisUrl']],
    ['a nested Redis URL', { settings: { redisUrl: `redis://:${SECRET}@h:1` } }, ['settings', 'redisUrl']],
    [
      'the Authorization header',
      { req: { headers: { authorization: `Bearer ${SECRET}` } } },
      ['req', 'headers', 'authorization'],
    ],
  ])('redacts %s', (_what, fields, pathToSecret) => {
    const { logger, lines } = capture();
    logger.warn(fields, 'with a secret');
    const [line] = lines();
    expect(JSON.stringify(line)).not.toContain(SECRET);
    const redacted = pathToSecret.reduce<unknown>((at, step) => (at as Record<string, unknown>)[step], line);
    expect(redacted).toBe('[redacted]');
  });

  it('keeps the fields next to a redacted one', () => {
    const { logger, lines } = capture();
    logger.info({ settings: { token: SECRET, port: 3000 } }, 'started');
    expect(lines()[0]).toMatchObject({ settings: { token: '[redacted]', port: 3000 } });
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps the rest', () => {
    const shown = redactUrl(`redis://user:${SECRET}@redis.example:6380/2`);
    expect(shown).not.toContain(SECRET);
    expect(shown).toBe('redis://user:***@redis.example:6380/2');
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('never echoes a URL it cannot parse (it might hold a secret)', () => {
    expect(redactUrl(`not a url ${SECRET}`)).toBe('[unparsable url]');
  });
});

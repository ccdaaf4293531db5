/**
 * The limits' pure parts without Redis: the server options made of the settings, the settings'
 * own rules, the wait gate, the key a request counts under, and Retry-After from an error.
 */
import { describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { TooManyWaitsError, WaitGate, callerKey, retryAfterOf, serverOptions } from '../../src/api/limits.js';
import { loadSettings } from '../../src/config.js';
import { ConfigError, NotReadyError } from '../../src/errors.js';

describe('serverOptions', () => {
  it("maps the settings to Node's time-outs, checking late headers often enough", () => {
    expect(
      serverOptions({ headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 72_000 }),
    ).toEqual({
      http: { headersTimeout: 10_000, connectionsCheckingInterval: 1000 },
      connectionTimeout: 11 * 60_000,
      requestTimeout: 300_000,
      keepAliveTimeout: 72_000,
    });
    expect(serverOptions({ headersTimeoutMs: 400 }).http?.connectionsCheckingInterval).toBe(100);
    expect(serverOptions({})).toEqual({});
  });

  it('refuses a request time-out shorter than the headers time-out (0 turns it off)', () => {
    expect(() =>
      loadSettings({ SPROCD_HEADERS_TIMEOUT_MS: '5000', SPROCD_REQUEST_TIMEOUT_MS: '1000' }),
    ).toThrow(ConfigError);
    expect(
      loadSettings({ SPROCD_HEADERS_TIMEOUT_MS: '5000', SPROCD_REQUEST_TIMEOUT_MS: '0' }).requestTimeoutMs,
    ).toBe(0);
  });
});

describe('WaitGate', () => {
  it('lets `max` in, refuses the next with TOO_MANY_WAITS, and takes one more once one left', () => {
    const gate = new WaitGate(2);
    const first = gate.enter();
    gate.enter();
    expect(() => gate.enter()).toThrow(TooManyWaitsError);
    first();
    first(); // leaving twice gives back one place only
    expect(gate.size).toBe(1);
    gate.enter();
    expect(() => gate.enter()).toThrow(TooManyWaitsError);
  });
});

describe('callerKey and retryAfterOf', () => {
  const request = (fields: object) =>
    ({ headers: {}, ip: '10.0.0.9', ...fields }) as unknown as FastifyRequest;

  it('counts a request under its caller, else its token, else its address', () => {
    expect(callerKey(request({ caller: { name: 'ci' }, headers: { authorization: 'Bearer x' } }))).toBe(
      'caller:ci',
    );
    const byToken = callerKey(request({ headers: { authorization: 'Bearer secret' } }));
    expect(byToken).toMatch(/^token:[0-9a-f]{32}$/);
    expect(byToken).not.toContain('secret');
    expect(callerKey(request({}))).toBe('address:10.0.0.9');
  });

  it('reads Retry-After from the error details, only there', () => {
    expect(retryAfterOf(new TooManyWaitsError(3))).toBe(1);
    expect(retryAfterOf(new NotReadyError())).toBeUndefined();
    expect(retryAfterOf(new Error('x'))).toBeUndefined();
  });
});

/** Error codes to HTTP, in one place: every code has a status, and every answer has the error shape. */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, RedisUnavailableError, SprocdError, ValidationError } from '../../src/errors.js';
import { STATUS, fail, toHttpError } from '../../src/api/errors.js';

describe('STATUS', () => {
  it('gives every code an HTTP error status, and knows no other code', () => {
    expect(Object.keys(STATUS).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      expect(STATUS[code], code).toBeGreaterThanOrEqual(400);
      expect(STATUS[code], code).toBeLessThan(600);
    }
  });

  it.each([
    ['VALIDATION_FAILED', 400],
    ['INVALID_NAME', 400],
    ['UNAUTHORIZED', 401],
    ['UNKNOWN_PROCEDURE', 404],
    ['EXECUTION_NOT_FOUND', 404],
    ['EXECUTION_FINISHED', 409],
    ['BACKUP_RUNNING', 409],
    ['PAYLOAD_TOO_LARGE', 413],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['NOT_READY', 503],
    ['STOPPING', 503],
    ['REDIS_UNAVAILABLE', 503],
  ] as const)('maps %s to %i', (code, status) => {
    expect(toHttpError(new SprocdError(code, 'm'))).toEqual({
      status,
      body: { error: { code, message: 'm' } },
    });
  });
});

describe('toHttpError', () => {
  it('keeps the details of a sprocd error', () => {
    expect(toHttpError(new ValidationError('bad', { issues: [] }))).toEqual({
      status: 400,
      body: { error: { code: 'VALIDATION_FAILED', message: 'bad', details: { issues: [] } } },
    });
  });

  it('answers 500 for a code it does not know (an error of another version)', () => {
    expect(toHttpError(new SprocdError<string>('SOMETHING_NEW', 'm')).status).toBe(500);
  });

  it('turns Redis trouble into 503 REDIS_UNAVAILABLE', () => {
    for (const err of [
      new RedisUnavailableError(),
      new Error('Connection is closed.'),
      new Error('connect ECONNREFUSED'),
    ]) {
      expect(toHttpError(err)).toMatchObject({ status: 503, body: { error: { code: 'REDIS_UNAVAILABLE' } } });
    }
  });

  it.each([
    [
      { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413, message: 'Request body is too large' },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415, message: 'x' },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [{ code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400, message: 'x' }, 400, 'BAD_JSON'],
    [new SyntaxError('Unexpected end of JSON input'), 400, 'BAD_JSON'],
    [
      { statusCode: 400, message: 'Body is not valid JSON but content-type is set to application/json' },
      400,
      'BAD_JSON',
    ],
    [{ statusCode: 405, message: 'Method not allowed' }, 405, 'BAD_REQUEST'],
    [new TypeError('a bug'), 500, 'INTERNAL'],
    ['a thrown string', 500, 'INTERNAL'],
  ])('maps what fastify or a bug throws (%#) to %i %s', (err, status, code) => {
    const answer = toHttpError(err);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ error: { code, message: expect.any(String) } });
  });

  it('never shows the message of an unexpected error', () => {
    expect(toHttpError(new Error('password=hunter2')).body.error.message).not.toMatch(/hunter2/);
  });
});

describe('fail', () => {
  it('answers a code with the status of the table', () => {
    expect(fail('NOT_FOUND', 'No route.')).toEqual({
      status: 404,
      body: { error: { code: 'NOT_FOUND', message: 'No route.' } },
    });
  });
});

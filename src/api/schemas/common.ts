/**
 * Schema parts every route shares: any JSON value, the error shape with the codes of each status,
 * and the error answers a route lists in its OpenAPI responses. The zod schemas under schemas/ are
 * the one description of the API: the routes validate requests with them, /openapi.json is made
 * from them, and the typed client's types are inferred from them.
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../errors.js';
import type { JsonValue } from '../../types.js';
import { STATUS } from '../errors.js';

/** Any JSON value (JSON Schema `{}`): params, results, progress and storage entries. */
export const JsonValueSchema = z.custom<JsonValue>(() => true).describe('Any JSON value.');

/** An ISO 8601 time as the API writes it (`Date#toISOString`). */
export const IsoTime = z.string().describe('ISO 8601 time, e.g. 2025-01-31T12:00:00.000Z');

/** Why a request failed: the body of every 4xx and 5xx answer. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('A stable code to switch on (see the README for the list).'),
      message: z.string().describe('What went wrong, for people.'),
      details: z.unknown().optional().describe('Facts about the error, e.g. the number or the zod issues.'),
    }),
  })
  .meta({ id: 'Error' });

/** The body of an error answer. */
export type ErrorBody = z.output<typeof ErrorBodySchema>;

/** The codes an answer of `status` can carry (fastify's own 4xx keep their status and say BAD_REQUEST). */
export function codesOf(status: number): ErrorCode[] {
  return ERROR_CODES.filter((code) => STATUS[code] === status);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The request is malformed or does not pass validation.',
  401: 'The bearer token is missing or wrong.',
  403: 'The caller lacks the scope the route needs; or, on a node without a token, the request is not loopback and same-origin.',
  404: 'Not found.',
  409: 'Conflicts with the current state.',
  413: 'The body is larger than the node accepts.',
  415: 'The body has the wrong Content-Type.',
  429: "The caller sent more requests than its rate limit allows; retry after the Retry-After header's seconds.",
  500: 'Internal error; the node log has the details.',
  503: 'The node cannot serve this now (starting, stopping, Redis unavailable, or a limit of the node reached); retry, after Retry-After when given.',
};

const errorSchemas = new Map<number, z.ZodType>();

/** The error shape whose `code` is one of the codes of `status` (a named component per status). */
function errorSchemaFor(status: number): z.ZodType {
  let schema = errorSchemas.get(status);
  if (!schema) {
    const codes = codesOf(status);
    schema = z
      .object({
        error: z.object({
          code: codes.length ? z.enum(codes as [ErrorCode, ...ErrorCode[]]) : z.string(),
          message: z.string(),
          details: z.unknown().optional(),
        }),
      })
      .meta({ id: `Error${status}`, description: STATUS_TEXT[status] ?? 'Error.' });
    errorSchemas.set(status, schema);
  }
  return schema;
}

/** One documented error answer, in the response form fastify and @fastify/swagger take. */
interface ErrorResponse {
  description: string;
  content: { 'application/json': { schema: z.ZodType<ErrorBody> } };
}

/**
 * The error answers of a route, by status: `errors(400, 404)` plus, for every route behind the
 * token, 401, and for every route, 500 and 503.
 */
export function errors<const S extends number>(...statuses: S[]): Record<S | 500 | 503, ErrorResponse> {
  const answers = {} as Record<number, ErrorResponse>;
  // Every route behind the token counts against its caller's rate limit (src/api/limits.ts).
  const limited: number[] = (statuses as number[]).includes(401) ? [429] : [];
  for (const status of [...statuses, ...limited, 500, 503]) {
    answers[status] = {
      description: `${STATUS_TEXT[status] ?? 'Error.'} Codes: ${codesOf(status).join(', ') || 'BAD_REQUEST'}.`,
      content: { 'application/json': { schema: errorSchemaFor(status) as z.ZodType<ErrorBody> } },
    };
  }
  return answers as Record<S | 500 | 503, ErrorResponse>;
}

/** A JSON answer with its description (the form that gives OpenAPI a description). */
export function ok<S extends z.ZodType>(
  description: string,
  schema: S,
): { description: string; content: { 'application/json': { schema: S } } } {
  return { description, content: { 'application/json': { schema } } };
}

/** An answer in another content type than JSON (metrics, events), in the same response form. */
export function otherContent(
  description: string,
  type: string,
): { description: string; content: Record<string, { schema: z.ZodString }> } {
  return { description, content: { [type]: { schema: z.string() } } };
}

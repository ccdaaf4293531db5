/**
 * How routes check requests and write answers with zod schemas: fastify's validator compiler runs
 * the route's zod schema and turns a failure into the API's usual 400 VALIDATION_FAILED (message
 * "Bad body: ..." or "Bad query: ...", the zod issues in `details`), and the serializer writes JSON
 * as it is: response schemas describe the answers (in /openapi.json and the client's types) but do
 * not filter them on the way out.
 */
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';

const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query', headers: 'headers' };

/**
 * The issues to report: for a union that no form matched (POST /v1/executions takes one execution or
 * a batch), the issues of the form the request came closest to (fewest issues; the first on a tie),
 * rather than zod's bare "Invalid input".
 */
function closestIssues(error: z.core.$ZodError): z.core.$ZodError {
  const [only] = error.issues;
  if (error.issues.length !== 1 || only?.code !== 'invalid_union' || only.path.length > 0) {
    return error;
  }
  const forms = only.errors.filter((issues) => issues.length > 0);
  if (forms.length === 0) {
    return error;
  }
  const closest = forms.reduce((best, issues) => (issues.length < best.length ? issues : best));
  return { ...error, issues: closest } as z.core.$ZodError;
}

/** The error for a request part that fails its schema. */
function failure(part: string, zodError: z.core.$ZodError): ValidationError {
  const error = closestIssues(zodError);
  const fromZod = ValidationError.fromZod(`Bad ${PART_NAMES[part] ?? part}`, error);
  // A bad path parameter is explained by its schema's own message ("Execution numbers are ...").
  return part === 'params'
    ? new ValidationError(error.issues.map((i) => i.message).join('; '), fromZod.details)
    : fromZod;
}

/** fastify's validator compiler for zod schemas. */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const part = httpPart ?? 'body';
  return (data: unknown) => {
    // fastify hands a missing body over as null; zod reports "expected object" for both alike.
    const parsed = schema.safeParse(data ?? (part === 'body' ? undefined : {}));
    return parsed.success ? { value: parsed.data } : { error: failure(part, parsed.error) };
  };
};

/** fastify's serializer compiler: JSON.stringify, whatever the response schema says. */
export const jsonSerializerCompiler: FastifySerializerCompiler<unknown> = () => (data) =>
  JSON.stringify(data);

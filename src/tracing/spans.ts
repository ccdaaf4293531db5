/**
 * The span points sprocd's own code marks (an execution, a `storage.use`, its lock wait and commit)
 * and the trace fields of log lines. This module loads nothing of OpenTelemetry: while tracing is
 * off each helper is one comparison, and ./sdk.ts installs the real ones when tracing starts.
 */

/** Attribute values a span takes (OpenTelemetry's AttributeValue, without importing it). */
export type SpanAttributes = Record<string, string | number | boolean | readonly string[] | undefined>;

/** A span sprocd started: make it the active one for some code, add attributes, end it. */
export interface SpanHandle {
  /** Runs `fn` with this span active: spans started inside are its children, log lines carry it. */
  with<T>(fn: () => T): T;
  /** Adds attributes. */
  set(attributes: SpanAttributes): void;
  /** Ends the span; with `error`, as failed (status ERROR, the exception recorded). */
  end(error?: unknown): void;
}

/** What ./sdk.ts installs while tracing is on. */
export interface SpanHooks {
  start(name: string, attributes: SpanAttributes): SpanHandle;
  logFields(): Record<string, string>;
}

let hooks: SpanHooks | undefined;

/** Installs (or, with undefined, removes) the tracing hooks. @internal */
export function installSpanHooks(next: SpanHooks | undefined): void {
  hooks = next;
}

/** Whether tracing is on: a hot path asks before it builds a span's name and attributes. */
export function tracingOn(): boolean {
  return hooks !== undefined;
}

/** Starts a span that is a child of the active one; undefined while tracing is off. */
export function startSpan(name: string, attributes: SpanAttributes): SpanHandle | undefined {
  return hooks?.start(name, attributes);
}

/**
 * Runs `fn` in a span of its own (ended when `fn` settles, failed when it throws). While tracing is off
 * it returns `fn()` itself: no wrapping promise on the paths that call it (each storage.use, three times).
 */
export function inSpan<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>): Promise<T> {
  if (hooks === undefined) {
    return fn();
  }
  return traced(hooks, name, attributes, fn);
}

async function traced<T>(
  tracing: SpanHooks,
  name: string,
  attributes: SpanAttributes,
  fn: () => Promise<T>,
): Promise<T> {
  const span = tracing.start(name, attributes);
  try {
    const result = await span.with(fn);
    span.end();
    return result;
  } catch (err) {
    span.end(err);
    throw err;
  }
}

/**
 * The trace fields of a log line written now (pino's mixin): trace_id, span_id, trace_flags. A new
 * object each time: pino merges the line's own fields into it.
 */
export function traceLogFields(): Record<string, string> {
  return hooks === undefined ? {} : hooks.logFields();
}

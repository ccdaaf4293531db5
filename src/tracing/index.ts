/**
 * Tracing with OpenTelemetry: spans from an HTTP request through the queue to the execution, across
 * `executeOnServer` children and `storage.use`. Off unless the standard OTEL_* variables ask for
 * traces; then the OpenTelemetry SDK (sdk-node) starts, configured by those variables (exporter,
 * endpoint, protocol, sampler, service name, resource). While off, nothing of the SDK is loaded
 * (only @opentelemetry/api, which is a no-op without a provider), and the span points cost one
 * comparison (./spans.ts).
 *
 * The pieces are the ecosystem's: @fastify/otel opens the request span, BullMQ's `telemetry` option
 * (bullmq-otel) carries the context through the job to the worker, and the SDK's context manager
 * (AsyncLocalStorage) carries it through a procedure's code to its children and its storage.use.
 */
import { trace, type TracerProvider } from '@opentelemetry/api';
import type { Tracing, TracingOptions } from './types.js';

export type { Tracing, TracingOptions } from './types.js';

/**
 * Whether the OTEL_* variables ask for traces: OTEL_TRACES_EXPORTER set to something other than
 * `none`, or an OTLP endpoint set (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
 * and OTEL_SDK_DISABLED not true.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    return false;
  }
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (exporters.length > 0) {
    return !exporters.includes('none');
  }
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/**
 * Whether the process registered a tracer provider already: a program that embeds a node and set up
 * OpenTelemetry itself. (@opentelemetry/api is loaded anyway: prom-client reads the active span.)
 */
export function providerRegistered(): boolean {
  const provider = trace.getTracerProvider() as TracerProvider & {
    getDelegateTracer?: (name: string) => unknown;
  };
  return provider.getDelegateTracer === undefined || provider.getDelegateTracer('sprocd') !== undefined;
}

let started: Promise<Tracing | undefined> | undefined;

/**
 * Starts tracing for this process when process.env asks for it (see {@link tracingRequested}), when
 * the process has a tracer provider already (then sprocd uses it and starts no SDK), or when
 * `options` bring span processors; resolves with undefined, having loaded nothing, otherwise.
 * Once per process: the first call decides, later ones (every node's start) get the same answer.
 */
export function startTracing(options: TracingOptions = {}): Promise<Tracing | undefined> {
  if (started === undefined) {
    const existing = providerRegistered();
    started =
      existing || options.spanProcessors !== undefined || tracingRequested(process.env)
        ? import('./sdk.js').then((sdk) => sdk.createTracing(options, !existing))
        : Promise.resolve(undefined);
  }
  return started;
}

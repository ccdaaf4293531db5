/**
 * Tracing switched on: starts the OpenTelemetry SDK (unless the process has a tracer provider
 * already), installs the span points of ./spans.ts, and makes the fastify plugin and BullMQ's
 * telemetry. Loaded by ./index.ts only when tracing is on.
 */
import { SpanStatusCode, context, trace, type Attributes, type TracerProvider } from '@opentelemetry/api';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BullMQOtel } from 'bullmq-otel';
import type { Tracing, TracingOptions } from './types.js';
import { installSpanHooks, type SpanAttributes, type SpanHandle } from './spans.js';

/** Routes not traced: probes and scrapes (a span every few seconds says nothing), console files. */
function ignored(url: string): boolean {
  return url === '/healthz' || url === '/readyz' || url === '/metrics' || url.startsWith('/console');
}

/** Starts tracing, and the SDK when `ownSdk` (no provider registered yet); see ./index.ts. */
export function createTracing(options: TracingOptions, ownSdk: boolean): Tracing {
  const sdk = ownSdk ? startSdk(options) : undefined;
  const tracer = trace.getTracer('sprocd');
  installSpanHooks({
    start(name, attributes): SpanHandle {
      const span = tracer.startSpan(name, { attributes: defined(attributes) });
      const active = trace.setSpan(context.active(), span);
      return {
        with: (fn) => context.with(active, fn),
        set: (more) => span.setAttributes(defined(more)),
        end(error) {
          if (error !== undefined) {
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: (error as Error)?.message ?? String(error),
            });
          }
          span.end();
        },
      };
    },
    logFields(): Record<string, string> {
      const span = trace.getSpan(context.active());
      if (span === undefined) {
        return {};
      }
      const { traceId, spanId, traceFlags } = span.spanContext();
      return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}` };
    },
  });
  // A span per request and one for its handler; none per hook (the token check, the metrics),
  // which would say little and cost a span each.
  const fastify = new FastifyOtelInstrumentation({
    ignorePaths: ({ url }) => ignored(url),
    instrumentHooks: false,
  });
  const flush = async (): Promise<void> => {
    const provider = delegate() as TracerProvider & { forceFlush?: () => Promise<void> };
    await provider.forceFlush?.();
  };
  return {
    bullmq: new BullMQOtel({ tracerName: 'bullmq' }),
    fastify: fastify.plugin(),
    flush,
    async shutdown() {
      await (sdk ? sdk.shutdown() : flush());
    },
  };
}

/**
 * The SDK, configured by the OTEL_* variables. sprocd sends traces only: its metrics are on
 * GET /metrics and its logs are pino's lines, so the SDK's metric and log exporters (otlp unless
 * told otherwise) stay off.
 */
function startSdk(options: TracingOptions): NodeSDK {
  const sdk = new NodeSDK({
    ...(process.env.OTEL_SERVICE_NAME ? {} : { serviceName: 'sprocd' }),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return sdk;
}

/** The registered tracer provider behind the API's proxy. */
function delegate(): TracerProvider {
  const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  return provider.getDelegate?.() ?? provider;
}

/** The attributes without the undefined ones (OpenTelemetry warns about those). */
function defined(attributes: SpanAttributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) {
      out[key] = typeof value === 'object' ? [...value] : value;
    }
  }
  return out;
}

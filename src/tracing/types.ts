/** What tracing hands the node while it is on (see ./index.ts). */
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type { Telemetry } from 'bullmq';
import type { FastifyPluginCallback } from 'fastify';

/** Tracing while it is on: what the node hands to fastify and BullMQ. */
export interface Tracing {
  /** BullMQ's `telemetry` option (bullmq-otel) for the queue and the workers. */
  readonly bullmq: Telemetry;
  /** The @fastify/otel plugin: registered on the API before any route, it opens a span per request. */
  readonly fastify: FastifyPluginCallback;
  /** Exports the spans ended so far (a stopping node calls it). */
  flush(): Promise<void>;
  /** Flushes, and stops the SDK if sprocd started it (not a provider the embedding program set up). */
  shutdown(): Promise<void>;
}

/** Options of startTracing, for tests: span processors replace the exporters of OTEL_*. */
export interface TracingOptions {
  spanProcessors?: NodeSDKConfiguration['spanProcessors'];
}

/**
 * Prometheus metrics of one node (GET /metrics): how long executions ran, by procedure and outcome
 * (its `_count` counts them), what runs now, and the queue's depth by state, read from Redis at scrape.
 * One histogram observation per execution is all the hot path pays.
 */
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A node's metrics, in a registry of its own (several nodes may share a process in tests). */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly duration: Histogram<'procedure' | 'outcome'>;
  /** Labelled series made once per procedure and outcome. */
  private readonly series = new Map<string, { observe(value: number): void }>();

  constructor(node: string, queueDepth: () => Promise<Record<string, number>>, active: () => number) {
    this.registry.setDefaultLabels({ node });
    collectDefaultMetrics({ register: this.registry, prefix: 'sprocd_' });
    this.duration = new Histogram({
      name: 'sprocd_execution_duration_seconds',
      help: 'How long executions ran on this node, by outcome (completed, failed, aborted, given back).',
      labelNames: ['procedure', 'outcome'],
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [this.registry],
    });
    new Gauge({
      name: 'sprocd_executions_active',
      help: 'Executions running on this node now.',
      registers: [this.registry],
      collect() {
        this.set(active());
      },
    });
    new Gauge({
      name: 'sprocd_queue_executions',
      help: "Executions in the cluster's queue by state (read from Redis when scraped).",
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        for (const [state, count] of Object.entries(await queueDepth())) {
          this.labels(state).set(count);
        }
      },
    });
  }

  /** An execution ended here after `ms`. */
  onEnd(procedure: string, outcome: string, ms: number): void {
    const key = `${outcome}\n${procedure}`;
    let series = this.series.get(key);
    if (!series) {
      series = this.duration.labels(procedure, outcome);
      this.series.set(key, series);
    }
    series.observe(ms / 1000);
  }
}

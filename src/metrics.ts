/**
 * Prometheus metrics of one node (GET /metrics): how long executions ran, by procedure and outcome
 * (its `_count` counts them), what runs now, how long HTTP requests took, by route pattern and status
 * (its `_count` counts them), and the cluster's queue depth by state, read from Redis at scrape.
 * One histogram observation per execution (./stats/hot-histogram.ts) and per request is all the hot
 * path pays.
 *
 * The node's own series carry a `node` label. The queue depth does not: it is the cluster's, the
 * same number whichever node answers. Every node exports it rather than one elected node, because
 * that stays right whichever nodes Prometheus reaches (all of them, one behind a load balancer, the
 * survivors after a node died) with no election to lose or double during a hand-over; the price is
 * that it is aggregated with `max`, not `sum` (`max by (state) (sprocd_queue_executions)`).
 */
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotHistogram } from './stats/hot-histogram.js';

/** The text a scrape answers: both registries, in Prometheus's exposition format. */
export interface MetricsExposition {
  /** The exposition format's content type. */
  readonly contentType: string;
  /** The metrics in that format. */
  metrics(): Promise<string>;
}

/** A node's metrics, in registries of its own (several nodes may share a process in tests). */
export class NodeMetrics {
  /** This node's series, each labelled with the node. */
  private readonly node = new Registry();
  /** The cluster's series, without a node label. */
  private readonly cluster = new Registry();
  private readonly duration: HotHistogram<'procedure', 'outcome'>;
  private readonly requests: Histogram<'method' | 'route' | 'status'>;
  /** Labelled series made once per label set. */
  private readonly series = new Map<string, { observe(value: number): void }>();
  /** What GET /metrics answers. */
  readonly exposition: MetricsExposition;

  constructor(node: string, queueDepth: () => Promise<Record<string, number>>, active: () => number) {
    this.node.setDefaultLabels({ node });
    collectDefaultMetrics({ register: this.node, prefix: 'sprocd_' });
    // Observed once per execution: prom-client's Histogram costs a twentieth of a no-op execution.
    this.duration = new HotHistogram(
      'sprocd_execution_duration_seconds',
      'How long executions ran on this node, by outcome (completed, failed, aborted, given back, put back after a Redis outage, lost: its job lock was gone at a storage commit).',
      ['procedure', 'outcome'],
      [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600],
      this.node,
    );
    this.requests = new Histogram({
      name: 'sprocd_http_request_duration_seconds',
      help: 'How long HTTP requests to this node took, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30],
      registers: [this.node],
    });
    new Gauge({
      name: 'sprocd_executions_active',
      help: 'Executions running on this node now.',
      registers: [this.node],
      collect() {
        this.set(active());
      },
    });
    new Gauge({
      name: 'sprocd_queue_executions',
      help: "Executions in the cluster's queue by state, read from Redis when scraped; the same on every node: aggregate with max, not sum.",
      labelNames: ['state'],
      registers: [this.cluster],
      async collect() {
        for (const [state, count] of Object.entries(await queueDepth())) {
          this.labels(state).set(count);
        }
      },
    });
    const registries = [this.node, this.cluster];
    this.exposition = {
      contentType: this.node.contentType,
      async metrics() {
        const texts = await Promise.all(registries.map((r) => r.metrics()));
        return texts.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('');
      },
    };
  }

  /** An execution ended here after `ms`. */
  onEnd(procedure: string, outcome: string, ms: number): void {
    this.duration.observe(procedure, outcome, ms / 1000);
  }

  /**
   * An HTTP request was answered. `route` is the route's pattern (`/v1/executions/:number`), never
   * the raw URL, so that the series stay few; undefined (no route matched) is counted as `unmatched`.
   */
  onRequest(method: string, route: string | undefined, status: number, ms: number): void {
    const pattern = route ?? 'unmatched';
    const code = String(status);
    this.observe(this.requests, `r\n${method}\n${code}\n${pattern}`, [method, pattern, code], ms / 1000);
  }

  private observe<L extends string>(
    histogram: Histogram<L>,
    key: string,
    labels: string[],
    value: number,
  ): void {
    let series = this.series.get(key);
    if (!series) {
      series = histogram.labels(...labels);
      this.series.set(key, series);
    }
    series.observe(value);
  }
}

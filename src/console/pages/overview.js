/**
 * Overview: the live nodes, queue depth by state, executions/s and latency over the last hour (kept in
 * Redis by the nodes, so every console shows the same history) and recent system events.
 */
import { useMemo, useState } from 'preact/hooks';
import { get } from '../lib/api.js';
import { TimeChart } from '../lib/chart.js';
import { useEvents, useLoad, useNow } from '../lib/live.js';
import { Card, Empty, Problem, Time, count, duration, html } from '../lib/ui.js';

const STATES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'aborted'];

function Nodes({ now }) {
  const { data, error } = useLoad((signal) => get('/nodes', {}, { signal }), [], {
    events: ['system'],
    pollMs: 5000,
    fallbackMs: 5000,
  });
  const items = data?.items ?? [];
  return html`<${Card} title=${`Nodes${data ? ` (${items.length})` : ''}`} id="nodes">
    <${Problem} error=${error} what="The node list" />
    ${
      items.length === 0 && data
        ? html`<${Empty}>No live node.</${Empty}>`
        : html`<table class="table">
          <thead><tr>
            <th>Node</th><th>Version</th><th>Uptime</th><th>Procedures</th>
            <th class="num">Running</th><th class="num">Concurrency</th><th>Last heartbeat</th>
          </tr></thead>
          <tbody>
            ${items.map(
              (n) => html`<tr key=${n.node}>
                <td><strong>${n.node}</strong><div class="sub">${n.host} · pid ${n.pid}</div></td>
                <td>${n.version ?? html`<span class="muted">—</span>`}</td>
                <td title=${n.startedAt}>${duration(now - Date.parse(n.startedAt))}</td>
                <td title=${(n.procedures ?? []).join(', ')}>${(n.procedures ?? []).length}</td>
                <td class="num">${n.active}</td>
                <td class="num">
                  <div class="meter" title=${`${n.active} of ${n.concurrency}`}>
                    <div class="meter-fill" style=${{ width: `${Math.min(100, (100 * n.active) / Math.max(1, n.concurrency))}%` }}></div>
                  </div>
                  ${n.concurrency}
                </td>
                <td><${Time} at=${n.heartbeatAt} now=${now} /></td>
              </tr>`,
            )}
          </tbody>
        </table>`
    }
  </${Card}>`;
}

/** The two charts of the last hour from GET /v1/stats. */
function Charts({ stats }) {
  const step = stats?.stepS ?? 10;
  const rate = useMemo(() => {
    const s = stats?.series ?? [];
    return [
      s.map((p) => p.t / 1000),
      s.map((p) => (p.completed ?? 0) / step),
      s.map((p) => (p.failed ?? 0) / step),
      s.map((p) => (p.aborted ?? 0) / step),
    ];
  }, [stats]);
  const latency = useMemo(() => {
    const s = stats?.series ?? [];
    return [s.map((p) => p.t / 1000), s.map((p) => p.p50Ms ?? null), s.map((p) => p.p99Ms ?? null)];
  }, [stats]);
  return html`<div class="grid-2">
    <${Card} title="Executions per second" class="chart-card">
      <${TimeChart}
        testId="rate"
        data=${rate}
        yUnit="/s"
        series=${[
          { label: 'completed', stroke: '#0f9d76', fill: 'rgba(15,157,118,0.08)' },
          { label: 'failed', stroke: '#dc2626' },
          { label: 'aborted', stroke: '#a16207' },
        ]}
      />
    </${Card}>
    <${Card} title="Latency (run time)" class="chart-card">
      <${TimeChart}
        testId="latency"
        data=${latency}
        yUnit="ms"
        series=${[
          { label: 'p50', stroke: '#2563eb', fill: 'rgba(37,99,235,0.07)' },
          { label: 'p99', stroke: '#7c3aed' },
        ]}
      />
    </${Card}>
  </div>`;
}

function QueueDepth({ counts, error }) {
  return html`<div class="stat-row" id="queue-depth">
    ${STATES.map(
      (
        state,
      ) => html`<a class=${`stat stat-${state}`} href=${`#/executions?state=${state}`} data-count=${state}>
        <div class="stat-label">${state}</div>
        <div class="stat-value">${counts ? count(counts[state] ?? 0) : error ? '—' : '…'}</div>
      </a>`,
    )}
  </div>`;
}

function SystemEvents({ now }) {
  const { data, error } = useLoad((signal) => get('/system-events', { limit: 50 }, { signal }), [], {
    pollMs: 0,
    fallbackMs: 10_000,
  });
  const [live, setLive] = useState([]);
  useEvents(['system'], ({ id, data: event }) =>
    setLive((list) => [{ ...event, _id: id }, ...list].slice(0, 50)),
  );
  const seen = new Set();
  const items = [...live, ...(data?.items ?? [])].filter((e) => {
    const key = `${e.type}|${e.at}|${e.node}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  return html`<${Card} title="Recent system events" id="system-events">
    ${
      error && live.length === 0
        ? html`<${Problem} error=${error} what="The system event history" />`
        : items.length === 0
          ? html`<${Empty}>No system event yet.</${Empty}>`
          : html`<ul class="events">
            ${items.slice(0, 50).map(
              (e) => html`<li key=${`${e.type}${e.at}${e.node}`}>
                <span class=${`event-type event-${e.type.split('.')[0]}`}>${e.type}</span>
                <span class="event-detail">${detailOf(e)}</span>
                <span class="event-node">${e.node}</span>
                <${Time} at=${e.at} now=${now} />
              </li>`,
            )}
          </ul>`
    }
  </${Card}>`;
}

function detailOf(event) {
  const parts = Object.entries(event)
    .filter(([k]) => !['type', 'at', 'node', '_id'].includes(k))
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.join(' · ');
}

/** The Overview page. */
export function OverviewPage() {
  const now = useNow(1000);
  const stats = useLoad((signal) => get('/stats', { minutes: 60 }, { signal }), [], {
    pollMs: 5000,
  });
  return html`<div class="page">
    <header class="page-head"><h1>Overview</h1></header>
    <${QueueDepth} counts=${stats.data?.counts} error=${stats.error} />
    <${Problem} error=${stats.error} what="Queue depth and the execution charts" />
    ${stats.error?.notAvailable ? null : html`<${Charts} stats=${stats.data} />`}
    <${Nodes} now=${now} />
    <${SystemEvents} now=${now} />
  </div>`;
}

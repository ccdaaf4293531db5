/* global location */
/**
 * Procedures: what the nodes run, with params JSON Schema, schedule and its next ticks, counts and
 * failure rate; each procedure's page has a form generated from its schema to execute it.
 */
import { get, post } from '../lib/api.js';
import { useLoad, useNow } from '../lib/live.js';
import { SchemaForm } from '../lib/schema-form.js';
import { Card, Empty, Json, Problem, Time, count, dateTime, html, toast } from '../lib/ui.js';
import { ExecutionTable } from './executions.js';

const LIVE = ['waiting', 'delayed', 'active'];
const ENDED = ['completed', 'failed', 'aborted'];

function rate(p) {
  if (p.failureRate === undefined) {
    return html`<span class="muted">—</span>`;
  }
  if (p.failureRate === null) {
    return html`<span class="muted">no run</span>`;
  }
  const pct = p.failureRate * 100;
  return html`<span class=${pct >= 10 ? 'rate rate-bad' : pct > 0 ? 'rate rate-warn' : 'rate rate-ok'}>
    ${pct === 0 ? '0' : pct < 1 ? pct.toFixed(2) : pct.toFixed(pct < 10 ? 1 : 0)}%</span>`;
}

/** Waiting, delayed and running now (when the node could count them), then those ended in the window. */
function Counts({ counts }) {
  if (!counts) {
    return html`<span class="muted">—</span>`;
  }
  const window = counts.windowMinutes === 60 ? 'the last hour' : `the last ${counts.windowMinutes} min`;
  const chip = (s, title) =>
    html`<span class=${`count count-${s}`} title=${title} data-state=${s}>${count(counts[s])}</span>`;
  const shown = [
    ...LIVE.filter((s) => counts[s]).map((s) => chip(s, `${s} now`)),
    ...ENDED.filter((s) => counts[s]).map((s) => chip(s, `${s} in ${window}`)),
  ];
  return html`<span class="counts">
    ${shown.length > 0 ? shown : html`<span class="muted">none</span>`}
  </span>`;
}

function useProcedures() {
  return useLoad((signal) => get('/procedures', {}, { signal }), [], {
    events: ['execution.state', 'system'],
    throttleMs: 2000,
    pollMs: 30_000,
    fallbackMs: 10_000,
  });
}

/** The list of procedures. */
export function ProceduresPage() {
  const now = useNow(5000);
  const { data, error } = useProcedures();
  const items = data?.items ?? [];
  // Counts are left out while Redis does not answer: no empty column then.
  const withCounts = items.some((p) => p.counts);
  return html`<div class="page">
    <header class="page-head"><h1>Procedures</h1></header>
    <${Card}>
      <${Problem} error=${error} what="The procedure list" />
      ${
        data && items.length === 0
          ? html`<${Empty}>No procedure in jobs/.</${Empty}>`
          : html`<table class="table table-hover" id="procedures-table">
            <thead><tr><th>Procedure</th><th>Schedule</th><th>Next tick</th>${withCounts ? html`<th title="Waiting, delayed and running now; completed, failed and aborted in the last hour">Executions (now · 1 h)</th>` : null}
              <th class="num" title="Failed among the executions that ended in the last hour">Failure rate (1 h)</th><th></th></tr></thead>
            <tbody>
              ${items.map(
                (
                  p,
                ) => html`<tr key=${p.name} onClick=${(e) => e.target.tagName !== 'A' && (location.hash = `#/procedures/${p.name}`)}>
                  <td><a href=${`#/procedures/${p.name}`}><code>${p.name}</code></a>
                    ${p.description ? html`<div class="sub">${p.description}</div>` : null}</td>
                  <td>${p.schedule ? html`<code>${p.schedule.cron}</code>${p.schedule.tz ? html` <span class="muted">${p.schedule.tz}</span>` : null}` : html`<span class="muted">—</span>`}</td>
                  <td>${p.schedule?.next?.[0] ? html`<${Time} at=${p.schedule.next[0]} now=${now} />` : html`<span class="muted">—</span>`}</td>
                  ${withCounts ? html`<td><${Counts} counts=${p.counts} /></td>` : null}
                  <td class="num">${rate(p)}</td>
                  <td class="num"><a class="btn btn-small" href=${`#/procedures/${p.name}`}>Run…</a></td>
                </tr>`,
              )}
            </tbody>
          </table>`
      }
    </${Card}>
  </div>`;
}

/** One procedure: its facts, its schema, the execute form and its latest executions. */
export function ProcedurePage({ name }) {
  const now = useNow(1000);
  const { data, error } = useProcedures();
  const recent = useLoad((signal) => get('/executions', { procedure: name, limit: 10 }, { signal }), [name], {
    events: ['execution.state'],
    match: (m) => m.data?.procedure === name,
    throttleMs: 1000,
    fallbackMs: 3000,
  });
  const p = data?.items.find((item) => item.name === name);
  const execute = async (params, options) => {
    const view = await post('/executions', {
      procedure: name,
      ...(params === undefined ? {} : { params }),
      ...options,
    });
    toast(`Started #${view.number}.`, 'success');
    location.hash = `#/executions/${view.number}`;
  };
  const head = html`<header class="page-head"><div>
    <div class="crumbs"><a href="#/procedures">Procedures</a> /</div>
    <h1><code>${name}</code></h1>
  </div></header>`;
  if (!p) {
    return html`<div class="page">${head}
      ${error ? html`<${Problem} error=${error} />` : data ? html`<${Empty}>No procedure named ${name}.</${Empty}>` : html`<div class="loading">Loading…</div>`}
    </div>`;
  }
  return html`<div class="page" data-procedure=${name}>
    ${head}
    ${p.description ? html`<p class="lead">${p.description}</p>` : null}
    <div class="grid-2 grid-top">
      <${Card} title="Execute" id="execute">
        <${SchemaForm} key=${name} schema=${p.params ?? {}} onSubmit=${execute} />
      </${Card}>
      <div class="stack-cards">
        <${Card} title="Facts">
          <dl class="facts">
            ${p.counts ? html`<dt>Executions</dt><dd><${Counts} counts=${p.counts} /> <span class="muted">now · ended in the last hour</span></dd>` : null}
            <dt>Failure rate</dt><dd>${rate(p)} <span class="muted">last hour</span></dd>
            ${p.attempts ? html`<dt>Attempts</dt><dd>${p.attempts}</dd>` : null}
            ${p.timeoutMs ? html`<dt>Time-out</dt><dd>${p.timeoutMs} ms</dd>` : null}
            <dt>Schedule</dt><dd>${p.schedule ? html`<code>${p.schedule.cron}</code> ${p.schedule.tz ?? ''}` : html`<span class="muted">none</span>`}</dd>
          </dl>
          ${
            p.schedule?.next?.length
              ? html`<h3 class="mini">Next ticks</h3><ul class="ticks">
                ${p.schedule.next.map((t) => html`<li>${dateTime(t)} <span class="muted">(<${Time} at=${t} now=${now} />)</span></li>`)}
              </ul>`
              : null
          }
        </${Card}>
        <${Card} title="Params schema" id="schema">
          ${p.params ? html`<${Json} value=${p.params} open=${3} />` : html`<span class="muted">Any JSON (no schema).</span>`}
        </${Card}>
      </div>
    </div>
    <${Card} title="Latest executions" actions=${html`<a href=${`#/executions?procedure=${encodeURIComponent(name)}`}>All →</a>`}>
      <${Problem} error=${recent.error} />
      <${ExecutionTable} items=${recent.data?.items ?? (recent.error ? [] : undefined)} now=${now} empty="Never run yet." />
    </${Card}>
  </div>`;
}

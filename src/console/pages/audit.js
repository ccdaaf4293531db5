/**
 * The audit trail: who executed, aborted, retried, removed, backed up, restored or edited what, newest
 * first, by caller and action (GET /v1/audit; the token needs the admin scope).
 */
import { useState } from 'preact/hooks';
import { get } from '../lib/api.js';
import { useLoad, useNow } from '../lib/live.js';
import { Card, Empty, Problem, Time, html } from '../lib/ui.js';

const ACTIONS = [
  'execute',
  'abort',
  'wake',
  'retry',
  'remove',
  'bulk',
  'backup',
  'restore',
  'storage.write',
  'worker.call',
  'worker.kill',
  'signal.trigger',
];

/** What an entry acted on: executions link to their page, the rest reads as `key=value`. */
function Details({ details }) {
  if (!details) {
    return null;
  }
  return html`<span class="audit-details">
    ${Object.entries(details).map(([key, value]) =>
      (key === 'execution' || key === 'retry') && typeof value === 'number'
        ? html`<span class="audit-detail">${key} <a href=${`#/executions/${value}`}>#${value}</a></span> `
        : key === 'key' && typeof value === 'string'
          ? html`<span class="audit-detail">key <a href=${`#/session?key=${encodeURIComponent(value)}`}>${value}</a></span> `
          : html`<span class="audit-detail">${key} <code>${typeof value === 'string' ? value : JSON.stringify(value)}</code></span> `,
    )}
  </span>`;
}

function Filters({ filter, onChange }) {
  const [caller, setCaller] = useState(filter.caller ?? '');
  return html`<form class="filters" aria-label="Filters"
    onSubmit=${(e) => (e.preventDefault(), onChange({ ...filter, caller: caller.trim() || undefined }))}>
    <label>Caller
      <input name="caller" type="search" placeholder="caller name" value=${caller}
        onInput=${(e) => setCaller(e.currentTarget.value)} />
    </label>
    <label>Action
      <select name="action" value=${filter.action ?? ''}
        onChange=${(e) => onChange({ ...filter, action: e.currentTarget.value || undefined })}>
        <option value="">any</option>
        ${ACTIONS.map((a) => html`<option value=${a}>${a}</option>`)}
      </select>
    </label>
    <div class="filter-buttons"><button class="btn btn-primary" type="submit">Apply</button></div>
  </form>`;
}

/** The page. */
export function AuditPage() {
  const now = useNow(10_000);
  const [filter, setFilter] = useState({});
  // Cursors of the pages shown before this one (the first page has none).
  const [stack, setStack] = useState([]);
  const before = stack.at(-1);
  const trail = useLoad(
    (signal) => get('/audit', { ...filter, before, limit: 50 }, { signal }),
    [filter.caller, filter.action, before],
    { pollMs: before ? 0 : 10_000 },
  );
  const items = trail.data?.items;
  return html`<div class="page">
    <header class="page-head"><h1>Audit trail</h1></header>
    <${Filters} filter=${filter} onChange=${(next) => (setStack([]), setFilter(next))} />
    <${Card}>
      <${Problem} error=${trail.error} what="The audit trail" />
      ${
        !items
          ? trail.error
            ? null
            : html`<div class="loading">Loading…</div>`
          : items.length === 0
            ? html`<${Empty}>No entry${filter.caller || filter.action ? ' matches' : ' yet'}.</${Empty}>`
            : html`<table class="table" id="audit-table">
                <thead><tr><th>When</th><th>Caller</th><th>Action</th><th class="num">Status</th><th>Node</th><th>Details</th></tr></thead>
                <tbody>
                  ${items.map(
                    (e) => html`<tr key=${e.id} data-action=${e.action}>
                      <td><${Time} at=${e.at} now=${now} /></td>
                      <td><strong>${e.caller}</strong>${e.ip ? html`<div class="muted">${e.ip}</div>` : null}</td>
                      <td><code>${e.action}</code></td>
                      <td class=${`num ${e.status >= 400 ? 'rate-bad' : ''}`}>${e.status}</td>
                      <td>${e.node}</td>
                      <td><${Details} details=${e.details} /></td>
                    </tr>`,
                  )}
                </tbody>
              </table>`
      }
      <footer class="pager">
        <span class="muted">${items ? `${items.length} shown${stack.length ? ` · page ${stack.length + 1}` : ''}` : ''}</span>
        <div>
          <button class="btn" disabled=${stack.length === 0} onClick=${() => setStack(stack.slice(0, -1))}>← Newer</button>
          <button class="btn" disabled=${!trail.data?.nextCursor}
            onClick=${() => setStack([...stack, trail.data.nextCursor])}>Older →</button>
        </div>
      </footer>
    </${Card}>
  </div>`;
}

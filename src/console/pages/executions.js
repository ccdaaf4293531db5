/* global location, URLSearchParams */
/**
 * Executions: the list with its filters (state, procedure, name, time range) in the URL hash, cursor
 * paging, live refresh, and bulk abort/retry/remove by filter after a confirmation that states the count.
 */
import { useRef, useState } from 'preact/hooks';
import { get, post } from '../lib/api.js';
import { useLoad, useNow } from '../lib/live.js';
import { changesPage } from '../lib/visible.js';
import {
  Badge,
  Card,
  Empty,
  Problem,
  Progress,
  Time,
  count,
  duration,
  html,
  toast,
  useConfirm,
} from '../lib/ui.js';

const STATES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'aborted'];
const FILTERS = ['state', 'procedure', 'name', 'from', 'to'];
const PAGE = 50;

/** The filters of the hash query, without empty ones. */
function filterOf(query) {
  return Object.fromEntries(FILTERS.filter((k) => query[k]).map((k) => [k, query[k]]));
}

/** datetime-local value ↔ ISO. */
const toIso = (local) => (local ? new Date(local).toISOString() : '');
const toLocal = (iso) => {
  if (!iso) {
    return '';
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? ''
    : new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

function setQuery(filter) {
  const params = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
  const search = params.toString();
  location.hash = `#/executions${search ? `?${search}` : ''}`;
}

function Filters({ filter, procedures }) {
  const [draft, setDraft] = useState(filter);
  const field = (key) => ({
    value: draft[key] ?? '',
    onInput: (e) => setDraft({ ...draft, [key]: e.currentTarget.value }),
  });
  const apply = (e) => {
    e.preventDefault();
    setQuery(draft);
  };
  return html`<form class="filters" onSubmit=${apply} aria-label="Filters">
    <label>State
      <select name="state" value=${draft.state ?? ''}
        onChange=${(e) => setQuery({ ...draft, state: e.currentTarget.value })}>
        <option value="">any</option>
        ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </label>
    <label>Procedure
      <select name="procedure" value=${draft.procedure ?? ''}
        onChange=${(e) => setQuery({ ...draft, procedure: e.currentTarget.value })}>
        <option value="">any</option>
        ${(procedures ?? []).map((p) => html`<option value=${p.name}>${p.name}</option>`)}
        ${
          draft.procedure && !(procedures ?? []).some((p) => p.name === draft.procedure)
            ? html`<option value=${draft.procedure}>${draft.procedure}</option>`
            : null
        }
      </select>
    </label>
    <label>Name <input name="name" type="search" placeholder="process name" ...${field('name')} /></label>
    <label>From
      <input name="from" type="datetime-local" value=${toLocal(draft.from)}
        onInput=${(e) => setDraft({ ...draft, from: toIso(e.currentTarget.value) })} />
    </label>
    <label>To
      <input name="to" type="datetime-local" value=${toLocal(draft.to)}
        onInput=${(e) => setDraft({ ...draft, to: toIso(e.currentTarget.value) })} />
    </label>
    <div class="filter-buttons">
      <button class="btn btn-primary" type="submit">Apply</button>
      ${
        Object.keys(filter).length
          ? html`<button class="btn" type="button" onClick=${() => (setDraft({}), setQuery({}))}>Clear</button>`
          : null
      }
    </div>
  </form>`;
}

/** The table of executions (also used for an execution's children). */
export function ExecutionTable({ items, now, empty = 'No execution matches.' }) {
  if (!items) {
    return html`<div class="loading">Loading…</div>`;
  }
  if (items.length === 0) {
    return html`<${Empty}>${empty}</${Empty}>`;
  }
  return html`<table class="table table-hover" id="executions-table">
    <thead><tr>
      <th class="num">#</th><th>Procedure</th><th>Name</th><th>State</th><th class="num">Attempt</th>
      <th>Progress</th><th>Created</th><th class="num">Run time</th>
    </tr></thead>
    <tbody>
      ${items.map((e) => {
        const end = e.finishedAt ? Date.parse(e.finishedAt) : e.state === 'active' ? now : undefined;
        return html`<tr key=${e.number} data-number=${e.number} data-state=${e.state}
          onClick=${(ev) => ev.target.tagName !== 'A' && (location.hash = `#/executions/${e.number}`)}>
          <td class="num"><a href=${`#/executions/${e.number}`}>${e.number}</a></td>
          <td><code>${e.procedure}</code></td>
          <td class="ellipsis" title=${e.name}>${e.name || html`<span class="muted">—</span>`}</td>
          <td><${Badge} state=${e.state} /></td>
          <td class="num">${e.attempt}${e.attempts ? html`<span class="muted">/${e.attempts}</span>` : null}</td>
          <td><${Progress} value=${e.progress} compact /></td>
          <td><${Time} at=${e.createdAt} now=${now} /></td>
          <td class="num">${e.startedAt && end ? duration(end - Date.parse(e.startedAt)) : html`<span class="muted">—</span>`}</td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

const ACTIONS = {
  abort: { verb: 'Abort', applies: 'not finished yet', danger: true },
  retry: { verb: 'Retry', applies: 'failed or aborted', danger: false },
  remove: { verb: 'Remove', applies: 'finished', danger: true },
};

function describe(filter) {
  const parts = Object.entries(filter).map(([k, v]) => `${k} = ${v}`);
  return parts.length ? parts.join(', ') : 'no filter (all executions)';
}

/** The Executions page. */
export function ExecutionsPage({ query }) {
  const filter = filterOf(query);
  const key = JSON.stringify(filter);
  const [cursors, setCursors] = useState({ key, stack: [] });
  const stack = cursors.key === key ? cursors.stack : [];
  const cursor = stack[stack.length - 1];
  const now = useNow(1000);
  const [dialog, confirm] = useConfirm();
  const procedures = useLoad((signal) => get('/procedures', {}, { signal }), [], {});
  const shown = useRef();
  const list = useLoad(
    (signal) => get('/executions', { ...filter, cursor, limit: PAGE }, { signal }),
    [key, cursor],
    {
      events: ['execution.state', 'execution.removed'],
      match: (message) => changesPage(message, filter, !cursor, shown.current),
      pollMs: 15_000,
      throttleMs: 1000,
    },
  );
  shown.current = list.data?.items;

  const bulk = async (action) => {
    const a = ACTIONS[action];
    try {
      const { matched } = await post('/executions/bulk', { action, filter, dryRun: true });
      if (matched === 0) {
        toast(`No execution matching ${describe(filter)} is ${a.applies}.`);
        return;
      }
      const ok = await confirm({
        title: `${a.verb} ${count(matched)} execution${matched === 1 ? '' : 's'}?`,
        body: html`<p>This will ${action} <strong data-bulk-count=${matched}>${count(matched)}</strong>
          execution${matched === 1 ? '' : 's'} matching <em>${describe(filter)}</em> that ${matched === 1 ? 'is' : 'are'}
          ${a.applies}.</p>`,
        action: `${a.verb} ${count(matched)}`,
        danger: a.danger,
      });
      if (!ok) {
        return;
      }
      const done = await post('/executions/bulk', { action, filter });
      toast(
        `${a.verb}: ${count(done.done)} done${done.skipped ? `, ${count(done.skipped)} skipped` : ''}.`,
        'success',
      );
      void list.reload();
    } catch (err) {
      toast(err.notAvailable ? 'Bulk actions are not available on this node.' : err.message, 'error');
    }
  };

  return html`<div class="page">
    <header class="page-head">
      <h1>Executions</h1>
      <div class="page-actions">
        ${Object.keys(ACTIONS).map(
          (action) => html`<button class=${`btn ${ACTIONS[action].danger ? 'btn-danger-outline' : ''}`}
            onClick=${() => bulk(action)} title=${`${ACTIONS[action].verb} every matching execution that is ${ACTIONS[action].applies}`}>
            ${ACTIONS[action].verb} all…
          </button>`,
        )}
      </div>
    </header>
    <${Filters} key=${key} filter=${filter} procedures=${procedures.data?.items} />
    <${Card}>
      <${Problem} error=${list.error} what="The execution list" />
      <${ExecutionTable} items=${list.data?.items ?? (list.error ? [] : undefined)} now=${now} />
      <footer class="pager">
        <span class="muted">${list.data ? `${list.data.items.length} shown${stack.length ? ` · page ${stack.length + 1}` : ''}` : ''}</span>
        <div>
          <button class="btn" disabled=${stack.length === 0}
            onClick=${() => setCursors({ key, stack: stack.slice(0, -1) })}>← Newer</button>
          <button class="btn" disabled=${!list.data?.nextCursor}
            onClick=${() => setCursors({ key, stack: [...stack, list.data.nextCursor] })}>Older →</button>
        </div>
      </footer>
    </${Card}>
    ${dialog}
  </div>`;
}

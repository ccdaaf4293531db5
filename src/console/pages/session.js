/* global location */
/**
 * Session: the stored-procedure session's id and info, its storage entries with their size, and for each
 * key the lock holder, its lease and the queue of waiters. Editing an entry goes through `use` on the
 * node (locked and fenced like any writer), after a confirmation.
 */
import { useState } from 'preact/hooks';
import { api, get } from '../lib/api.js';
import { useLoad, useNow } from '../lib/live.js';
import {
  Card,
  Empty,
  Json,
  Problem,
  Time,
  bytes,
  dateTime,
  duration,
  html,
  jsonSize,
  toast,
  useConfirm,
} from '../lib/ui.js';

/** Entries with locks from /session/entries; without that route, sizes from the storage snapshot. */
async function loadEntries(signal) {
  try {
    return { ...(await get('/session/entries', {}, { signal })), locks: true };
  } catch (err) {
    if (!err.notAvailable) {
      throw err;
    }
    const snapshot = await get('/session/storage', {}, { signal });
    const items = Object.keys(snapshot)
      .sort()
      .map((key) => ({ key, size: jsonSize(snapshot[key]) }));
    return { items, locks: false };
  }
}

function select(key) {
  location.hash = key ? `#/session?key=${encodeURIComponent(key)}` : '#/session';
}

/** A lock holder or waiter: its label (which names its node), linked to its execution when it is one. */
function owner(o) {
  if (!o) {
    return '—';
  }
  const label = o.node && !o.owner.includes(o.node) ? `${o.owner} on ${o.node}` : o.owner;
  return o.execution ? html`<a href=${`#/executions/${o.execution}`}>${label}</a>` : label;
}

function Lease({ until, now }) {
  if (!until) {
    return html`<span class="muted">—</span>`;
  }
  const left = Date.parse(until) - now;
  return html`<span class=${left < 2000 ? 'lease lease-low' : 'lease'} title=${dateTime(until)}>
    ${left > 0 ? `${duration(left)} left` : 'expired'}</span>`;
}

function Info() {
  const { data, error } = useLoad((signal) => get('/session', {}, { signal }), [], { pollMs: 30_000 });
  return html`<${Card} title="Session" id="session-info">
    <${Problem} error=${error} />
    ${
      data
        ? html`<dl class="facts">
          <dt>Id</dt><dd><code>${data.id}</code></dd>
          <dt>Type</dt><dd>${data.info?.type}</dd>
          <dt>User</dt><dd>${data.info?.userName}</dd>
          <dt>Machine</dt><dd>${data.info?.machineName} <span class="muted">(${data.info?.hostType})</span></dd>
          <dt>Created</dt><dd>${dateTime(data.info?.creationDateTime)}</dd>
          <dt>State</dt><dd>${data.info?.state}</dd>
          <dt>Privileges</dt><dd>${(data.privileges ?? []).join(', ')}</dd>
        </dl>`
        : null
    }
  </${Card}>`;
}

/** Who holds the key's lock, its lease, and the queue of waiters in order. */
function LockBox({ lock, now }) {
  if (!lock) {
    return html`<div class="lock-box" id="lock">
      <span class="badge badge-completed">free</span> <span class="muted">No one holds this key.</span>
    </div>`;
  }
  const waiters = lock.waiters ?? [];
  return html`<div class="lock-box" id="lock">
    <div class="lock-line">
      <span class="badge badge-active">locked</span>
      <span>by <strong data-holder>${owner(lock.holder)}</strong></span>
      <span class="muted">lease <${Lease} until=${lock.leaseUntil} now=${now} /></span>
      ${lock.since ? html`<span class="muted">held since <${Time} at=${lock.since} now=${now} /></span>` : null}
    </div>
    <div class="lock-queue">
      <span class="muted">${waiters.length ? `Waiting, in order (${waiters.length}):` : 'No waiter.'}</span>
      ${
        waiters.length
          ? html`<ol class="waiters" aria-label="Waiters">
            ${waiters.map((w) => html`<li>${owner(w)}</li>`)}
          </ol>`
          : null
      }
    </div>
  </div>`;
}

function Entry({ entryKey, lock, locks, now, onChanged }) {
  const [editing, setEditing] = useState();
  const [problem, setProblem] = useState();
  const [dialog, confirm] = useConfirm();
  const { data, error, reload } = useLoad(
    (signal) =>
      get(`/session/storage/${encodeURIComponent(entryKey)}`, {}, { signal }).catch((err) => {
        if (err.code === 'STORAGE_ENTRY_NOT_FOUND') {
          return null;
        }
        throw err;
      }),
    [entryKey],
    { pollMs: 3000 },
  );
  const save = async () => {
    let value;
    try {
      value = JSON.parse(editing);
    } catch (err) {
      setProblem(`Not JSON: ${err.message}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      setProblem('A storage entry is a JSON object.');
      return;
    }
    const ok = await confirm({
      title: `Write entry "${entryKey}"?`,
      body: html`<p>The node takes the lock on <code>${entryKey}</code> like any <code>use</code>, waits behind
        its holder and waiters, and writes only if the entry is still the one you edited.</p>`,
      action: 'Write entry',
      danger: true,
    });
    if (!ok) {
      return;
    }
    try {
      await api('PUT', `/session/storage/${encodeURIComponent(entryKey)}`, {
        body: { value, expect: data ?? null },
      });
      toast(`Entry "${entryKey}" written.`, 'success');
      setEditing(undefined);
      setProblem(undefined);
      void reload();
      onChanged();
    } catch (err) {
      setProblem(
        err.notAvailable ? 'Editing entries is not available on this node.' : `${err.code}: ${err.message}`,
      );
    }
  };
  return html`<${Card} title=${html`Entry <code>${entryKey}</code>`} id="entry"
    actions=${
      editing === undefined
        ? html`<button class="btn btn-small" onClick=${() => setEditing(JSON.stringify(data ?? {}, null, 2))}>Edit</button>`
        : null
    }>
    ${locks ? html`<${LockBox} lock=${lock} now=${now} />` : null}
    <${Problem} error=${error} />
    ${
      editing !== undefined
        ? html`<div class="field">
          <textarea class="mono" rows="14" aria-label="Entry JSON" value=${editing}
            onInput=${(e) => setEditing(e.currentTarget.value)}></textarea>
          ${problem ? html`<div class="notice notice-error" role="alert">${problem}</div>` : null}
          <div class="form-actions">
            <button class="btn btn-primary" onClick=${save}>Save…</button>
            <button class="btn" onClick=${() => (setEditing(undefined), setProblem(undefined))}>Cancel</button>
          </div>
        </div>`
        : data === null
          ? html`<${Empty}>No entry stored under this key.</${Empty}>`
          : data !== undefined
            ? html`<${Json} value=${data} open=${3} />`
            : null
    }
    ${dialog}
  </${Card}>`;
}

/** The Session page; `selected` is the key shown on the right. */
export function SessionPage({ selected }) {
  const now = useNow(500);
  const entries = useLoad(loadEntries, [], { pollMs: 1500 });
  const items = entries.data?.items ?? [];
  const chosen = items.find((i) => i.key === selected);
  return html`<div class="page">
    <header class="page-head"><h1>Session</h1></header>
    <div class="grid-session">
      <div class="stack-cards">
        <${Info} />
        <${Card} title=${`Storage${entries.data ? ` (${items.length})` : ''}`} id="storage">
          <${Problem} error=${entries.error} what="The storage view" />
          ${
            entries.data && !entries.data.locks
              ? html`<div class="notice notice-muted" data-problem="not-available">Locks are not available on this node.</div>`
              : null
          }
          ${
            entries.data && items.length === 0
              ? html`<${Empty}>The storage is empty.</${Empty}>`
              : html`<table class="table table-hover" id="entries-table">
                <thead><tr><th>Key</th><th class="num">Size</th><th>Lock holder</th><th>Lease</th><th class="num">Waiters</th></tr></thead>
                <tbody>
                  ${items.map(
                    (
                      i,
                    ) => html`<tr key=${i.key} data-key=${i.key} class=${i.key === selected ? 'selected' : ''}
                      onClick=${() => select(i.key)}>
                      <td><code>${i.key}</code></td>
                      <td class="num">${i.size === null ? html`<span class="muted">none</span>` : bytes(i.size)}</td>
                      <td>${i.lock ? owner(i.lock.holder) : html`<span class="muted">—</span>`}</td>
                      <td>${i.lock ? html`<${Lease} until=${i.lock.leaseUntil} now=${now} />` : html`<span class="muted">—</span>`}</td>
                      <td class="num">${i.lock?.waiters?.length ?? html`<span class="muted">0</span>`}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`
          }
        </${Card}>
      </div>
      <div>
        ${
          selected
            ? html`<${Entry} key=${selected} entryKey=${selected} lock=${chosen?.lock} locks=${entries.data?.locks}
              now=${now} onChanged=${entries.reload} />`
            : html`<${Card} title="Entry"><${Empty}>Choose a key to see its value and its lock.</${Empty}></${Card}>`
        }
      </div>
    </div>
  </div>`;
}

/* global setTimeout, TextEncoder */
/** Building blocks every page shares: markup, formatting, badges, JSON viewer, dialogs, toasts. */
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

/** Tagged-template markup bound to preact (no build step). */
export const html = htm.bind(h);

const pad = (n) => String(n).padStart(2, '0');

/** "2024-05-01 14:03:07" in the browser's time zone. */
export function dateTime(iso) {
  if (!iso) {
    return '—';
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) {
    return String(iso);
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}`;
}

/** "850 ms", "12.3 s", "4 min 05 s", "3 h 12 min", "2 d 4 h". */
export function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) {
    return '—';
  }
  const abs = Math.abs(ms);
  if (abs < 1000) {
    return `${Math.round(ms)} ms`;
  }
  if (abs < 60_000) {
    return `${(ms / 1000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  }
  const s = Math.round(abs / 1000);
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  }
  if (s < 86_400) {
    return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  }
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "12 s ago" / "in 3 min" relative to `now`. */
export function relative(iso, now = Date.now()) {
  if (!iso) {
    return '—';
  }
  const diff = Date.parse(iso) - now;
  if (Number.isNaN(diff)) {
    return String(iso);
  }
  if (Math.abs(diff) < 1000) {
    return 'now';
  }
  return diff < 0 ? `${duration(-diff)} ago` : `in ${duration(diff)}`;
}

/** "1.2 KB". */
export function bytes(n) {
  if (n === undefined || n === null) {
    return '—';
  }
  if (n < 1024) {
    return `${n} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Size of a value as stored (UTF-8 JSON bytes). */
export function jsonSize(value) {
  return new TextEncoder().encode(JSON.stringify(value ?? null)).length;
}

/** 12345 → "12,345". */
export const count = (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US'));

/** A time with its relative form; the exact time shows on hover. */
export function Time({ at, now }) {
  if (!at) {
    return html`<span class="muted">—</span>`;
  }
  return html`<time datetime=${at} title=${dateTime(at)}>${relative(at, now)}</time>`;
}

/** The coloured state of an execution (or any status word). */
export function Badge({ state, label }) {
  return html`<span class=${`badge badge-${state}`} data-state=${state}>${label ?? state}</span>`;
}

/** A progress bar for a number 0-100; an object progress shows as compact JSON. */
export function Progress({ value, compact }) {
  if (value === undefined || value === null) {
    return compact ? html`<span class="muted">—</span>` : null;
  }
  if (typeof value === 'number') {
    const pct = Math.max(0, Math.min(100, value));
    return html`<div class=${compact ? 'progress compact' : 'progress'} role="progressbar"
      aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}>
      <div class="progress-fill" style=${{ width: `${pct}%` }}></div>
      <span class="progress-label">${Math.round(pct)}%</span>
    </div>`;
  }
  return html`<code class="inline-json">${JSON.stringify(value)}</code>`;
}

/** A collapsible, coloured view of a JSON value. */
export function Json({ value, open = 2 }) {
  return html`<div class="json">${jsonNode(value, open, 0)}</div>`;
}

/** One value; `label` is its key (or nothing in an array), kept on the line of an opening bracket. */
function jsonNode(value, open, depth, label) {
  const key = label === undefined ? null : html`<span class="j-key">${JSON.stringify(label)}</span>: `;
  if (value === null || typeof value !== 'object') {
    const kind = value === null ? 'null' : typeof value;
    const text = kind === 'string' ? JSON.stringify(value) : String(value);
    return html`<div class="j-row">${key}<span class=${`j-${kind}`}>${text}</span></div>`;
  }
  const entries = Array.isArray(value) ? value.map((v) => [undefined, v]) : Object.entries(value);
  const [l, r] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) {
    return html`<div class="j-row">${key}<span class="j-punct">${l}${r}</span></div>`;
  }
  const noun = Array.isArray(value) ? 'item' : 'key';
  const summary = `${entries.length} ${noun}${entries.length === 1 ? '' : 's'}`;
  return html`<details open=${depth < open} class="j-node">
    <summary>${key}<span class="j-punct">${l}</span><span class="j-count">${summary}</span
      ><span class="j-close j-punct">${r}</span></summary>
    <div class="j-children">${entries.map(([k, v]) => jsonNode(v, open, depth + 1, k))}</div>
    <span class="j-punct">${r}</span>
  </details>`;
}

/** A card with a title bar. */
export function Card({ title, actions, children, class: extra, id }) {
  return html`<section class=${`card ${extra ?? ''}`} id=${id}>
    ${
      title || actions
        ? html`<header class="card-head"><h2>${title}</h2><div class="card-actions">${actions}</div></header>`
        : null
    }
    <div class="card-body">${children}</div>
  </section>`;
}

/** What a page shows when the node does not have the route it needs yet, or a call failed. */
export function Problem({ error, what }) {
  if (!error) {
    return null;
  }
  if (error.notAvailable) {
    return html`<div class="notice notice-muted" data-problem="not-available">
      ${what ?? 'This view'}: not available on this node (its API has no route for it yet).
    </div>`;
  }
  return html`<div class="notice notice-error" role="alert">
    <strong>${error.code ?? 'Error'}</strong> ${error.message}
  </div>`;
}

/** An empty table state. */
export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

let toastSink;

/** Shows a short message at the bottom right. */
export function toast(message, kind = 'info') {
  toastSink?.({ message, kind, id: Math.random() });
}

/** The place toasts appear; rendered once by the app. */
export function Toasts() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    toastSink = (item) => {
      setItems((list) => [...list, item]);
      setTimeout(() => setItems((list) => list.filter((i) => i !== item)), 5000);
    };
    return () => (toastSink = undefined);
  }, []);
  return html`<div class="toasts" aria-live="polite">
    ${items.map(
      (t) =>
        html`<div key=${t.id} class=${`toast toast-${t.kind}`} role="status" title="Click to dismiss"
          onClick=${() => setItems((list) => list.filter((i) => i !== t))}>${t.message}</div>`,
    )}
  </div>`;
}

/**
 * A confirmation dialog: `const [dialog, confirm] = useConfirm()`, render `dialog`, then
 * `await confirm({ title, body, action, danger })` resolves true when the operator confirms.
 */
export function useConfirm() {
  const [ask, setAsk] = useState();
  const button = useRef();
  useEffect(() => {
    button.current?.focus();
  }, [ask]);
  const confirm = (options) => new Promise((resolve) => setAsk({ ...options, resolve }));
  const close = (answer) => {
    ask?.resolve(answer);
    setAsk(undefined);
  };
  const dialog = ask
    ? html`<div class="overlay" onClick=${(e) => e.target === e.currentTarget && close(false)}>
        <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title"
          onKeyDown=${(e) => e.key === 'Escape' && close(false)}>
          <h3 id="dialog-title">${ask.title}</h3>
          <div class="dialog-body">${ask.body}</div>
          <div class="dialog-actions">
            <button class="btn" onClick=${() => close(false)}>Cancel</button>
            <button ref=${button} class=${ask.danger ? 'btn btn-danger' : 'btn btn-primary'}
              onClick=${() => close(true)}>${ask.action ?? 'Confirm'}</button>
          </div>
        </div>
      </div>`
    : null;
  return [dialog, confirm];
}

/** The JSON of an optional text field: undefined when left empty; throws a SyntaxError when not JSON. */
export function optionalJson(text) {
  return text.trim() === '' ? undefined : JSON.parse(text);
}

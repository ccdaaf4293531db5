/**
 * 4D's signals and semaphores from the console: look a signal up by its id (ctx.newSignal().id) and
 * trigger it after a confirmation, and test a semaphore by name. Both are read again every 2 s while
 * shown, since a procedure may trigger the signal or take the semaphore meanwhile.
 */
import { useState } from 'preact/hooks';
import { get, post } from '../lib/api.js';
import { useLoad } from '../lib/live.js';
import { Badge, Card, Json, Problem, html, optionalJson, toast, useConfirm } from '../lib/ui.js';

/** A lookup box: an input and a button; `onLook` gets the trimmed value. */
function Lookup({ id, label, placeholder, onLook }) {
  const [draft, setDraft] = useState('');
  return html`<form class="lookup" aria-label=${label}
    onSubmit=${(e) => (e.preventDefault(), onLook(draft.trim()))}>
    <label for=${id}>${label}</label>
    <div class="lookup-row">
      <input id=${id} value=${draft} placeholder=${placeholder} onInput=${(e) => setDraft(e.currentTarget.value)} />
      <button class="btn" type="submit">Look up</button>
    </div>
  </form>`;
}

/** `path` read every 2 s while `key` is set (undefined while not). */
function useLookup(key, path) {
  return useLoad(
    (signal) =>
      key ? get(`${path}/${encodeURIComponent(key)}`, {}, { signal }) : Promise.resolve(undefined),
    [key],
    { pollMs: key ? 2000 : 0 },
  );
}

function Signal() {
  const [id, setId] = useState('');
  const [result, setResult] = useState('');
  const [dialog, confirm] = useConfirm();
  const { data: s, error, reload } = useLookup(id, '/signals');
  const trigger = async () => {
    let value;
    try {
      value = optionalJson(result);
    } catch (err) {
      toast(`The result is not JSON: ${err.message}`, 'error');
      return;
    }
    const ok = await confirm({
      title: `Trigger signal "${s.description || s.id}"?`,
      body: html`<p>Every execution waiting on it, on any node, wakes with the result
        ${value === undefined ? html`<code>null</code>` : html`<code>${JSON.stringify(value)}</code>`}.
        A signal triggers once: this cannot be undone.</p>`,
      action: 'Trigger',
      danger: true,
    });
    if (!ok) {
      return;
    }
    try {
      const answer = await post(
        `/signals/${encodeURIComponent(s.id)}/trigger`,
        value === undefined ? {} : { result: value },
      );
      toast(
        answer.triggered ? 'Signal triggered.' : 'It had been triggered already: its first result stays.',
        answer.triggered ? 'success' : 'info',
      );
      void reload();
    } catch (err) {
      toast(err.notAvailable ? 'Signals are not available on this node.' : err.message, 'error');
    }
  };
  return html`<div class="lookup-box" id="signal">
    <${Lookup} id="signal-id" label="Signal id" placeholder="ctx.newSignal().id" onLook=${setId} />
    ${id && error ? html`<${Problem} error=${error} what="Signals" />` : null}
    ${
      id && s && s.id === id
        ? html`<dl class="facts" data-signal=${s.id}>
          <dt>Description</dt><dd>${s.description || html`<span class="muted">—</span>`}</dd>
          <dt>State</dt><dd>${s.signaled ? html`<${Badge} state="completed" label="signaled" />` : html`<${Badge} state="waiting" label="not signaled" />`}</dd>
          ${s.signaled ? html`<dt>Result</dt><dd><${Json} value=${s.result ?? null} /></dd>` : null}
        </dl>
        ${
          s.signaled
            ? null
            : html`<div class="field">
              <label for="signal-result">Result <span class="field-type">JSON, optional (null)</span></label>
              <div class="lookup-row">
                <input id="signal-result" class="mono" value=${result} placeholder='{ "ok": true }'
                  onInput=${(e) => setResult(e.currentTarget.value)} />
                <button class="btn btn-danger-outline" onClick=${trigger}>Trigger…</button>
              </div>
            </div>`
        }`
        : null
    }
    ${dialog}
  </div>`;
}

function Semaphore() {
  const [name, setName] = useState('');
  const { data, error } = useLookup(name, '/semaphores');
  return html`<div class="lookup-box" id="semaphore">
    <${Lookup} id="semaphore-name" label="Semaphore" placeholder="ledger" onLook=${setName} />
    ${name && error ? html`<${Problem} error=${error} what="Semaphores" />` : null}
    ${
      name && data && data.name === name
        ? html`<div class="lock-line" data-semaphore=${data.name}>
          <code>${data.name}</code>
          ${data.held ? html`<${Badge} state="active" label="held" />` : html`<${Badge} state="completed" label="free" />`}
          <span class="muted">${data.held ? 'An execution holds it now.' : 'No execution holds it.'}</span>
        </div>`
        : null
    }
  </div>`;
}

/** The card with both lookups. */
export function SyncLookup() {
  return html`<${Card} title="Signals & semaphores" id="sync">
    <div class="stack-cards">
      <${Signal} />
      <${Semaphore} />
    </div>
  </${Card}>`;
}

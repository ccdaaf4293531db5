/**
 * Workers (4D's CALL WORKER and KILL WORKER): each worker of the cluster with the node holding it, its
 * queued messages and the one it runs now; a form to call one (which creates it), and kill. Workers send
 * no events, so the list is read again every 2 s while the tab is shown. Beside it, the signal and
 * semaphore lookup (./sync.js).
 */
import { useRef, useState } from 'preact/hooks';
import { api, get, post } from '../lib/api.js';
import { useLoad, useNow } from '../lib/live.js';
import {
  Card,
  Empty,
  Problem,
  Time,
  count,
  dateTime,
  html,
  optionalJson,
  toast,
  useConfirm,
} from '../lib/ui.js';
import { SyncLookup } from './sync.js';

/** The most characters a worker name has (as the node checks it: procedures/names.ts). */
const NAME_MAX = 255;

/** Why `name` is not a worker name, or undefined when it is one (the node checks it again). */
function workerNameProblem(name) {
  if (!name) {
    return 'Name the worker.';
  }
  if (name.length > NAME_MAX) {
    return `A worker name has at most ${NAME_MAX} characters.`;
  }
  if (name.startsWith('$')) {
    return '"$" names are 4D\'s local processes; every sprocd worker is shared by the cluster.';
  }
  return undefined;
}

/** What the worker runs now, or left unfinished when no node holds it. */
function Current({ w, now }) {
  if (!w.current) {
    return html`<span class="muted">idle</span>`;
  }
  const c = w.current;
  return html`<span data-current=${c.procedure}>
    <code>${c.procedure}</code>
    <span class="muted"> since <${Time} at=${c.startedAt} now=${now} /></span>
    ${c.attempt > 1 ? html` <span class="muted">· attempt ${c.attempt}</span>` : null}
    ${w.node ? null : html` <span class="muted">· left unfinished, runs again on the next node</span>`}
  </span>`;
}

function WorkerTable({ items, now, onCall, onKill }) {
  if (items.length === 0) {
    return html`<${Empty}>
      No worker yet. A worker comes to exist with its first message: <code>ctx.callWorker(name, procedure,
      params)</code> in a procedure, <code>POST /v1/workers/:name/calls</code>, or the form below.
    </${Empty}>`;
  }
  return html`<table class="table" id="workers-table">
    <thead><tr>
      <th>Worker</th><th>Node</th><th class="num">Queued</th><th>Running now</th>
      <th class="num">Done</th><th class="num">Failed</th><th>Created</th><th></th>
    </tr></thead>
    <tbody>
      ${items.map(
        (w) => html`<tr key=${w.name} data-worker=${w.name}>
          <td><code>${w.name}</code>${w.ending ? html` <span class="badge badge-aborted" title="Killed: it ends once its current message is done">ending</span>` : null}</td>
          <td>${w.node ?? html`<span class="muted" title="No node holds it: the next message's node takes it">none</span>`}</td>
          <td class="num" data-pending=${w.pending}>${count(w.pending)}</td>
          <td><${Current} w=${w} now=${now} /></td>
          <td class="num">${count(w.processed)}</td>
          <td class="num">${w.failed ? html`<span class="rate rate-bad">${count(w.failed)}</span>` : '0'}</td>
          <td title=${dateTime(w.createdAt)}><${Time} at=${w.createdAt} now=${now} /></td>
          <td class="row-actions">
            <button class="btn btn-small" onClick=${() => onCall(w.name)}>Call</button>
            <button class="btn btn-small btn-danger-outline" onClick=${() => onKill(w)}>Kill…</button>
          </td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** CALL WORKER: a procedure and its params for a worker (created by its first call). */
function CallForm({ worker, setWorker, procedures, onCalled, nameRef }) {
  const [procedure, setProcedure] = useState('');
  const [params, setParams] = useState('');
  const [problem, setProblem] = useState();
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const name = worker.trim();
    let value;
    try {
      value = optionalJson(params);
    } catch (err) {
      setProblem(`Params are not JSON: ${err.message}`);
      return;
    }
    const issue =
      workerNameProblem(name) ?? (procedure ? undefined : 'Choose the procedure the message runs.');
    if (issue) {
      setProblem(issue);
      return;
    }
    setProblem(undefined);
    setBusy(true);
    try {
      const body = value === undefined ? { procedure } : { procedure, params: value };
      const answer = await post(`/workers/${encodeURIComponent(name)}/calls`, body);
      toast(
        `Queued ${answer.procedure} for worker "${answer.worker}" (${answer.pending} waiting).`,
        'success',
      );
      onCalled();
    } catch (err) {
      toast(err.notAvailable ? 'Workers are not available on this node.' : err.message, 'error');
    } finally {
      setBusy(false);
    }
  };
  return html`<${Card} title="Call a worker" id="call-worker">
    <form class="fields" onSubmit=${submit} aria-label="Call a worker">
      <div class="field">
        <label for="worker-name">Worker</label>
        <input id="worker-name" name="worker" ref=${nameRef} placeholder="ledger" maxlength=${NAME_MAX}
          value=${worker} onInput=${(e) => setWorker(e.currentTarget.value)} />
        <div class="help">Created by its first message if it does not exist; its messages run one at a time, in order.</div>
      </div>
      <div class="field">
        <label for="worker-procedure">Procedure</label>
        <select id="worker-procedure" name="procedure" value=${procedure}
          onChange=${(e) => setProcedure(e.currentTarget.value)}>
          <option value="">choose…</option>
          ${(procedures ?? []).map((p) => html`<option value=${p.name}>${p.name}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="worker-params">Params <span class="field-type">JSON, optional</span></label>
        <textarea id="worker-params" class="mono" rows="4" placeholder='{ "line": "paid #42" }'
          value=${params} onInput=${(e) => setParams(e.currentTarget.value)}></textarea>
      </div>
      ${problem ? html`<div class="notice notice-error" role="alert">${problem}</div>` : null}
      <div class="form-actions">
        <button class="btn btn-primary" type="submit" disabled=${busy}>${busy ? 'Calling…' : 'Call worker'}</button>
      </div>
    </form>
  </${Card}>`;
}

/** The Workers page. */
export function WorkersPage() {
  const now = useNow(1000);
  const [dialog, confirm] = useConfirm();
  const [worker, setWorker] = useState('');
  const nameRef = useRef();
  // No worker events: a poll, which useLoad skips while the tab is hidden.
  const list = useLoad((signal) => get('/workers', {}, { signal }), [], { pollMs: 2000 });
  const procedures = useLoad((signal) => get('/procedures', {}, { signal }), [], {});
  const items = list.data?.items;

  const kill = async (w) => {
    const ok = await confirm({
      title: `Kill worker "${w.name}"?`,
      body: html`<p>KILL WORKER drops its ${count(w.pending)} queued message${w.pending === 1 ? '' : 's'}.
        ${w.current ? html`It ends once the message it runs now (<code>${w.current.procedure}</code>) is done.` : 'It is idle: it ends now.'}
        A later call creates it again.</p>`,
      action: 'Kill',
      danger: true,
    });
    if (!ok) {
      return;
    }
    try {
      const answer = await api('DELETE', `/workers/${encodeURIComponent(w.name)}`);
      const dropped = answer.dropped ? `; ${count(answer.dropped)} queued dropped` : '';
      toast(
        answer.outcome === 'ended'
          ? `Worker "${w.name}" ended${dropped}.`
          : `Worker "${w.name}" ends after its current message${dropped}.`,
        'success',
      );
      void list.reload();
    } catch (err) {
      toast(err.notAvailable ? 'Workers are not available on this node.' : err.message, 'error');
    }
  };

  const call = (name) => {
    setWorker(name);
    nameRef.current?.scrollIntoView?.({ block: 'center' });
    nameRef.current?.focus();
  };

  return html`<div class="page">
    <header class="page-head"><h1>Workers</h1></header>
    <${Card} title=${`Workers${items ? ` (${items.length})` : ''}`} id="workers">
      <${Problem} error=${list.error} what="The workers view" />
      ${items ? html`<${WorkerTable} items=${items} now=${now} onCall=${call} onKill=${kill} />` : list.error ? null : html`<div class="loading">Loading…</div>`}
    </${Card}>
    <div class="grid-2 grid-top">
      <${CallForm} worker=${worker} setWorker=${setWorker} procedures=${procedures.data?.items}
        onCalled=${list.reload} nameRef=${nameRef} />
      <${SyncLookup} />
    </div>
    ${dialog}
  </div>`;
}

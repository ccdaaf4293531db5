/* global location */
/**
 * One execution: params, result or error with its stack, progress, attempts, timeline, log lines,
 * children; abort, wake, pause, resume, retry and remove. Follows the execution live through the event
 * stream.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, get, post } from '../lib/api.js';
import { useEvents, useLoad, useNow } from '../lib/live.js';
import {
  Badge,
  Card,
  Empty,
  Json,
  Problem,
  Progress,
  Time,
  dateTime,
  duration,
  html,
  toast,
  useConfirm,
} from '../lib/ui.js';
import { ExecutionTable } from './executions.js';

const FINAL = new Set(['completed', 'failed', 'aborted']);

/** 4D's Process state codes (GET /v1/processes/:n/state) in words. */
const PROCESS_STATES = {
  0: 'executing',
  1: 'delayed',
  4: 'waiting to start',
  5: 'paused',
  [-1]: 'aborted',
  [-100]: 'finished',
};

/**
 * Whether the execution is paused, from its Process state. A pause or a resume sends no event (the
 * execution's state stays the same), so this is read again after each of ours, on the execution's
 * events, and every few seconds while it is live (someone else may pause it from the CLI or a
 * procedure). `data` stays undefined on a node without the route: no pause button there.
 */
function useProcessState(number, live) {
  return useLoad(
    (signal) => get(`/processes/${encodeURIComponent(number)}/state`, {}, { signal }),
    [number],
    {
      events: ['execution.state'],
      match: (m) => m.data?.number === Number(number),
      pollMs: live ? 3000 : 0,
      fallbackMs: live ? 3000 : 0,
    },
  );
}

function Summary({ e, now, code }) {
  const end = e.finishedAt ? Date.parse(e.finishedAt) : e.state === 'active' ? now : undefined;
  const link = (n) => (n ? html`<a href=${`#/executions/${n}`}>#${n}</a>` : null);
  const rows = [
    ['Procedure', html`<a href=${`#/procedures/${e.procedure}`}><code>${e.procedure}</code></a>`],
    ['Name', e.name || html`<span class="muted">—</span>`],
    ['Id', html`<code class="small">${e.id}</code>`],
    ['Attempt', `${e.attempt}${e.attempts ? ` of ${e.attempts}` : ''}`],
    ['Node', e.node],
    ['Process state', code === undefined ? null : html`<code>${code}</code> ${PROCESS_STATES[code] ?? ''}`],
    [
      'Created',
      html`${dateTime(e.createdAt)} <span class="muted">(<${Time} at=${e.createdAt} now=${now} />)</span>`,
    ],
    ['Started', e.startedAt ? dateTime(e.startedAt) : null],
    ['Finished', e.finishedAt ? dateTime(e.finishedAt) : null],
    ['Run time', e.startedAt && end ? duration(end - Date.parse(e.startedAt)) : null],
    ['Delayed until', e.delayedUntil ? dateTime(e.delayedUntil) : null],
    ['Started by', link(e.parent)],
    ['Retry of', link(e.retryOf)],
    ['Retried as', link(e.retriedBy)],
  ].filter(([, v]) => v !== null && v !== undefined && v !== '');
  return html`<dl class="facts">
    ${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}
  </dl>`;
}

function Outcome({ e }) {
  if (e.state === 'completed') {
    return html`<${Card} title="Result" id="result"><${Json} value=${e.result ?? null} /></${Card}>`;
  }
  if (e.error) {
    return html`<${Card} title=${e.state === 'aborted' ? 'Aborted' : e.state === 'failed' ? 'Error' : 'Last error'} id="error">
      <div class="error-head">
        ${e.error.code ? html`<span class="badge badge-failed">${e.error.code}</span>` : null}
        <span class="error-name">${e.error.name}</span>
      </div>
      <p class="error-message">${e.error.message}</p>
      ${e.error.stack ? html`<pre class="stack">${e.error.stack}</pre>` : null}
    </${Card}>`;
  }
  return null;
}

function Timeline({ number, now }) {
  const { data, error } = useLoad(
    (signal) => get(`/executions/${number}/timeline`, {}, { signal }),
    [number],
    {
      events: ['execution.state'],
      match: (m) => m.data?.number === Number(number),
      fallbackMs: 0,
    },
  );
  return html`<${Card} title="Timeline" id="timeline">
    ${
      error
        ? html`<${Problem} error=${error} what="The timeline" />`
        : !data
          ? html`<div class="loading">Loading…</div>`
          : data.items.length === 0
            ? html`<${Empty}>Nothing recorded.</${Empty}>`
            : html`<ol class="timeline">
              ${data.items.map(
                (t) => html`<li class=${`tl tl-${t.type}`}>
                  <span class="tl-dot"></span>
                  <div><strong>${t.type}</strong>${t.node ? html` <span class="muted">on ${t.node}</span>` : null}
                    ${t.attempt ? html` <span class="muted">· attempt ${t.attempt}</span>` : null}
                    ${t.message ? html`<div class="sub">${t.message}</div>` : null}</div>
                  <time title=${dateTime(t.at)}>${dateTime(t.at).slice(11)} <span class="muted">(${duration(now - Date.parse(t.at))} ago)</span></time>
                </li>`,
              )}
            </ol>`
    }
  </${Card}>`;
}

function Logs({ number, live }) {
  const { data, error } = useLoad((signal) => get(`/executions/${number}/logs`, {}, { signal }), [number], {
    events: ['execution.state', 'execution.progress'],
    match: (m) => m.data?.number === Number(number),
    pollMs: live ? 3000 : 0,
    fallbackMs: live ? 3000 : 0,
  });
  if (error?.notAvailable) {
    return null; // a node that keeps no log lines: the timeline takes the row
  }
  return html`<${Card} title="Log lines" id="logs">
    ${
      error
        ? html`<${Problem} error=${error} what="Log lines" />`
        : !data
          ? html`<div class="loading">Loading…</div>`
          : data.items.length === 0
            ? html`<${Empty}>No log line kept for this execution.</${Empty}>`
            : html`<div class="logs">
              ${data.items.map(
                (l) => html`<div class=${`log log-${l.level}`}>
                  <span class="log-at">${dateTime(l.at).slice(11)}</span>
                  <span class="log-level">${l.level}</span>
                  <span class="log-msg">${l.msg}</span>
                  ${l.fields && Object.keys(l.fields).length ? html`<code class="log-fields">${JSON.stringify(l.fields)}</code>` : null}
                </div>`,
              )}
            </div>`
    }
  </${Card}>`;
}

function Children({ number, now }) {
  const { data, error } = useLoad(
    // A node without the `parent` filter refuses the unknown query key (400): not available there.
    (signal) =>
      get('/executions', { parent: number, limit: 100 }, { signal }).catch((err) => {
        throw err.status === 400 ? new ApiError(404, 'NOT_FOUND', err.message) : err;
      }),
    [number],
    { events: ['execution.state'], throttleMs: 1000, fallbackMs: 5000 },
  );
  return html`<${Card} title="Children" id="children">
    ${
      error
        ? html`<${Problem} error=${error} what="Children (started by executeOnServer)" />`
        : html`<${ExecutionTable} items=${data?.items} now=${now} empty="It started no other execution." />`
    }
  </${Card}>`;
}

/** The page of execution `number`. */
export function ExecutionPage({ number }) {
  const now = useNow(1000);
  const [dialog, confirm] = useConfirm();
  const [progress, setProgress] = useState();
  const {
    data: e,
    error,
    reload,
  } = useLoad((signal) => get(`/executions/${encodeURIComponent(number)}`, {}, { signal }), [number], {
    events: ['execution.state'],
    match: (m) => m.data?.number === Number(number),
    pollMs: 0,
    fallbackMs: 1000,
  });
  useEvents(['execution.progress'], (m) => m.data?.number === Number(number) && setProgress(m.data.progress));
  const shownProgress = e && !FINAL.has(e.state) && progress !== undefined ? progress : e?.progress;
  const processState = useProcessState(number, e !== undefined && !FINAL.has(e.state));
  const code = processState.data?.number === Number(number) ? processState.data.code : undefined;
  const paused = code === 5;

  const act = async (action) => {
    const questions = {
      abort: {
        title: `Abort execution #${number}?`,
        body: 'A waiting one never starts; a running one gets its signal fired and ends as aborted.',
        danger: true,
      },
      remove: {
        title: `Remove execution #${number}?`,
        body: 'Its record, result and error are deleted for good.',
        danger: true,
      },
    };
    if (
      questions[action] &&
      !(await confirm({ ...questions[action], action: action[0].toUpperCase() + action.slice(1) }))
    ) {
      return;
    }
    try {
      if (action === 'remove') {
        await api('DELETE', `/executions/${number}`);
        toast(`Execution #${number} removed.`, 'success');
        location.hash = '#/executions';
        return;
      }
      const view = await post(`/executions/${number}/${action}`);
      if (action === 'retry') {
        toast(`Retried as #${view.number}.`, 'success');
        location.hash = `#/executions/${view.number}`;
        return;
      }
      const done = {
        abort: `Abort sent to #${number}.`,
        wake: `Woke #${number}.`,
        pause: `Paused #${number}: it stops at its next checkpoint or delay.`,
        resume: `Resumed #${number}.`,
      };
      toast(done[action], 'success');
      void reload();
      void processState.reload();
    } catch (err) {
      toast(err.notAvailable ? `${action} is not available on this node.` : err.message, 'error');
    }
  };

  if (error && !e) {
    return html`<div class="page"><header class="page-head"><h1>Execution #${number}</h1></header>
      <${Problem} error=${error} /></div>`;
  }
  if (!e) {
    return html`<div class="page"><header class="page-head"><h1>Execution #${number}</h1></header>
      <div class="loading">Loading…</div></div>`;
  }
  const final = FINAL.has(e.state);
  return html`<div class="page" data-execution=${e.number}>
    <header class="page-head">
      <div>
        <div class="crumbs"><a href="#/executions">Executions</a> /</div>
        <h1>#${e.number} <code>${e.procedure}</code> <${Badge} state=${e.state} />
          ${!final && paused ? html` <span class="badge badge-paused" data-paused title="PAUSE PROCESS: it waits for a resume">paused</span>` : null}</h1>
      </div>
      <div class="page-actions">
        ${!final && code !== undefined && !paused ? html`<button class="btn" onClick=${() => act('pause')} title="PAUSE PROCESS: a running execution stops at its next ctx.checkpoint or ctx.delay; one not started does not start">Pause</button>` : null}
        ${!final && paused ? html`<button class="btn btn-primary" onClick=${() => act('resume')} title="RESUME PROCESS">Resume</button>` : null}
        ${!final ? html`<button class="btn btn-danger-outline" onClick=${() => act('abort')}>Abort</button>` : null}
        ${(e.state === 'active' || e.state === 'delayed') && !paused ? html`<button class="btn" onClick=${() => act('wake')}>Wake</button>` : null}
        ${e.state === 'failed' || e.state === 'aborted' ? html`<button class="btn btn-primary" onClick=${() => act('retry')}>Retry</button>` : null}
        ${final ? html`<button class="btn btn-danger-outline" onClick=${() => act('remove')}>Remove</button>` : null}
      </div>
    </header>
    ${
      shownProgress !== undefined && shownProgress !== null
        ? html`<div class="progress-row" id="progress"><span class="muted">Progress</span><${Progress} value=${shownProgress} /></div>`
        : null
    }
    <div class="grid-2">
      <${Card} title="Summary" id="summary"><${Summary} e=${e} now=${now} code=${final ? undefined : code} /></${Card}>
      <${Card} title="Params" id="params"><${Json} value=${e.params ?? null} /></${Card}>
    </div>
    <${Outcome} e=${e} />
    <div class="grid-fit">
      <${Timeline} number=${e.number} now=${now} />
      <${Logs} number=${e.number} live=${!final} />
    </div>
    <${Children} number=${e.number} now=${now} />
    ${dialog}
  </div>`;
}

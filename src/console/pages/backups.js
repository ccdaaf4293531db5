/* global document, setTimeout */
/**
 * Schedules and backups: every schedule's next ticks, last run and missed ticks; the backup history with
 * its status codes; "back up now" with live progress; download of a backup file.
 */
import { useState } from 'preact/hooks';
import { api, get, post } from '../lib/api.js';
import { useEvents, useLoad, useNow } from '../lib/live.js';
import {
  Badge,
  Card,
  Empty,
  Problem,
  Progress,
  Time,
  bytes,
  count,
  dateTime,
  duration,
  html,
  toast,
} from '../lib/ui.js';

/** What each status code given to onBackupShutdown means. */
const STATUS = {
  0: 'done',
  1401: 'automatic backups stopped after too many failures',
  1402: 'a scheduled tick was missed while no node ran',
  1406: 'interrupted (node stopped or died)',
  1407: 'Redis failed, or the backup lock was lost',
  1410: 'the file could not be written',
  1411: 'a backup hook threw',
  1412: 'skipped: another backup or a restore was running',
};

const OUTCOME_STATE = { done: 'completed', failed: 'failed', cancelled: 'aborted', skipped: 'delayed' };

function Schedules({ now }) {
  const { data, error } = useLoad((signal) => get('/schedules', {}, { signal }), [], {
    // Ticks are seconds to hours apart: a poll keeps "next" and "last run" current without following
    // every execution's events.
    events: ['backup.finished'],
    pollMs: 10_000,
    fallbackMs: 15_000,
  });
  const items = data?.items ?? [];
  return html`<${Card} title="Schedules" id="schedules">
    <${Problem} error=${error} what="The schedule list" />
    ${
      data && items.length === 0
        ? html`<${Empty}>No schedule: set SPROCD_BACKUP_CRON, or <code>schedule</code> in a procedure.</${Empty}>`
        : data
          ? html`<table class="table">
            <thead><tr><th>Schedule</th><th>Cron</th><th>Next ticks</th><th>Last run</th><th class="num">Missed</th></tr></thead>
            <tbody>
              ${items.map(
                (s) => html`<tr key=${s.id}>
                  <td>${
                    s.kind === 'backup'
                      ? html`<strong>Backup</strong>`
                      : html`<a href=${`#/procedures/${s.procedure}`}><code>${s.procedure}</code></a>`
                  }</td>
                  <td><code>${s.cron}</code>${s.tz ? html` <span class="muted">${s.tz}</span>` : null}</td>
                  <td>${(s.next ?? [])
                    .slice(0, 3)
                    .map(
                      (t, i) =>
                        html`<div class=${i ? 'sub' : ''}>${dateTime(t)} ${i === 0 ? html`<span class="muted">(<${Time} at=${t} now=${now} />)</span>` : null}</div>`,
                    )}</td>
                  <td>${
                    s.lastRun
                      ? html`<${Time} at=${s.lastRun.at} now=${now} />
                        ${s.lastRun.outcome ? html` <${Badge} state=${OUTCOME_STATE[s.lastRun.outcome] ?? s.lastRun.outcome} label=${s.lastRun.outcome} />` : null}
                        ${s.lastRun.execution ? html` <a href=${`#/executions/${s.lastRun.execution}`}>#${s.lastRun.execution}</a>` : null}
                        ${s.lastRun.backup ? html` <span class="muted">backup ${s.lastRun.backup}</span>` : null}`
                      : html`<span class="muted">never</span>`
                  }</td>
                  <td class="num" title=${(s.missedTicks ?? []).map(dateTime).join('\n')}>
                    ${s.missed ? html`<span class="rate rate-bad">${s.missed}</span>` : html`<span class="muted">0</span>`}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
          : null
    }
  </${Card}>`;
}

async function download(record) {
  try {
    const response = await api('GET', `/backups/${record.number}/file`, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = record.file ? record.file.split(/[\\/]/).pop() : `backup-${record.number}.sprocd`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    toast(
      err.notAvailable
        ? 'Downloads are not available on this node.'
        : err.details?.node
          ? `${err.message} (written by ${err.details.node})`
          : err.message,
      'error',
    );
  }
}

function Running({ running, progress, now }) {
  const p = progress && progress.number === running.number ? progress : running.progress;
  const pct = p && p.total ? (100 * p.done) / p.total : undefined;
  return html`<div class="running" id="backup-running" data-backup=${running.number}>
    <div class="running-head">
      <span class="spinner" aria-hidden="true"></span>
      <strong>Backup ${running.number}</strong>
      <span class="muted">${running.trigger} · on ${running.node} · started <${Time} at=${running.startedAt} now=${now} /></span>
    </div>
    <div class="running-phase" data-phase=${p?.phase ?? 'starting'}>
      ${p ? html`${p.phase}${p.total ? html` · ${count(p.done)} / ${count(p.total)}` : p.done ? ` · ${count(p.done)}` : ''}` : 'starting…'}
    </div>
    <${Progress} value=${pct ?? 0} />
  </div>`;
}

/** The Schedules and backups page. */
export function BackupsPage() {
  const now = useNow(1000);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState();
  const backups = useLoad((signal) => get('/backups', { limit: 50 }, { signal }), [], {
    events: ['backup.started', 'backup.finished'],
    pollMs: busy ? 500 : 10_000,
    fallbackMs: busy ? 500 : 5000,
  });
  useEvents(['backup.progress'], (m) => setProgress(m.data));
  const data = backups.data;
  const running = data?.running;

  const backUpNow = async () => {
    setBusy(true);
    setProgress(undefined);
    const started = post('/backups');
    setTimeout(() => void backups.reload(), 150);
    try {
      const record = await started;
      toast(
        record.outcome === 'done'
          ? `Backup ${record.number} done: ${bytes(record.size)}.`
          : `Backup ${record.number} ${record.outcome} (${record.status}).`,
        record.outcome === 'done' ? 'success' : 'error',
      );
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      setBusy(false);
      void backups.reload();
    }
  };

  return html`<div class="page">
    <header class="page-head">
      <h1>Schedules & backups</h1>
      <div class="page-actions">
        <button class="btn btn-primary" onClick=${backUpNow} disabled=${busy || Boolean(running)}>
          ${busy || running ? 'Backing up…' : 'Back up now'}
        </button>
      </div>
    </header>
    <${Schedules} now=${now} />
    <${Card} title="Backups" id="backups">
      <${Problem} error=${backups.error} />
      ${
        data
          ? html`<div class="backup-status">
            <div><span class="muted">Next scheduled</span> ${data.nextScheduledAt ? html`${dateTime(data.nextScheduledAt)} (<${Time} at=${data.nextScheduledAt} now=${now} />)` : 'none'}</div>
            <div><span class="muted">Failures in a row</span> ${data.consecutiveFailures}</div>
            ${data.automaticStopped ? html`<div class="notice notice-error">Automatic backups are stopped (1401) until a manual backup succeeds.</div>` : null}
          </div>`
          : null
      }
      ${running ? html`<${Running} running=${running} progress=${progress} now=${now} />` : null}
      ${busy && !running ? html`<div class="running" id="backup-running"><span class="spinner"></span> Starting a backup…</div>` : null}
      ${
        data && data.items.length === 0
          ? html`<${Empty}>No backup yet.</${Empty}>`
          : data
            ? html`<table class="table" id="backups-table">
              <thead><tr><th class="num">#</th><th>Trigger</th><th>Node</th><th>Started</th><th class="num">Took</th>
                <th>Status</th><th class="num">Size</th><th class="num">Entries</th><th class="num">Executions</th><th></th></tr></thead>
              <tbody>
                ${data.items.map(
                  (b) => html`<tr key=${b.number} data-backup=${b.number}>
                    <td class="num">${b.number}</td>
                    <td>${b.trigger}${b.attempt ? html` <span class="muted">try ${b.attempt}</span>` : null}</td>
                    <td class="nowrap">${b.node}</td>
                    <td title=${dateTime(b.startedAt)}><${Time} at=${b.startedAt} now=${now} /></td>
                    <td class="num">${duration(b.durationMs)}</td>
                    <td title=${b.message ?? STATUS[b.status] ?? ''}>
                      <${Badge} state=${OUTCOME_STATE[b.outcome] ?? b.outcome} label=${b.outcome} />
                      <code class="status-code">${b.status}</code>
                      ${b.status !== 0 ? html`<div class="sub">${b.message ?? STATUS[b.status] ?? ''}</div>` : null}
                    </td>
                    <td class="num">${bytes(b.size)}</td>
                    <td class="num">${b.entries ?? '—'}</td>
                    <td class="num">${b.executions ?? '—'}</td>
                    <td class="num">${b.file ? html`<button class="btn btn-small" onClick=${() => download(b)}>Download</button>` : null}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`
            : null
      }
    </${Card}>
  </div>`;
}

/* global document, window, location, fetch, URLSearchParams */
/**
 * The console's shell: sign-in gate, sidebar, hash routes (#/executions/12), and the tab's event stream.
 * Routes live in the hash so the server serves one page and no token or data ever reaches a URL path.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, authEvents, clearToken, get, getToken, setToken } from './lib/api.js';
import { startEvents, stopEvents, useEventStatus } from './lib/live.js';
import { Toasts, html } from './lib/ui.js';
import { AuditPage } from './pages/audit.js';
import { BackupsPage } from './pages/backups.js';
import { ExecutionPage } from './pages/execution.js';
import { ExecutionsPage } from './pages/executions.js';
import { OverviewPage } from './pages/overview.js';
import { ProcedurePage, ProceduresPage } from './pages/procedures.js';
import { SessionPage } from './pages/session.js';
import { WorkersPage } from './pages/workers.js';

/** Sidebar icons: stroked 24×24 paths, drawn in the text colour. */
const ICONS = {
  overview: 'M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z',
  executions: 'M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01',
  procedures: 'M16 18l6-6-6-6M8 6l-6 6 6 6',
  session: 'M12 2l8 4v6c0 5-3.5 8.5-8 10-4.5-1.5-8-5-8-10V6zM9 12l2 2 4-4',
  workers: 'M4 4h16v16H4zM4 14h4l2 3h4l2-3h4M9 8h6',
  backups: 'M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5M12 7v5l3 3',
  audit: 'M9 5h10M9 12h10M9 19h10M4 5l1 1 2-2M4 12l1 1 2-2M4 19l1 1 2-2',
};

const NAV = [
  { path: '/overview', label: 'Overview', icon: 'overview' },
  { path: '/executions', label: 'Executions', icon: 'executions' },
  { path: '/procedures', label: 'Procedures', icon: 'procedures' },
  { path: '/session', label: 'Session', icon: 'session' },
  { path: '/workers', label: 'Workers', icon: 'workers' },
  { path: '/backups', label: 'Schedules & backups', icon: 'backups' },
  { path: '/audit', label: 'Audit trail', icon: 'audit' },
];

function Icon({ name }) {
  return html`<svg class="nav-icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
    <path d=${ICONS[name]} />
  </svg>`;
}

/** The current hash route: `{ path, segments, query }`. */
function readRoute() {
  const raw = location.hash.replace(/^#/, '') || '/overview';
  const [path, search = ''] = raw.split('?');
  return {
    path,
    segments: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: Object.fromEntries(new URLSearchParams(search)),
  };
}

function useRoute() {
  const [route, setRoute] = useState(readRoute());
  useEffect(() => {
    const onHash = () => setRoute(readRoute());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

function Page({ route }) {
  const [first, ...rest] = route.segments;
  switch (first) {
    case 'executions':
      return rest.length
        ? html`<${ExecutionPage} number=${rest[0]} />`
        : html`<${ExecutionsPage} query=${route.query} />`;
    case 'procedures':
      return rest.length ? html`<${ProcedurePage} name=${rest.join('/')} />` : html`<${ProceduresPage} />`;
    case 'session':
      return html`<${SessionPage} selected=${route.query.key} />`;
    case 'workers':
      return html`<${WorkersPage} />`;
    case 'backups':
      return html`<${BackupsPage} />`;
    case 'audit':
      return html`<${AuditPage} />`;
    default:
      return html`<${OverviewPage} />`;
  }
}

function LiveDot() {
  const status = useEventStatus();
  const label = {
    live: 'Live',
    connecting: 'Connecting…',
    unavailable: 'Polling (no live events)',
    unauthorized: 'Signed out',
  }[status];
  return html`<div class=${`live live-${status}`} data-live=${status} title="GET /v1/events">
    <span class="dot"></span>${label}
  </div>`;
}

function Shell({ node, onSignOut }) {
  const route = useRoute();
  const current = `/${route.segments[0] ?? 'overview'}`;
  return html`<div class="shell">
    <nav class="sidebar" aria-label="Console">
      <a class="brand" href="#/overview"><img src="icon.svg" alt="" width="26" height="26" /><span>sprocd</span></a>
      <ul>
        ${NAV.map(
          (item) => html`<li>
            <a href=${`#${item.path}`} class=${current === item.path ? 'active' : ''}
              aria-current=${current === item.path ? 'page' : undefined}>
              <${Icon} name=${item.icon} />${item.label}
            </a>
          </li>`,
        )}
      </ul>
      <div class="sidebar-foot">
        <${LiveDot} />
        <div class="node-name" title="The node serving this console">${node ?? ''}</div>
        ${getToken() ? html`<button class="btn btn-ghost" onClick=${onSignOut}>Sign out</button>` : null}
      </div>
    </nav>
    <main class="content"><${Page} route=${route} /></main>
    <${Toasts} />
  </div>`;
}

function SignIn({ onSignedIn, reason }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState(reason);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setToken(token.trim());
    try {
      await get('/nodes');
      onSignedIn();
    } catch (err) {
      clearToken();
      setError(err instanceof ApiError && err.status === 401 ? 'The node refused this token.' : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="signin">
    <form class="signin-card" onSubmit=${submit}>
      <div class="brand brand-dark"><img src="icon.svg" alt="" width="32" height="32" /><span>sprocd</span></div>
      <h1>Sign in to the console</h1>
      <p class="muted">Enter the node's API token (<code>SPROCD_TOKEN</code>). It is kept for this tab only and
        sent as a bearer header.</p>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required
        value=${token} onInput=${(e) => setValue(e.currentTarget.value)} autofocus />
      ${error ? html`<div class="notice notice-error" role="alert">${error}</div>` : null}
      <button class="btn btn-primary btn-block" type="submit" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button>
    </form>
  </div>`;
}

function App() {
  const [phase, setPhase] = useState('checking');
  const [reason, setReason] = useState();
  const [node, setNode] = useState();

  const check = async () => {
    try {
      await get('/nodes');
      setPhase('in');
      startEvents();
      // The node serving the console (health routes live beside /v1, not under it).
      fetch(new URL('../healthz', document.baseURI))
        .then((r) => r.json())
        .then((h) => setNode(h.node))
        .catch(() => undefined);
    } catch (err) {
      setReason(
        err instanceof ApiError && err.status === 401 && getToken() ? 'Your token was refused.' : undefined,
      );
      setPhase(err instanceof ApiError && err.status === 401 ? 'out' : 'error');
      if (!(err instanceof ApiError && err.status === 401)) {
        setReason(err.message);
      }
    }
  };

  useEffect(() => {
    void check();
    const onUnauthorized = () => {
      stopEvents();
      setReason(getToken() ? 'The node refused the token; sign in again.' : undefined);
      clearToken();
      setPhase('out');
    };
    authEvents.addEventListener('unauthorized', onUnauthorized);
    return () => authEvents.removeEventListener('unauthorized', onUnauthorized);
  }, []);

  if (phase === 'checking') {
    return html`<p class="boot">Connecting to the node…</p>`;
  }
  if (phase === 'error') {
    return html`<div class="signin"><div class="signin-card">
      <h1>The node does not answer</h1><p class="muted">${reason}</p>
      <button class="btn btn-primary" onClick=${() => (setPhase('checking'), void check())}>Retry</button>
    </div></div>`;
  }
  if (phase === 'out') {
    return html`<${SignIn} reason=${reason} onSignedIn=${() => (setReason(undefined), void check())} />`;
  }
  return html`<${Shell}
    node=${node}
    onSignOut=${() => {
      stopEvents();
      clearToken();
      setPhase('out');
    }}
  />`;
}

render(html`<${App} />`, document.getElementById('app'));

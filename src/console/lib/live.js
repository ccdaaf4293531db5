/* global AbortController, Event, setTimeout, clearTimeout, setInterval, clearInterval, document */
/**
 * What keeps every page live without a reload: one event stream per tab (GET /v1/events) shared by all
 * views, and `useLoad`, which loads a page's data and loads it again when a matching event arrives, or
 * on a timer when the stream is not there (an older node, a proxy that buffers).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { apiUrl, authEvents, authHeaders } from './api.js';
import { followEvents } from './sse.js';

const listeners = new Set();
const statusListeners = new Set();
/** Event types the mounted views listen to, with how many listen to each. */
const wanted = new Map();
/** Mounted views that need each execution event (the rest only reload: a digest does for them). */
let eachWanted = 0;
/**
 * How often the node sends a digest of execution events instead of each one, while no view needs
 * each (GET /v1/events?digest=): under load that is a few frames a second instead of thousands.
 */
const DIGEST_MS = 1000;
let status = 'connecting';
let controller;
let running = false;
let streamTypes = '';
let lastId = '';
let retune;

/**
 * (Re)connects with the types the shown views want, so a tab on the overview is not sent every
 * execution's progress. Resumes after the last event seen, so changing page loses nothing.
 */
function connect() {
  controller?.abort();
  controller = new AbortController();
  const [types, digest] = streamTypes.split('|');
  followEvents({
    url: () => apiUrl('/events', { types, digest }),
    headers: () => authHeaders(),
    lastEventId: lastId,
    signal: controller.signal,
    onStatus: (next) => {
      status = next;
      statusListeners.forEach((fn) => fn(next));
      if (next === 'unauthorized') {
        authEvents.dispatchEvent(new Event('unauthorized'));
      }
    },
    onEvent: ({ id, event, data }) => {
      if (id) {
        lastId = id;
      }
      let payload;
      try {
        payload = JSON.parse(data);
      } catch {
        payload = data;
      }
      const message = { id, type: event, data: payload };
      listeners.forEach((fn) => fn(message));
    },
  });
}

/**
 * The types to ask for: what the views want, and system events (rare) so the stream always has a use;
 * and after a `|`, the digest's interval when execution events are wanted but no view needs each one.
 */
function typesWanted() {
  const types = new Set(['system']);
  for (const [type, n] of wanted) {
    if (n > 0 && type !== 'reset') {
      types.add(type);
    }
  }
  const executions = [...types].some((t) => t.startsWith('execution.'));
  return `${[...types].sort().join(',')}|${executions && eachWanted === 0 ? DIGEST_MS : ''}`;
}

function scheduleRetune() {
  clearTimeout(retune);
  retune = setTimeout(() => {
    const types = typesWanted();
    if (running && types !== streamTypes) {
      streamTypes = types;
      connect();
    }
  }, 50);
}

/** Starts the tab's event stream (again, e.g. after sign-in). */
export function startEvents() {
  running = true;
  streamTypes = typesWanted();
  connect();
}

/** Stops the event stream (sign out). */
export function stopEvents() {
  running = false;
  controller?.abort();
  controller = undefined;
}

/**
 * Calls `fn({ id, type, data })` for each event whose type is in `types` while the view is shown.
 * With `digest`, the view only needs to know that executions changed: it may get `execution.digest`
 * events instead of execution events (`data.items`: the latest change of each execution, `data.more`
 * when there were more than it names).
 */
export function useEvents(types, fn, { digest = false } = {}) {
  const ref = useRef(fn);
  ref.current = fn;
  const key = types.join(',');
  useEffect(() => {
    const mine = key ? key.split(',') : [];
    if (mine.length === 0) {
      return undefined;
    }
    const set = new Set(mine);
    const executions = mine.some((t) => t.startsWith('execution.'));
    const listener = (message) => {
      if (set.has(message.type) || (digest && executions && message.type === 'execution.digest')) {
        ref.current(message);
      }
    };
    listeners.add(listener);
    mine.forEach((t) => wanted.set(t, (wanted.get(t) ?? 0) + 1));
    const each = executions && !digest;
    eachWanted += each ? 1 : 0;
    scheduleRetune();
    return () => {
      listeners.delete(listener);
      mine.forEach((t) => wanted.set(t, (wanted.get(t) ?? 1) - 1));
      eachWanted -= each ? 1 : 0;
      scheduleRetune();
    };
  }, [key, digest]);
}

/**
 * Whether a message may concern a view that listens to `types` and looks at events with `match`: a
 * digest does when one of the changes it names would (or when it does not name them all).
 */
function concerns(message, types, match) {
  if (message.type !== 'execution.digest') {
    return message.type === 'reset' || !match || match(message);
  }
  const { items, more } = message.data ?? {};
  if (more || !Array.isArray(items)) {
    return true;
  }
  return items.some(
    (item) => types.includes(item.type) && (!match || match({ type: item.type, data: item })),
  );
}

/** The stream's status: "connecting", "live", "unavailable" or "unauthorized". */
export function useEventStatus() {
  const [value, setValue] = useState(status);
  useEffect(() => {
    statusListeners.add(setValue);
    setValue(status);
    return () => statusListeners.delete(setValue);
  }, []);
  return value;
}

/**
 * Loads data with `loader(signal)` when `deps` change, keeps the last good data while it reloads,
 * reloads on events of `events` that `match` accepts, and every `pollMs` — every `fallbackMs` instead
 * while the event stream is not live. Returns `{ data, error, loading, reload }`.
 *
 * Reloads for events are what a busy node pays for an open console, so they are coalesced: at most one
 * per `throttleMs`, never two at once (events during a load make one more load after it, not an
 * aborted one), and none while the tab is hidden (one when it is shown again, if events came).
 */
export function useLoad(
  loader,
  deps,
  { events = [], match, pollMs = 0, fallbackMs = 2000, throttleMs = 300 } = {},
) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const loaderRef = useRef(loader);
  loaderRef.current = loader;
  const inflight = useRef();
  const timer = useRef();
  /** Events came that the data shown does not reflect yet (while hidden, or while a load ran). */
  const stale = useRef(false);
  const reloadRef = useRef();
  const streamStatus = useEventStatus();

  /** One reload for the events seen, when the throttle, the load in flight and the tab allow it. */
  const soon = () => {
    stale.current = true;
    timer.current ??= setTimeout(() => {
      timer.current = undefined;
      if (inflight.current || document.visibilityState === 'hidden') {
        return; // the load in flight, or the tab being shown again, picks it up
      }
      void reloadRef.current();
    }, throttleMs);
  };

  const reload = useCallback(() => {
    inflight.current?.abort();
    const ctl = new AbortController();
    inflight.current = ctl;
    stale.current = false;
    setState((s) => ({ ...s, loading: true }));
    return Promise.resolve()
      .then(() => loaderRef.current(ctl.signal))
      .then(
        (data) => !ctl.signal.aborted && setState({ data, error: undefined, loading: false }),
        (error) => {
          if (!ctl.signal.aborted && error?.name !== 'AbortError') {
            setState((s) => ({ data: s.data, error, loading: false }));
          }
        },
      )
      .finally(() => {
        if (inflight.current === ctl) {
          inflight.current = undefined;
          if (stale.current) {
            soon();
          }
        }
      });
  }, deps);
  reloadRef.current = reload;

  useEffect(() => {
    setState({ data: undefined, error: undefined, loading: true });
    void reload();
    return () => inflight.current?.abort();
  }, [reload]);

  // `reset`: the node no longer has the events after the last one seen, so what is shown may be stale.
  useEvents(
    events.length ? [...events, 'reset'] : [],
    (message) => {
      if (!concerns(message, events, match)) {
        return;
      }
      // Throttled, not debounced: under a steady stream of events a debounce would never fire.
      soon();
    },
    { digest: true },
  );
  useEffect(() => () => clearTimeout(timer.current), []);
  useEffect(() => {
    const shown = () => {
      if (document.visibilityState !== 'hidden' && stale.current && !inflight.current) {
        void reloadRef.current();
      }
    };
    document.addEventListener('visibilitychange', shown);
    return () => document.removeEventListener('visibilitychange', shown);
  }, []);

  // Events that came between this view's first load and the stream going live are caught up once.
  const wasLive = useRef(streamStatus === 'live');
  useEffect(() => {
    if (streamStatus === 'live' && !wasLive.current && events.length) {
      void reload();
    }
    wasLive.current = streamStatus === 'live';
  }, [streamStatus]);

  // A node without the route answers the same next time: asking again every few seconds helps nobody.
  const every = state.error?.notAvailable
    ? 0
    : streamStatus === 'live' || events.length === 0
      ? pollMs
      : fallbackMs;
  useEffect(() => {
    if (!every) {
      return undefined;
    }
    const id = setInterval(() => {
      if (document.visibilityState !== 'hidden') {
        void reload();
      }
    }, every);
    return () => clearInterval(id);
  }, [every, reload]);

  return { ...state, reload };
}

/** A value that re-renders the view every `ms` (for "12 s ago" and lease countdowns). */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

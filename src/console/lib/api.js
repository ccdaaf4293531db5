/* global sessionStorage, fetch, document, EventTarget, Event */
/**
 * Calls to the node's /v1 API with the operator's token. The token lives in sessionStorage (this tab
 * only, gone when it closes) and travels only as the Authorization header: never in a URL or a cookie.
 */

const TOKEN_KEY = 'sprocd.token';

/** Fires "unauthorized" when the node answers 401: the app then shows the sign-in view. */
export const authEvents = new EventTarget();

/** The token of this tab ('' when none was given: a loopback node without a token needs none). */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

/** Keeps the token for this tab. */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forgets the token (sign out). */
export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API, with its stable code. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** True when the node has no such route (an older node): the page shows "not available". */
  get notAvailable() {
    return this.status === 404 && this.code === 'NOT_FOUND';
  }
}

/** The URL of an API path, relative to where the console is served (works behind a path prefix). */
export function apiUrl(path, query) {
  const url = new URL(`../v1${path}`, document.baseURI);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') {
      url.searchParams.set(key, String(value));
    }
  }
  return url;
}

/** Headers every call carries. */
export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : { ...extra };
}

/**
 * Calls the API and returns the parsed JSON (undefined for 204). Throws ApiError for error answers;
 * a 401 also tells the app to ask for a token.
 */
export async function api(method, path, { query, body, signal, raw } = {}) {
  const init = { method, headers: authHeaders({ accept: 'application/json' }), signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), init);
  } catch (err) {
    if (err?.name === 'AbortError') {
      throw err;
    }
    throw new ApiError(0, 'UNREACHABLE', 'The node does not answer.');
  }
  if (response.status === 401) {
    authEvents.dispatchEvent(new Event('unauthorized'));
  }
  if (!response.ok) {
    const payload = await response.json().catch(() => undefined);
    const error = payload?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `HTTP_${response.status}`,
      error.message ?? `${method} ${path} answered ${response.status}.`,
      error.details,
    );
  }
  if (raw) {
    return response;
  }
  if (response.status === 204) {
    return undefined;
  }
  return response.json();
}

/** GET shorthand. */
export const get = (path, query, options) => api('GET', path, { ...options, query });
/** POST shorthand. */
export const post = (path, body, options) => api('POST', path, { ...options, body });

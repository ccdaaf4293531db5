/* global fetch, TextDecoder, setTimeout, clearTimeout, AbortController */
/**
 * Server-Sent Events over fetch(): EventSource cannot send the Authorization header, so the stream is
 * read with a ReadableStream reader and parsed here, following the WHATWG event-stream rules
 * (id/event/data/retry fields, comments, CR/LF/CRLF line ends). Reconnects send Last-Event-ID.
 */

/**
 * A push parser: feed it text chunks as they arrive; it calls `onEvent({ id, event, data })` for each
 * complete event (`data` is the raw text, lines joined with "\n"; `event` defaults to "message").
 * `lastEventId()` is the id to resume from.
 */
export function createSseParser(onEvent) {
  let buffer = '';
  let data = [];
  let event = '';
  let lastId = '';
  let pendingCR = false;

  const dispatch = () => {
    if (data.length > 0) {
      onEvent({ id: lastId, event: event || 'message', data: data.join('\n') });
    }
    data = [];
    event = '';
  };

  const line = (text) => {
    if (text === '') {
      dispatch();
      return;
    }
    if (text.startsWith(':')) {
      return; // a comment (keep-alive)
    }
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'data') {
      data.push(value);
    } else if (field === 'event') {
      event = value;
    } else if (field === 'id' && !value.includes('\0')) {
      lastId = value;
    }
  };

  return {
    push(chunk) {
      let text = chunk;
      if (pendingCR && text.startsWith('\n')) {
        text = text.slice(1); // the LF of a CRLF split across chunks
      }
      pendingCR = false;
      buffer += text;
      const parts = buffer.split(/\r\n|\r|\n/);
      buffer = parts.pop() ?? '';
      if (buffer === '' && text.endsWith('\r')) {
        pendingCR = true;
      }
      for (const part of parts) {
        line(part);
      }
    },
    lastEventId: () => lastId,
  };
}

/**
 * Follows `url` for as long as `signal` allows: calls `onEvent` per event and `onStatus(status)` with
 * "connecting", "live", "unavailable" (the node has no such route; retried slowly) or "unauthorized".
 * `headers()` gives the request headers each time (the token may change); `lastEventId` resumes a
 * stream followed before.
 */
export function followEvents({ url, headers, onEvent, onStatus, signal, lastEventId = '' }) {
  let lastId = lastEventId;
  let failures = 0;

  const sleep = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });

  const once = async () => {
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      const h = { ...headers(), accept: 'text/event-stream' };
      if (lastId) {
        h['last-event-id'] = lastId;
      }
      const response = await fetch(url(), { headers: h, signal: controller.signal, cache: 'no-store' });
      if (response.status === 401) {
        onStatus('unauthorized');
        return 30_000;
      }
      if (response.status === 404) {
        onStatus('unavailable');
        return 60_000;
      }
      if (!response.ok || !response.body) {
        onStatus('connecting');
        return Math.min(1000 * 2 ** failures++, 10_000);
      }
      failures = 0;
      onStatus('live');
      const parser = createSseParser((message) => {
        if (message.id) {
          lastId = message.id;
        }
        onEvent(message);
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        parser.push(decoder.decode(value, { stream: true }));
      }
      onStatus('connecting');
      return 500;
    } catch {
      if (!signal.aborted) {
        onStatus('connecting');
      }
      return Math.min(1000 * 2 ** failures++, 10_000);
    } finally {
      signal.removeEventListener('abort', stop);
    }
  };

  void (async () => {
    onStatus('connecting');
    while (!signal.aborted) {
      const wait = await once();
      if (!signal.aborted) {
        await sleep(wait);
      }
    }
  })();
}

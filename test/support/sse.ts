/** Reading Server-Sent Events in tests: frames as the server wrote them, parsed. */

/** One SSE event (a frame with an `event:` line), or a bare `id:` frame when `type` is undefined. */
export interface SseEvent {
  id: string | undefined;
  type: string | undefined;
  data: Record<string, unknown>;
}

/** Parses one frame (the lines before a blank line). Comments (`: ping`) give an empty object. */
export function parseFrame(frame: string): SseEvent {
  const fields: Record<string, string> = {};
  for (const line of frame.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) {
      continue;
    }
    fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
  }
  return {
    id: fields.id,
    type: fields.event,
    data: fields.data === undefined ? {} : (JSON.parse(fields.data) as Record<string, unknown>),
  };
}

/** Splits a text/event-stream body into its frames. */
export function splitFrames(body: string): string[] {
  return body.split('\n\n').filter((f) => f.trim() !== '');
}

/** An open GET /v1/events stream. */
export interface SseStream {
  /** The status and headers of the answer. */
  readonly status: number;
  readonly headers: Headers;
  /** Every frame so far, parsed, in order (comments included, as empty events). */
  readonly frames: SseEvent[];
  /** The events so far (frames with an `event:` line). */
  events(): SseEvent[];
  /** The last id the stream gave (what a browser would send as Last-Event-ID). */
  lastId(): string | undefined;
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>;
  /** Closes the connection from the client's side. */
  close(): void;
}

/** Opens `url` (a GET /v1/events URL) and reads its frames as they come. */
export async function openSse(
  url: string,
  options: { token?: string; lastEventId?: string } = {},
): Promise<SseStream> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.token) {
    headers.authorization = `Bearer ${options.token}`;
  }
  if (options.lastEventId) {
    headers['last-event-id'] = options.lastEventId;
  }
  const response = await fetch(url, { headers, signal: controller.signal });
  const frames: SseEvent[] = [];
  let buffer = '';
  const ended = (async () => {
    if (!response.body) {
      return;
    }
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          frames.push(parseFrame(frame));
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    status: response.status,
    headers: response.headers,
    frames,
    events: () => frames.filter((f) => f.type !== undefined),
    lastId: () => [...frames].reverse().find((f) => f.id !== undefined)?.id,
    ended,
    close: () => controller.abort(),
  };
}

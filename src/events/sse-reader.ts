/**
 * Reading GET /v1/events as a client: the text/event-stream format, and a reconnecting loop that
 * resumes after the last id it saw (as a browser's EventSource does), as an async iterable.
 */

/** One event as a client receives it. */
export interface StreamEvent {
  /** The id to resume after (Last-Event-ID). */
  id: string | undefined;
  type: string;
  /** The JSON of the `data:` lines (a string when they are not JSON). */
  data: unknown;
}

/** Options of {@link readEventStream}. */
export interface EventStreamOptions {
  /** Resume after this id instead of starting now. */
  lastEventId?: string;
  /** Ends the iteration (the loop returns). */
  signal?: AbortSignal;
  /**
   * Called each time a connection is in place, with the position it starts at: events after this
   * call are not missed (a follower reads the current state then).
   */
  onOpen?: (id: string | undefined) => void;
  /**
   * Gives up after this long without a connection (the iteration throws the last error).
   * @defaultValue 30000
   */
  giveUpMs?: number;
}

/** How to reach the stream, and how to make the errors the caller's API throws. */
export interface EventStreamTarget {
  url: string;
  token: string | undefined;
  /** The error of an answer with `status` (its body's `error`, when it has one). */
  error(code: string, message: string, status: number, details?: unknown): Error;
}

/** One frame as parsed. */
interface Frame {
  id: string | undefined;
  event: string | undefined;
  data: string | undefined;
  retry: number | undefined;
}

/**
 * Splits text/event-stream text into frames, across chunk boundaries (the format of the HTML standard).
 * A busy stream brings hundreds of frames per chunk, so lines are found with `indexOf` and their fields
 * read in place, without a regular expression or a copy of the rest per line.
 */
export class SseParser {
  /** The start of a line not complete yet. */
  private buffer = '';
  /** The frame being read (once one of its lines was a field). */
  private frame: Frame | undefined;

  /** Feeds a chunk of text; returns the frames it completed. */
  push(chunk: string): Frame[] {
    const text = this.buffer === '' ? chunk : this.buffer + chunk;
    const out: Frame[] = [];
    let start = 0;
    // The next \n and \r at or after `start` (-1: none left), looked up again only once passed.
    let lf = text.indexOf('\n');
    let cr = text.indexOf('\r');
    for (;;) {
      let end: number;
      let next: number;
      if (cr < 0 || (lf >= 0 && lf < cr)) {
        if (lf < 0) {
          break;
        }
        end = lf;
        next = lf + 1;
      } else if (cr === text.length - 1) {
        break; // a lone \r at the end may be the first half of \r\n: wait for the next chunk
      } else {
        end = cr;
        next = lf === cr + 1 ? cr + 2 : cr + 1;
      }
      this.line(text, start, end, out);
      start = next;
      if (lf >= 0 && lf < start) {
        lf = text.indexOf('\n', start);
      }
      if (cr >= 0 && cr < start) {
        cr = text.indexOf('\r', start);
      }
    }
    this.buffer = start === 0 ? text : text.slice(start);
    return out;
  }

  /** Reads the line `text[start, end)`: a field of the current frame, a comment, or the frame's end. */
  private line(text: string, start: number, end: number, out: Frame[]): void {
    if (start === end) {
      if (this.frame) {
        out.push(this.frame);
        this.frame = undefined;
      }
      return;
    }
    if (text.charCodeAt(start) === 58 /* : */) {
      return; // a comment
    }
    let colon = text.indexOf(':', start);
    if (colon >= end) {
      colon = -1;
    }
    const field = text.slice(start, colon < 0 ? end : colon);
    let valueStart = colon < 0 ? end : colon + 1;
    if (valueStart < end && text.charCodeAt(valueStart) === 32 /* space */) {
      valueStart++;
    }
    const value = text.slice(valueStart, end);
    const frame = (this.frame ??= { id: undefined, event: undefined, data: undefined, retry: undefined });
    if (field === 'data') {
      frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
    } else if (field === 'event') {
      frame.event = value;
    } else if (field === 'id' && !value.includes('\0')) {
      frame.id = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) {
      frame.retry = Number(value);
    }
  }
}

/**
 * The events of `target`, as they come, until `signal` fires or the caller stops iterating. A
 * connection that ends or breaks is opened again after the server's `retry` time, resuming after the
 * last id; an error answer (bad filter, wrong token) is thrown.
 */
export async function* readEventStream(
  target: EventStreamTarget,
  options: EventStreamOptions = {},
): AsyncGenerator<StreamEvent> {
  let lastId = options.lastEventId;
  let retryMs = 1000;
  let lastConnected = Date.now();
  let everConnected = false;
  const giveUpMs = options.giveUpMs ?? 30_000;
  for (;;) {
    if (options.signal?.aborted) {
      return;
    }
    const controller = new AbortController();
    const abort = () => controller.abort();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      const body = await connect(target, lastId, controller.signal);
      lastConnected = Date.now();
      everConnected = true;
      const parser = new SseParser();
      const decoder = new TextDecoder();
      let opened = false;
      for await (const chunk of body) {
        for (const frame of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (frame.retry !== undefined) {
            retryMs = frame.retry;
          }
          if (frame.id !== undefined) {
            lastId = frame.id;
            if (!opened) {
              opened = true;
              options.onOpen?.(lastId);
            }
          }
          if (frame.event !== undefined || frame.data !== undefined) {
            yield { id: lastId, type: frame.event ?? 'message', data: parseData(frame.data) };
          }
        }
      }
    } catch (err) {
      if (options.signal?.aborted) {
        return;
      }
      if ((err as { status?: number }).status !== undefined && (err as { status: number }).status !== 0) {
        const status = (err as { status: number }).status;
        if (status !== 503) {
          throw err; // an answer that another try would get again
        }
      }
      // The first connection failing is an answer (a wrong URL); later ones may be a node restarting.
      if (!everConnected || Date.now() - lastConnected > giveUpMs) {
        throw err;
      }
    } finally {
      options.signal?.removeEventListener('abort', abort);
      controller.abort();
    }
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

async function connect(
  target: EventStreamTarget,
  lastId: string | undefined,
  signal: AbortSignal,
): Promise<AsyncIterable<Uint8Array>> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (target.token) {
    headers.authorization = `Bearer ${target.token}`;
  }
  if (lastId !== undefined) {
    headers['last-event-id'] = lastId;
  }
  let response: Response;
  try {
    response = await fetch(target.url, { headers, signal });
  } catch (err) {
    if (signal.aborted) {
      throw err;
    }
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw target.error(
      'UNREACHABLE',
      `cannot reach sprocd at ${new URL(target.url).origin} (${cause}); is it running? (SPROCD_URL)`,
      0,
    );
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let error: { code?: string; message?: string; details?: unknown } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    throw target.error(
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`,
      response.status,
      error?.details,
    );
  }
  return response.body as unknown as AsyncIterable<Uint8Array>;
}

function parseData(data: string | undefined): unknown {
  if (data === undefined) {
    return null;
  }
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}

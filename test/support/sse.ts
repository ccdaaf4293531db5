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

/** Types of ./sse.js (a browser module, also tested under Node). */

/** One parsed event: `event` is "message" when the stream named none. */
export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/** A push parser of an event stream. */
export interface SseParser {
  push(chunk: string): void;
  lastEventId(): string;
}

export function createSseParser(onEvent: (message: SseMessage) => void): SseParser;

/** Status of a followed stream. */
export type SseStatus = 'connecting' | 'live' | 'unavailable' | 'unauthorized';

export function followEvents(options: {
  url: () => string | URL;
  headers: () => Record<string, string>;
  onEvent: (message: SseMessage) => void;
  onStatus: (status: SseStatus) => void;
  signal: AbortSignal;
  /** Resume after this id (from a stream followed before). */
  lastEventId?: string;
}): void;

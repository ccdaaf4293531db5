/**
 * Digests of execution events (GET /v1/events?digest=ms): a client that only reloads what it shows
 * when executions change (the console's lists) gets one `execution.digest` event at most every `ms`
 * instead of three events per execution. Under load that is what an open console costs the node and
 * the operator's browser: a few frames a second instead of tens of thousands.
 *
 * A digest names the latest change of each execution it covers, up to {@link DIGEST_ITEMS} of them;
 * past that it says `more` and only counts, and the client reloads without looking.
 */
import { formatPosition, type Position } from './ids.js';
import type { EventDraft } from './types.js';

/** Executions one digest names at most. */
export const DIGEST_ITEMS = 100;
/** Bounds of `digest=` (ms). */
export const DIGEST_MIN_MS = 100;
export const DIGEST_MAX_MS = 60_000;

/** The latest change of one execution in a digest (the fields the console's filters look at). */
export interface DigestItem {
  type: string;
  number: number;
  procedure?: string;
  state?: string;
}

/** The `data` of an `execution.digest` event. */
export interface DigestData {
  /** Execution events it stands for. */
  count: number;
  /** The latest change of each execution, oldest first (not all when `more`). */
  items: DigestItem[];
  /** More executions changed than `items` names. */
  more: boolean;
}

/** Whether an event is one a digest stands for. */
export function digested(draft: EventDraft): boolean {
  return draft.type.startsWith('execution.');
}

/**
 * The digests of one group of subscribers: gathers their execution events and sends a digest when the
 * last one went `everyMs` ago or more, else once that much time has passed (a timer, if nothing else
 * comes). The digest's id is the hub's position when it goes: every event up to there is in it, or was
 * sent (the group's other events go one by one as they come).
 */
export class DigestSchedule {
  private readonly events = new EventDigest();
  private sentAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly everyMs: number,
    /** The hub's position now. */
    private readonly position: () => Position,
    /** Sends a digest's frame to the group's live subscribers. */
    private readonly send: (frame: string) => void,
  ) {}

  add(draft: EventDraft): void {
    this.events.add(draft);
  }

  /** Sends the digest now if it is due, or arranges for it to go when it is. */
  soon(): void {
    if (this.stopped || this.events.empty || this.timer) {
      return;
    }
    const wait = this.sentAt + this.everyMs - Date.now();
    if (wait <= 0) {
      this.sendNow();
    } else {
      this.timer = setTimeout(() => this.sendNow(), wait);
      this.timer.unref();
    }
  }

  /** The group is gone: nothing more is sent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private sendNow(): void {
    this.timer = undefined;
    if (this.stopped || this.events.empty) {
      return;
    }
    this.sentAt = Date.now();
    this.send(this.events.take(this.position()));
  }
}

/** The execution events gathered for one digest. */
export class EventDigest {
  private count = 0;
  private more = false;
  private readonly items = new Map<number, DigestItem>();

  get empty(): boolean {
    return this.count === 0;
  }

  add(draft: EventDraft): void {
    this.count++;
    const number = draft.number ?? (draft.data.number as number | undefined);
    if (this.more || number === undefined) {
      this.more ||= number === undefined;
      return;
    }
    const known = this.items.get(number);
    if (!known && this.items.size >= DIGEST_ITEMS) {
      this.more = true;
      this.items.clear();
      return;
    }
    const item: DigestItem = { type: draft.type, number };
    const procedure = draft.procedure ?? known?.procedure;
    if (procedure !== undefined) {
      item.procedure = procedure;
    }
    const state = typeof draft.data.state === 'string' ? draft.data.state : known?.state;
    if (state !== undefined) {
      item.state = state;
    }
    // Re-inserted so the map keeps the order of each execution's latest change.
    this.items.delete(number);
    this.items.set(number, item);
  }

  /** The digest's SSE frame at `position` (every event up to there is in it or was sent), and a fresh start. */
  take(position: Position): string {
    const data: DigestData = { count: this.count, items: [...this.items.values()], more: this.more };
    this.count = 0;
    this.more = false;
    this.items.clear();
    return `id: ${formatPosition(position)}\nevent: execution.digest\ndata: ${JSON.stringify(data)}\n\n`;
  }
}

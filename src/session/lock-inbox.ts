/**
 * The inbox reader of one node: grants for this node's waiters arrive in its inbox list (pushed by the
 * lock scripts when they hand a lock on), and one blocking connection reads them, however many waiters
 * the node has. No waiter polls (see docs/ARCHITECTURE.md, "Storage locks and fencing").
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';

/** Most grants one inbox read takes. */
const INBOX_BATCH = 128;

/** Options of {@link LockInbox}. */
export interface LockInboxOptions {
  /** Dedicated connection for the blocking read; the reader owns its loop, not its life. */
  blocking: RedisConnection;
  /** The inbox list's key. */
  inbox: string;
  logger: Logger;
  /** Gets every grant message read, in order (see lock-grant.ts). */
  onMessage(message: string): void;
}

/** Reads a node's inbox until closed. */
export class LockInbox {
  private readonly o: LockInboxOptions;
  private closed = false;
  private loop: Promise<void> | undefined;
  private endRead: (() => void) | undefined;

  constructor(options: LockInboxOptions) {
    this.o = options;
  }

  /** Starts the read loop. */
  start(): void {
    this.loop = this.read();
  }

  /** Ends the read loop and disconnects the blocking connection; the owner closes it after this. */
  async close(): Promise<void> {
    this.closed = true;
    this.endRead?.();
    this.o.blocking.disconnect();
    await this.loop;
  }

  private async read(): Promise<void> {
    const { blocking, inbox } = this.o;
    // disconnect() does not always settle a command queued while the connection was reconnecting,
    // so the loop also ends on its own signal rather than waiting for that.
    const closing = new Promise<null>((resolve) => {
      this.endRead = () => resolve(null);
    });
    // BLMPOP (Redis 7) hands over every grant waiting in the inbox at once, where BLPOP takes one per
    // round trip; with many keys contended across nodes, that round trip was the bottleneck.
    let batch = true;
    while (!this.closed) {
      let messages: string[] | null;
      try {
        const read: Promise<string[] | null> = batch
          ? (
              blocking.call('BLMPOP', 5, 1, inbox, 'LEFT', 'COUNT', INBOX_BATCH) as Promise<
                [string, string[]] | null
              >
            ).then((r) => (r === null ? null : r[1]))
          : blocking.blpop(inbox, 5).then((r) => (r === null ? null : [r[1]]));
        read.catch(() => undefined);
        messages = await Promise.race([read, closing]);
      } catch (err) {
        if (this.closed) {
          break;
        }
        if (batch && err instanceof Error && /unknown command/i.test(err.message)) {
          batch = false; // Redis before 7: one grant per read
          continue;
        }
        this.o.logger.warn({ err }, 'session: inbox read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (messages !== null) {
        for (const message of messages) {
          this.o.onMessage(message);
        }
      }
    }
  }
}

/**
 * A storage lock as its holder has it, and the grant message that hands one to a waiter. The lock
 * scripts' `promote` builds the message "<waiter id>\n<lock value>\n<key as JSON>\n<entry JSON>"
 * (src/redis/lua/includes/promote.lua): it reaches the waiter through its node's inbox (lock-inbox.ts),
 * or in the reply of a commit by the waiter's own node (lock-commit.ts). The entry's JSON travels with
 * the grant so the new holder needs no second round trip to read it.
 */

/** A lock taken by a `use`, with the entry's JSON as it was when the lock was taken. */
export interface HeldLock {
  readonly key: string;
  /** "<fencing token>:<waiter id>": what the lock key must still hold at commit. */
  readonly lockValue: string;
  /** The entry's JSON, or undefined when there is no such entry. */
  readonly json: string | undefined;
  /**
   * With data slots: the token of the commit that last wrote the entry (its slot's versions hash), read
   * with the value; the commit's token is made higher (lockCommit-n.lua), even after the fence counter
   * went back (a fail-over of the `{prefix}` master that lost writes).
   */
  readonly version?: number;
}

/** One grant message, read. */
export interface Grant {
  /** The waiter the lock is granted to. */
  readonly waiterId: string;
  /** The lock it now holds. */
  readonly lock: HeldLock;
}

/**
 * Reads a grant message; undefined when it does not have its four parts. The key travels JSON-encoded,
 * so it holds no raw newline; the entry's JSON comes last, whole, and is empty when there is no entry.
 */
export function parseGrant(message: string): Grant | undefined {
  const a = message.indexOf('\n');
  const b = message.indexOf('\n', a + 1);
  const c = message.indexOf('\n', b + 1);
  if (a < 0 || b < 0 || c < 0) {
    return undefined;
  }
  return {
    waiterId: message.slice(0, a),
    lock: {
      lockValue: message.slice(a + 1, b),
      key: JSON.parse(message.slice(b + 1, c)) as string,
      json: c + 1 < message.length ? message.slice(c + 1) : undefined,
    },
  };
}

/**
 * Who takes a storage lock, for the console's view of the locks (GET /v1/session/entries): the
 * execution (or the console) whose `ctx.session.storage` runs `use`. Each lock waiter id carries
 * a label `<node>~<what>` after the part the lock scripts read (`<node id>.<n>`), so the holder and
 * the waiters of a lock can be named from Redis alone, on any node.
 */

/** Who writes: each execution's `ctx.session` is a view of the session made for it. */
export interface LockOwner {
  /** The execution whose procedure runs. */
  execution?: number;
  /** Another writer: `console`. */
  owner?: string;
}

/** The label of the locks `owner` takes on node `node` (no "\n": waiter ids travel in newline-separated messages). */
export function lockLabel(node: string, owner: LockOwner): string {
  const what =
    owner.execution !== undefined
      ? `e${owner.execution}`
      : owner.owner
        ? encodeURIComponent(owner.owner)
        : '';
  return `${encodeURIComponent(node)}~${what}`;
}

/** A lock holder or waiter, as the console shows it. */
export interface LockParty {
  /** A readable label: `node-a #12`, `node-a console`, or the waiter id when it has no label. */
  owner: string;
  node?: string;
  execution?: number;
}

/** Who a waiter id (`<node id>.<n>[.<label>]`) belongs to. */
export function describeWaiter(waiterId: string): LockParty {
  const first = waiterId.indexOf('.');
  const second = first < 0 ? -1 : waiterId.indexOf('.', first + 1);
  const label = second < 0 ? '' : waiterId.slice(second + 1);
  const tilde = label.indexOf('~');
  if (tilde < 0) {
    return { owner: waiterId };
  }
  try {
    const node = decodeURIComponent(label.slice(0, tilde));
    const what = label.slice(tilde + 1);
    const execution = /^e[1-9]\d*$/.test(what) ? Number(what.slice(1)) : undefined;
    const other = execution === undefined && what !== '' ? decodeURIComponent(what) : undefined;
    const party: LockParty = {
      owner: [node, execution ? `#${execution}` : other].filter(Boolean).join(' '),
      node,
    };
    if (execution !== undefined) {
      party.execution = execution;
    }
    return party;
  } catch {
    return { owner: waiterId };
  }
}

/**
 * Where a node is in its life, and the one rule that says what it serves in each state
 * (docs/ARCHITECTURE.md#a-nodes-life). node.ts applies it to every part it hands out.
 */
import { NotReadyError, StoppingError } from './errors.js';

/** Where a node is in its life. */
export type NodeState = 'starting' | 'ready' | 'stopping' | 'stopped';

/**
 * What a caller wants of the node: `work` starts something new (an execution, a backup, a restore);
 * `read` reads what exists, or aborts or wakes it.
 */
export type Access = 'work' | 'read';

/**
 * Throws unless a node in `state` serves `access`: new work only once the start is done
 * (onServerStartup finished) and until the stop begins (then StoppingError, so a client goes to
 * another node); reads from the end of the start until the node has stopped, so a stopping node
 * still answers about the executions it finishes. NotReadyError otherwise.
 */
export function assertServes(state: NodeState, access: Access): void {
  if (serves(state, access)) {
    return;
  }
  throw access === 'work' && (state === 'stopping' || state === 'stopped')
    ? new StoppingError()
    : new NotReadyError();
}

/** Whether a node in `state` serves `access` (the rule {@link assertServes} explains). */
export function serves(state: NodeState, access: Access): boolean {
  return state === 'ready' || (access === 'read' && state === 'stopping');
}

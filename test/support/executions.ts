/** Waiting in tests for an execution that runs elsewhere (a worker, another node process). */
import { expect, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { ExecutionState, ExecutionView } from '../../src/types.js';

/**
 * Re-reads execution `number` until it is in `state` and returns it. A read that fails (a node that
 * is restarting, Redis that is back a moment later) counts as "not yet", as any other miss does.
 */
export function waitForState(
  client: SprocdClient,
  number: number,
  state: ExecutionState,
  timeoutMs = 15_000,
): Promise<ExecutionView> {
  return vi.waitFor(
    async () => {
      const view = await client.get(number);
      expect(view.state, `state of execution ${number}`).toBe(state);
      return view;
    },
    { timeout: timeoutMs, interval: 25 },
  );
}

import type { ProcedureContext } from 'sprocd';

/** Reports the moment it starts, for the latency benchmark (same process). */
export default async (_params: unknown, ctx: ProcedureContext) => {
  (globalThis as { __benchMark?: (n: number) => void }).__benchMark?.(ctx.process.number);
  return null;
};

import type { ProcedureContext } from 'sprocd';

/** Calls ctx.checkpoint() 100 times: what a long loop's cooperative stop points cost. */
export default async (_params: unknown, ctx: ProcedureContext) => {
  for (let i = 0; i < 100; i++) {
    await ctx.checkpoint();
  }
  return null;
};

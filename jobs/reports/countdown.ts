import type { ProcedureContext } from 'sprocd';

/**
 * A plain async function is a procedure too. Counts down from `params.from` (default 10), one step a
 * second with DELAY PROCESS (`ctx.delay`), reporting progress; `sprocd wake N` skips a step and
 * `sprocd abort N` stops it.
 */
export default async function countdown(params: { from?: number } | null, ctx: ProcedureContext) {
  const from = params?.from ?? 10;
  for (let left = from; left > 0; left--) {
    await ctx.progress(Math.round(((from - left) / from) * 100));
    await ctx.delay(1000);
  }
  await ctx.progress(100);
  return { counted: from, attempt: ctx.process.attempt };
}

import { defineProcedure, z } from 'sprocd';

/** The README's first procedure: checks its params, counts its calls in the session, greets. */
export default defineProcedure({
  description: 'Greets someone and counts the greetings in the session storage',
  params: z.object({ who: z.string().min(1).default('world') }),
  run: async ({ who }, ctx) => {
    const count = await ctx.session.storage.use('greetings', (draft) => {
      draft.count = ((draft.count as number | undefined) ?? 0) + 1;
      return draft.count as number;
    });
    ctx.log.info({ who, count }, 'greeting');
    return { greeting: `Hello, ${who}!`, count, by: ctx.process.number };
  },
});

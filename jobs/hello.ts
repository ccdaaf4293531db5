import { defineProcedure, z } from 'sprocd';

/** The README's first procedure: checks its params, reads the shared config, counts greetings. */
export default defineProcedure({
  description: 'Greets someone and counts the greetings in the session storage',
  params: z.object({ who: z.string().min(1).default('world') }),
  run: async ({ who }, ctx) => {
    // No lock to read: a copy of the entry that onServerStartup wrote.
    const config = await ctx.session.storage.get<{ greeting?: string }>('config');
    // Exclusive across every node: exactly one increment per execution.
    const count = await ctx.session.storage.use('greetings', (draft) => {
      draft.count = ((draft.count as number | undefined) ?? 0) + 1;
      return draft.count as number;
    });
    ctx.log.info({ who, count }, 'greeting');
    return { greeting: `${config?.greeting ?? 'Hello'}, ${who}!`, count, by: ctx.process.number };
  },
});

import { defineProcedure, z } from 'sprocd';

export default defineProcedure({
  description: 'Greets someone and counts the greetings in the session storage',
  params: z.object({ who: z.string().min(1).default('world') }), // checked before anything is queued
  run: async ({ who }, ctx) => {
    // A read takes no lock: a copy of the entry lifecycle/onServerStartup.ts wrote.
    const config = await ctx.session.storage.get<{ greeting?: string }>('config');
    // Only use() writes the storage, exclusively across every node: one increment per execution.
    const count = await ctx.session.storage.use('greetings', (draft) => {
      draft.count = ((draft.count as number | undefined) ?? 0) + 1;
      return draft.count as number;
    });
    return { greeting: `${config?.greeting ?? 'Hello'}, ${who}!`, count, by: ctx.process.number };
  },
});

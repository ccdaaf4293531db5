import { defineProcedure, z } from 'sprocd';

/**
 * A first procedure: `npx sprocd exec hello '{"who":"Ada"}' --wait`. Every file under jobs/ is one;
 * its path without the extension is its name.
 */
export default defineProcedure({
  description: 'Greets someone and counts the greetings in the session storage',
  params: z.object({ who: z.string().min(1).default('world') }),
  run: async ({ who }, ctx) => {
    const config = await ctx.session.storage.get<{ greeting?: string }>('config');
    // Only a use() block writes the storage, exclusively across every node.
    const count = await ctx.session.storage.use('greetings', (draft) => {
      draft.count = ((draft.count as number | undefined) ?? 0) + 1;
      return draft.count as number;
    });
    return { greeting: `${config?.greeting ?? 'Hello'}, ${who}!`, count };
  },
});

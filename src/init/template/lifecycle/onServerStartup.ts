import type { HookContext } from 'sprocd';

/** Runs on every node before it takes work: puts the shared config in the session once. */
export default async function onServerStartup(ctx: HookContext) {
  await ctx.session.storage.use('config', (config) => {
    config.greeting ??= 'Hello';
  });
  ctx.log.info({ session: ctx.session.id }, 'node started');
}

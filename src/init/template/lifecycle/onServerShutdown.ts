import type { HookContext } from 'sprocd';

/** Runs when a node stops (SIGTERM, SIGINT), before its running executions are signalled. */
export default async function onServerShutdown(ctx: HookContext) {
  ctx.log.info({ node: ctx.node }, 'node stopping');
}

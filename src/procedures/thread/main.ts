/**
 * The entry of a procedure's worker thread (loaded by pool.ts's bootstrap): runs one execution at a
 * time, as each `run` message with its MessagePort comes, and answers on that port.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { ProcedureContext } from '../../types.js';
import { serializeError, reviveError, type RunMessage } from './protocol.js';
import { ThreadContext, ThreadLink, strict } from './thread-context.js';

type Run = (params: unknown, ctx: ThreadContext) => unknown;

parentPort?.on('message', (message: RunMessage & { port: MessagePort }) => {
  void runOne(message);
});

async function runOne(message: RunMessage & { port: MessagePort }): Promise<void> {
  const link = new ThreadLink(message.port);
  if (message.aborted) {
    link.controller.abort(reviveError(message.aborted));
  }
  try {
    const run = await runFor(message.url);
    const ctx = new ThreadContext(link, message);
    const seen = strict(ctx, 'ctx');
    let value: unknown;
    try {
      value = await run(message.params, seen);
    } catch (err) {
      // ON ERR CALL, as on the node: not once ctx.signal fired (the interruption decides then).
      const handler = ctx.errCall;
      if (!handler || link.controller.signal.aborted) {
        throw err;
      }
      value = await handler(err, seen as unknown as ProcedureContext);
    }
    try {
      link.post({ t: 'done', ok: true, value: value === undefined ? null : value });
    } catch (err) {
      throw new TypeError(
        `The result cannot cross to the node (${(err as Error).message}); a result must be JSON.`,
      );
    }
  } catch (err) {
    link.post({ t: 'done', ok: false, error: serializeError(err) });
  } finally {
    message.port.close();
  }
}

/**
 * The modules this thread loaded, by URL: an `import()` of a loaded module still asks the loader's
 * hooks to resolve it, a round trip to the loader's thread for every execution.
 */
const loaded = new Map<string, Promise<Run>>();

function runFor(url: string): Promise<Run> {
  let run = loaded.get(url);
  if (!run) {
    run = import(url).then((mod: { default?: unknown }) => runOf(mod.default));
    loaded.set(url, run);
    // A module that failed to load is tried again by the next execution.
    run.catch(() => loaded.delete(url));
  }
  return run;
}

/** The run function of a procedure module's default export (as the node's registry accepts it). */
function runOf(exported: unknown): Run {
  if (typeof exported === 'function') {
    return exported as Run;
  }
  const run = (exported as { run?: unknown } | null | undefined)?.run;
  if (typeof run === 'function') {
    return run as Run;
  }
  throw new TypeError('The procedure module has no run function in its default export.');
}

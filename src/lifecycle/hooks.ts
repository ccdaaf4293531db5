/**
 * The lifecycle hooks from lifecycle/: loaded like procedures, each run inside the stored-procedure
 * session with the same context shape as a procedure's (session, log, signal).
 */
import type { Logger } from 'pino';
import { ModuleLoadError } from '../errors.js';
import { importDefault, listModules } from '../modules.js';
import type { HookContext } from '../types.js';

/** The hooks 4D calls database methods, by their file names. */
const HOOK_NAMES = [
  'onServerStartup',
  'onServerShutdown',
  'onBackupStartup',
  'onBackupShutdown',
  'onSystemEvent',
  'onError',
] as const;

/** One of {@link HOOK_NAMES}. */
export type HookName = (typeof HOOK_NAMES)[number];

/** What each hook gets after ctx, as its load error shows it. */
const HOOK_ARGUMENTS: Record<HookName, string> = {
  onServerStartup: '',
  onServerShutdown: '',
  onBackupStartup: '',
  onBackupShutdown: ', status',
  onSystemEvent: ', event',
  onError: ', { execution, error }',
};

type HookFunction = (ctx: HookContext, ...args: unknown[]) => unknown;

/** The loaded hooks; a missing hook is simply not called. */
export class LifecycleHooks {
  private hooks = new Map<HookName, HookFunction>();
  private generation = 0;

  constructor(private readonly dir: string) {}

  /** Loads (or reloads) lifecycle/. An unknown file name or a bad export stops the start. */
  async load(): Promise<void> {
    const next = new Map<HookName, HookFunction>();
    const generation = this.generation++;
    for (const { name, file } of listModules(this.dir)) {
      if (!(HOOK_NAMES as readonly string[]).includes(name)) {
        throw new ModuleLoadError(file, `is not a lifecycle hook; the hooks are ${HOOK_NAMES.join(', ')}`);
      }
      if (next.has(name as HookName)) {
        throw new ModuleLoadError(file, `hook "${name}" is defined by two files`);
      }
      const exported = await importDefault(file, generation);
      if (typeof exported !== 'function') {
        throw new ModuleLoadError(
          file,
          `default export must be an async function (ctx${HOOK_ARGUMENTS[name as HookName]}) => ...`,
        );
      }
      next.set(name as HookName, exported as HookFunction);
    }
    this.hooks = next;
  }

  /** Whether the hook exists. */
  has(name: HookName): boolean {
    return this.hooks.has(name);
  }

  /**
   * Runs hook `name` with the ctx `context` builds for its logger (`parent.child({ hook: name })`),
   * logs 'hook done' or 'hook threw' with its duration, and returns what it returned; rethrows what
   * it threw. A missing hook returns undefined (and logs nothing).
   */
  async run(
    name: HookName,
    parent: Logger,
    context: (log: Logger) => HookContext,
    ...args: unknown[]
  ): Promise<unknown> {
    const hook = this.hooks.get(name);
    if (!hook) {
      return undefined;
    }
    const log = parent.child({ hook: name });
    const started = Date.now();
    try {
      const result = await hook(context(log), ...args);
      log.info({ durationMs: Date.now() - started }, 'hook done');
      return result;
    } catch (err) {
      log.error({ err, durationMs: Date.now() - started }, 'hook threw');
      throw err;
    }
  }
}

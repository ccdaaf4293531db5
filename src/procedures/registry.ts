/**
 * The procedure registry: every module under jobs/, loaded once at start (and again on SIGHUP)
 * into a map from name to procedure. A bad file stops the start with its path and the reason.
 */
import { z } from 'zod';
import { ModuleLoadError } from '../errors.js';
import type { ProcedureCounts } from '../stats/procedure-counts.js';
import { importDefault, listModules, moduleUrl } from '../modules.js';
import { PROCEDURE_MARK, type ProcedureDefinition } from './define.js';
import { assertProcedureName } from './names.js';

/** A loaded procedure. */
export interface LoadedProcedure extends ProcedureDefinition<unknown, unknown> {
  name: string;
  file: string;
  /** The URL its module was imported from (a reload's is new): a thread procedure's thread imports it too. */
  url: string;
}

/** What GET /v1/procedures shows of one procedure. */
export interface ProcedureListing {
  name: string;
  description?: string;
  params?: unknown;
  attempts?: number;
  timeoutMs?: number;
  /** `at-most-once` when it never runs twice (absent: at-least-once). */
  delivery?: 'at-most-once';
  /** Its schedule with the next ticks (added by the node, which checks the schedules). */
  schedule?: { cron: string; tz?: string; next: string[] };
  /** Its executions: ended in the last hour, and waiting/active/delayed now (added by the node). */
  counts?: ProcedureCounts;
  /** failed / (completed + failed) over the last hour in the cluster; null when none ended. */
  failureRate?: number | null;
}

/** Name → procedure, swapped whole on reload so lookups never see a half-loaded set. */
export class ProcedureRegistry {
  private procedures = new Map<string, LoadedProcedure>();
  private generation = 0;

  constructor(private readonly dir: string) {}

  /** Loads (or reloads) every module under the jobs folder. Throws ModuleLoadError on the first bad one. */
  async load(): Promise<void> {
    const next = new Map<string, LoadedProcedure>();
    const generation = this.generation++;
    for (const { name, file } of listModules(this.dir)) {
      try {
        assertProcedureName(name);
      } catch (err) {
        throw new ModuleLoadError(file, (err as Error).message);
      }
      if (next.has(name)) {
        throw new ModuleLoadError(
          file,
          `another file also defines procedure "${name}" (${next.get(name)?.file})`,
        );
      }
      const url = moduleUrl(file, generation);
      next.set(name, { ...toDefinition(file, await importDefault(file, generation)), name, file, url });
    }
    this.procedures = next;
  }

  /** The procedure of that name, or undefined. */
  get(name: string): LoadedProcedure | undefined {
    return this.procedures.get(name);
  }

  /** Names of all procedures. */
  names(): string[] {
    return [...this.procedures.keys()];
  }

  /** All procedures with their params as JSON Schema. */
  list(): ProcedureListing[] {
    return [...this.procedures.values()].map((p) => {
      const listing: ProcedureListing = { name: p.name };
      if (p.description) {
        listing.description = p.description;
      }
      if (p.attempts !== undefined) {
        listing.attempts = p.attempts;
      }
      if (p.timeoutMs !== undefined) {
        listing.timeoutMs = p.timeoutMs;
      }
      if (p.delivery === 'at-most-once') {
        listing.delivery = 'at-most-once';
      }
      if (p.params) {
        try {
          // The INPUT: what a caller may send (a field with a default is optional), not what run() gets.
          listing.params = z.toJSONSchema(p.params as z.ZodType, { unrepresentable: 'any', io: 'input' });
        } catch {
          listing.params = {};
        }
      }
      return listing;
    });
  }
}

function toDefinition(file: string, exported: unknown): ProcedureDefinition<unknown, unknown> {
  if (typeof exported === 'function') {
    return { run: exported as ProcedureDefinition<unknown, unknown>['run'] };
  }
  if (typeof exported === 'object' && exported !== null && PROCEDURE_MARK in exported) {
    return exported as unknown as ProcedureDefinition<unknown, unknown>;
  }
  if (
    typeof exported === 'object' &&
    exported !== null &&
    typeof (exported as { run?: unknown }).run === 'function'
  ) {
    throw new ModuleLoadError(
      file,
      'default export has run() but was not made by defineProcedure; wrap it: export default defineProcedure({...})',
    );
  }
  throw new ModuleLoadError(
    file,
    `default export is ${exported === null ? 'null' : typeof exported}; export default an async function (params, ctx) => result, or defineProcedure({...})`,
  );
}

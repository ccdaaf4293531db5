/**
 * Loading user modules (jobs/ and lifecycle/) as they are: .ts and .mts through tsx's loader, so
 * a user writes TypeScript and runs no build step.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ModuleLoadError } from './errors.js';

/** File extensions a module may have. */
const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'] as const;

let tsxRegistered = false;

/** Registers tsx's ESM loader once per process, so `import()` of a .ts file works on plain Node. */
async function ensureTypeScriptLoader(): Promise<void> {
  if (tsxRegistered || process.env.VITEST) {
    // vitest transforms TypeScript itself; a second loader would only slow it down.
    tsxRegistered = true;
    return;
  }
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
}

/** A module file found under a folder, with its name (path without the extension, "/"-separated). */
export interface ModuleFile {
  name: string;
  file: string;
}

/** Lists module files under `dir`, recursively, sorted by name; a missing folder lists nothing. */
export function listModules(dir: string): ModuleFile[] {
  const out: ModuleFile[] = [];
  const walk = (folder: string, prefix: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(folder, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return;
      }
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') {
        continue;
      }
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        walk(full, `${prefix}${entry.name}/`);
        continue;
      }
      const ext = MODULE_EXTENSIONS.find((e) => entry.name.endsWith(e));
      if (!ext || entry.name.endsWith('.d.ts') || entry.name.endsWith('.d.mts')) {
        continue;
      }
      out.push({ name: prefix + entry.name.slice(0, -ext.length), file: full });
    }
  };
  walk(dir, '');
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The URL `file` is imported from at reload `generation` (a query busts the ESM cache). */
export function moduleUrl(file: string, generation: number): string {
  return `${pathToFileURL(file).href}${generation > 0 ? `?v=${generation}` : ''}`;
}

/**
 * Imports `file` and returns its default export. `generation` busts the ESM cache, so that a reload
 * (SIGHUP) gets the file's new code while running executions keep the old.
 */
export async function importDefault(file: string, generation: number): Promise<unknown> {
  await ensureTypeScriptLoader();
  const url = moduleUrl(file, generation);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new ModuleLoadError(file, `failed to load: ${reason}`, err);
  }
  if (!('default' in mod) || mod.default === undefined) {
    throw new ModuleLoadError(
      file,
      'has no default export (export default an async function or defineProcedure({...}))',
    );
  }
  return mod.default;
}

/**
 * `sprocd init DIR`: a user's own project with the same setup as this repository's (procedures,
 * hooks, an image that installs the project's dependencies, compose with Redis), depending on the
 * sprocd that wrote it. The files come from ./template/, except package.json and tsconfig.json, which
 * name this sprocd's version and its compiler settings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TEMPLATE_DIR = fileURLToPath(new URL('./template/', import.meta.url));
const OWN_PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

// npm pack leaves out or renames dotfiles such as .gitignore, so the template stores them without the dot.
const DOTTED = new Set(['gitignore', 'dockerignore']);

/** Options of {@link initProject}. */
export interface InitOptions {
  /** Write into a folder that already has files, replacing the ones sprocd writes. */
  force?: boolean;
}

/** Raised when the target folder is not empty and `force` was not given; the CLI prints the message. */
export class InitRefusedError extends Error {
  /** Stable code for scripts. */
  readonly code = 'DIR_NOT_EMPTY';
}

interface OwnPackage {
  version: string;
  devDependencies?: Record<string, string>;
}

/**
 * Writes a new project into `dir` (created when missing) and returns the files written, relative to
 * `dir`, in order. Refuses a folder that has entries unless `force` is set.
 */
export function initProject(dir: string, options: InitOptions = {}): string[] {
  const target = path.resolve(dir);
  const existing = fs.existsSync(target) ? fs.readdirSync(target) : [];
  if (existing.length > 0 && options.force !== true) {
    const shown = existing.slice(0, 5).join(', ') + (existing.length > 5 ? ', …' : '');
    throw new InitRefusedError(
      `${target} is not empty (${shown}); choose an empty folder, or pass --force to write into it`,
    );
  }
  const own = JSON.parse(fs.readFileSync(OWN_PACKAGE, 'utf8')) as OwnPackage;
  const files = new Map<string, string>([
    ['package.json', json(projectPackage(path.basename(target), own))],
    ['tsconfig.json', json(PROJECT_TSCONFIG)],
  ]);
  for (const rel of templateFiles(TEMPLATE_DIR)) {
    const base = path.basename(rel);
    const name = DOTTED.has(base) ? path.join(path.dirname(rel), `.${base}`) : rel;
    files.set(name, fs.readFileSync(path.join(TEMPLATE_DIR, rel), 'utf8'));
  }
  for (const [name, text] of files) {
    const file = path.join(target, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  return [...files.keys()];
}

function projectPackage(folderName: string, own: OwnPackage): Record<string, unknown> {
  const devDependency = (name: string): string => own.devDependencies?.[name] ?? 'latest';
  return {
    name: packageName(folderName),
    version: '0.1.0',
    private: true,
    type: 'module',
    engines: { node: '>=24' },
    scripts: { start: 'sprocd start', typecheck: 'tsc --noEmit' },
    dependencies: { sprocd: `^${own.version}` },
    devDependencies: { '@types/node': devDependency('@types/node'), typescript: devDependency('typescript') },
  };
}

const PROJECT_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
  },
  include: ['jobs', 'lifecycle'],
};

/** A valid npm package name from a folder name: lower case, other characters as dashes. */
function packageName(folderName: string): string {
  const name = folderName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[._-]+|-+$/g, '');
  return name === '' ? 'sprocd-project' : name.slice(0, 214);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Every file under `dir`, relative to it, sorted so the output is the same on every machine. */
function templateFiles(dir: string, prefix = ''): string[] {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const rel = path.join(prefix, entry.name);
      return entry.isDirectory() ? templateFiles(dir, rel) : [rel];
    });
}

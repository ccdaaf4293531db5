/**
 * Scopes: what a caller may do. `read` (every GET), `execute` (queue executions, optionally of some
 * procedures only: `execute:reports/*`), `control` (abort, wake, retry, remove, bulk actions), `storage:write`
 * (storage edits), `admin` (backups, restore, schedules, the audit trail). Which route needs which
 * scope is one table, ./route-scopes.ts.
 */

/** Every scope, in the order the README lists them. */
export const SCOPES = ['read', 'execute', 'control', 'storage:write', 'admin'] as const;

/** One of {@link SCOPES}. */
export type Scope = (typeof SCOPES)[number];

/** Longest procedure pattern of an `execute:` scope (a procedure name is at most 200 characters). */
const PATTERN_MAX = 200;

/** A procedure pattern: segments of A-Z a-z 0-9 _ - and `*` joined by "/", or `**` for any depth. */
const PATTERN = /^(?:\*\*|[A-Za-z0-9_*-]+)(?:\/(?:\*\*|[A-Za-z0-9_*-]+))*$/;

/** Whether `text` names a scope. */
export function isScope(text: string): text is Scope {
  return (SCOPES as readonly string[]).includes(text);
}

/**
 * `*` matches within one segment of a procedure name (`reports/*` takes `reports/daily`, not
 * `reports/eu/daily`), `**` any number of segments (`reports/**`). Compiled once per caller.
 */
function patternToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('/')
    .map((segment) => (segment === '**' ? '[^/]+(?:/[^/]+)*' : segment.replaceAll('*', '[^/]*')))
    .join('/');
  return new RegExp(`^${body}$`);
}

/** Why `text` is not a scope, or undefined when it is one (`execute:PATTERN` included). */
export function scopeProblem(text: string): string | undefined {
  if (isScope(text)) {
    return undefined;
  }
  if (text.startsWith('execute:')) {
    const pattern = text.slice('execute:'.length);
    if (pattern.length === 0 || pattern.length > PATTERN_MAX || !PATTERN.test(pattern)) {
      return `bad procedure pattern in "${text}": use a procedure name with * (one segment) or ** (any depth), e.g. execute:reports/*`;
    }
    return undefined;
  }
  return `unknown scope "${text}" (scopes: ${SCOPES.join(', ')}, or execute:PATTERN)`;
}

/** What a caller may do: its scopes, and for `execute` the procedures it may queue. */
export class Grants {
  private readonly scopes: ReadonlySet<Scope>;
  /** undefined: every procedure (a bare `execute`); else the patterns it may queue. */
  private readonly procedures: readonly RegExp[] | undefined;

  /** From scope texts as a callers file lists them; throws on one {@link scopeProblem} refuses. */
  constructor(texts: Iterable<string>) {
    const scopes = new Set<Scope>();
    const patterns: RegExp[] = [];
    let everyProcedure = false;
    for (const text of texts) {
      const problem = scopeProblem(text);
      if (problem) {
        throw new TypeError(problem);
      }
      if (text === 'execute') {
        everyProcedure = true;
      }
      if (isScope(text)) {
        scopes.add(text);
      } else {
        scopes.add('execute');
        patterns.push(patternToRegExp(text.slice('execute:'.length)));
      }
    }
    this.scopes = scopes;
    this.procedures = everyProcedure ? undefined : patterns;
  }

  /** Every scope, every procedure: SPROCD_TOKEN's caller, and a loopback node without a token. */
  static all(): Grants {
    return new Grants(SCOPES);
  }

  /** Whether it holds `scope` (`execute` limited to some procedures counts). */
  has(scope: Scope): boolean {
    return this.scopes.has(scope);
  }

  /** Whether it may queue procedure `name`. */
  allowsProcedure(name: string): boolean {
    if (!this.scopes.has('execute')) {
      return false;
    }
    return this.procedures === undefined || this.procedures.some((p) => p.test(name));
  }
}

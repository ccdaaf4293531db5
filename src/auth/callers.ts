/**
 * Who is calling: the bearer token of a request → a named caller with its grants. The callers are
 * SPROCD_TOKEN (one caller with every right) and those of the callers file (SPROCD_CALLERS_FILE),
 * re-read on SIGHUP. A node with neither has one caller, `loopback`, with every right; the API then
 * answers loopback, same-origin requests only (src/api/auth.ts).
 */
import type { Logger } from 'pino';
import { UnauthorizedError } from '../errors.js';
import { LOOPBACK_CALLER, TOKEN_CALLER, readCallersFile } from './callers-file.js';
import { Grants } from './scopes.js';
import { DigestTable, tokenDigest } from './tokens.js';

/** A caller: its name (the audit trail's, and the key of per-caller limits) and what it may do. */
export interface Caller {
  readonly name: string;
  readonly grants: Grants;
}

/** Where the callers come from. */
export interface CallerSources {
  /** SPROCD_TOKEN. */
  readonly token?: string | undefined;
  /** SPROCD_CALLERS_FILE (an absolute path). */
  readonly file?: string | undefined;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The callers a node knows, and the check of a request's `Authorization` header against them. */
export class CallerDirectory {
  private table: DigestTable<Caller>;
  private readonly loopback: Caller | undefined;

  /** Reads the callers file now (ConfigError when it is unreadable or bad). */
  constructor(private readonly sources: CallerSources) {
    this.loopback =
      sources.token === undefined && sources.file === undefined
        ? { name: LOOPBACK_CALLER, grants: Grants.all() }
        : undefined;
    this.table = this.read();
  }

  /** Whether the node has no token at all: it then answers loopback, same-origin requests only. */
  get open(): boolean {
    return this.loopback !== undefined;
  }

  /** Whether callers come from a file (SPROCD_CALLERS_FILE), which SIGHUP reads again. */
  get hasFile(): boolean {
    return this.sources.file !== undefined;
  }

  /** How many callers have a token (SPROCD_TOKEN's included). */
  get size(): number {
    return this.table.size;
  }

  /**
   * Reads the callers file again (SIGHUP). On a problem it throws ConfigError and the callers read
   * before stay in use. Returns how many callers have a token now.
   */
  reload(): number {
    this.table = this.read();
    return this.table.size;
  }

  /**
   * The caller of a request with this `Authorization` header. Throws UnauthorizedError when the
   * header is missing, malformed, or carries a token no caller has.
   */
  authenticate(header: string | undefined): Caller {
    if (this.loopback) {
      return this.loopback;
    }
    if (header === undefined || header === '') {
      throw new UnauthorizedError(
        'This node needs "Authorization: Bearer <token>" (SPROCD_TOKEN or a caller\'s).',
      );
    }
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      throw new UnauthorizedError('The Authorization header must be "Bearer <token>".');
    }
    const caller = this.table.find(token);
    if (caller === undefined) {
      throw new UnauthorizedError('Wrong token.');
    }
    return caller;
  }

  private read(): DigestTable<Caller> {
    const entries: { digest: Buffer; value: Caller }[] = [];
    if (this.sources.token !== undefined) {
      entries.push({
        digest: tokenDigest(this.sources.token),
        value: { name: TOKEN_CALLER, grants: Grants.all() },
      });
    }
    if (this.sources.file !== undefined) {
      for (const entry of readCallersFile(this.sources.file)) {
        entries.push({
          digest: Buffer.from(entry.tokenSha256, 'hex'),
          value: { name: entry.name, grants: new Grants(entry.scopes) },
        });
      }
    }
    return new DigestTable(entries);
  }
}

/**
 * Reads the callers file again (SIGHUP) and logs the outcome. A bad file is logged and the callers
 * read before stay in use: a typo must not lock everyone out, nor let anyone in.
 */
export function reloadCallers(callers: CallerDirectory, log: Logger): void {
  if (!callers.hasFile) {
    return;
  }
  try {
    log.info({ callers: callers.reload() }, 'callers file reloaded');
  } catch (err) {
    log.error({ reason: (err as Error).message }, 'callers file not reloaded; the previous callers stay');
  }
}

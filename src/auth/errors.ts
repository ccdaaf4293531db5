/** The refusals of callers and browsers (403); an unknown token is UnauthorizedError (401, src/errors.ts). */
import { SprocdError } from '../errors.js';

/** A known caller without the scope a route needs; `details.scope` names the one it lacks. */
export class ForbiddenError extends SprocdError {
  constructor(caller: string, scope: string, what: string) {
    super('FORBIDDEN', `Caller "${caller}" lacks the scope "${scope}" (${what}).`, {
      details: { caller, scope },
    });
  }
}

/** A node without a token answers requests addressed to a loopback host only (DNS rebinding). */
export class HostNotAllowedError extends SprocdError {
  constructor() {
    super(
      'HOST_NOT_ALLOWED',
      'This node has no token and answers only requests addressed to a loopback host (localhost, 127.0.0.1, [::1]); set SPROCD_TOKEN to serve other names.',
    );
  }
}

/** A node without a token refuses requests a web page of another origin makes (CSRF). */
export class CrossSiteRequestError extends SprocdError {
  constructor(why: string) {
    super(
      'CROSS_SITE_REQUEST',
      `This node has no token and refuses requests from other sites (${why}); set SPROCD_TOKEN to call it from a browser page of another origin.`,
    );
  }
}

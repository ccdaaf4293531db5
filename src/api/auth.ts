/** Bearer-token check for /v1, compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from '../errors.js';

/** A checker for `Authorization` headers against `token`; without a token every request passes. */
export function bearerChecker(token: string | undefined): (header: string | undefined) => void {
  if (token === undefined) {
    return () => undefined;
  }
  // Digests have one length, so timingSafeEqual never throws and the length leaks nothing.
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    if (header === undefined || header === '') {
      throw new UnauthorizedError('This node needs "Authorization: Bearer <SPROCD_TOKEN>".');
    }
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match?.[1]) {
      throw new UnauthorizedError('The Authorization header must be "Bearer <SPROCD_TOKEN>".');
    }
    const given = createHash('sha256').update(match[1]).digest();
    if (!timingSafeEqual(given, expected)) {
      throw new UnauthorizedError('Wrong token.');
    }
  };
}

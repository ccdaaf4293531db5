/**
 * Redis trouble as the storage's callers see it: the lock protocol, the storage reads and the session's
 * opening turn a connection-level failure of ioredis into RedisUnavailableError, so a `use` fails with
 * 503 REDIS_UNAVAILABLE while Redis is away instead of a 500 (see docs/ARCHITECTURE.md, "Storage locks
 * and fencing", Redis restarts).
 */
import { RedisUnavailableError, SprocdError } from '../errors.js';
import { isRedisError } from '../redis/errors.js';

/** Maps connection-level failures of ioredis to RedisUnavailableError; leaves anything else alone. */
export function mapRedisError(err: unknown): unknown {
  return err instanceof Error && !(err instanceof SprocdError) && isRedisError(err)
    ? new RedisUnavailableError(err)
    : err;
}

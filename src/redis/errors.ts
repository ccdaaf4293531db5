/** Recognising Redis trouble, so it becomes 503 REDIS_UNAVAILABLE instead of a 500. */
import { RedisUnavailableError } from '../errors.js';

/** Whether `err` means Redis is unreachable, closed or too slow. */
export function isRedisError(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) {
    return true;
  }
  if (!(err instanceof Error)) {
    return false;
  }
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /timed out|Connection is closed|MaxRetriesPerRequest|ECONNREFUSED|ECONNRESET|Stream isn't writeable|enableOfflineQueue|Reached the max retries|Connection timeout/i.test(
      err.message,
    ) ||
    // A Redis Cluster while a master's replica takes over: its nodes answer CLUSTERDOWN or send the
    // client to the dead master (MOVED) until the election ends, and ioredis gives up after a while.
    /^(CLUSTERDOWN|TRYAGAIN)\b|Too many Cluster redirections|Cluster isn't ready|Failed to refresh slots cache|None of startup nodes is available/.test(
      err.message,
    )
  );
}

/** Runs `work`, failing with RedisUnavailableError when it takes longer than `ms`. */
export async function withRedisTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RedisUnavailableError()), ms);
      }),
    ]);
  } catch (err) {
    if (isRedisError(err) && !(err instanceof RedisUnavailableError)) {
      throw new RedisUnavailableError(err);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

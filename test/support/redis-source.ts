/** Where the tests get Redis from, in order of preference (README: "Where the tests get Redis"). */
export type RedisSource = 'url' | 'redis-server' | 'testcontainers' | 'none';

const CHOSEN_BY_NAME: readonly RedisSource[] = ['url', 'redis-server', 'testcontainers'];

/**
 * Picks the Redis for a test run: the source named by SPROCD_TEST_REDIS when set (CI runs the core
 * files once with `testcontainers` on a machine that also has redis-server), else REDIS_URL, else
 * redis-server from PATH, else a Docker container.
 */
export function chooseRedisSource(probe: {
  named?: string | undefined;
  redisUrl: string | undefined;
  hasRedisServer: boolean;
  hasDocker: () => boolean;
}): RedisSource {
  if (probe.named !== undefined && probe.named !== '') {
    const named = CHOSEN_BY_NAME.find((source) => source === probe.named);
    if (named === undefined) {
      throw new Error(`SPROCD_TEST_REDIS is ${probe.named}; use one of ${CHOSEN_BY_NAME.join(', ')}`);
    }
    return named;
  }
  if (probe.redisUrl !== undefined && probe.redisUrl !== '') {
    return 'url';
  }
  if (probe.hasRedisServer) {
    return 'redis-server';
  }
  return probe.hasDocker() ? 'testcontainers' : 'none';
}

/** Where the tests get Redis from, in order of preference (README: "Where the tests get Redis"). */
export type RedisSource = 'url' | 'redis-server' | 'testcontainers' | 'none';

/** Picks the Redis for a test run: REDIS_URL, else redis-server from PATH, else a Docker container. */
export function chooseRedisSource(probe: {
  redisUrl: string | undefined;
  hasRedisServer: boolean;
  hasDocker: () => boolean;
}): RedisSource {
  if (probe.redisUrl !== undefined && probe.redisUrl !== '') {
    return 'url';
  }
  if (probe.hasRedisServer) {
    return 'redis-server';
  }
  return probe.hasDocker() ? 'testcontainers' : 'none';
}

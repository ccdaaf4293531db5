/**
 * The rules between the Redis settings of a Sentinel deployment (src/config.ts runs them once each
 * setting passed its own check): SPROCD_SENTINELS and SPROCD_SENTINEL_MASTER, SPROCD_SENTINEL_PASSWORD,
 * REDIS_URL and SPROCD_REPLICA_ACKS.
 */
import { formatSentinelUrl, isSentinelUrl, parseAddress, parseSentinelUrl } from './sentinel-url.js';

/** The settings these rules read (a setting that failed its own check is undefined). */
export interface SentinelSettings {
  redisUrl: string | undefined;
  sentinels: string | undefined;
  sentinelMaster: string | undefined;
  sentinelPassword: string | undefined;
  replicaAcks: number;
}

/**
 * The Sentinel settings: SPROCD_SENTINELS with SPROCD_SENTINEL_MASTER become a `redis+sentinel://`
 * REDIS_URL (so every connection is made from one URL), and SPROCD_SENTINEL_PASSWORD goes into
 * whichever Sentinel URL there is.
 */
export function sentinelRules(s: SentinelSettings, problems: string[]): void {
  if (problems.some((p) => p.startsWith('REDIS_URL') || p.startsWith('SPROCD_SENTINEL'))) {
    return; // what to combine is already wrong
  }
  if (s.sentinels !== undefined || s.sentinelMaster !== undefined) {
    if (s.sentinels === undefined || s.sentinelMaster === undefined) {
      problems.push(
        'SPROCD_SENTINELS and SPROCD_SENTINEL_MASTER: give both (the sentinels and the master group name)',
      );
      return;
    }
    if (s.redisUrl !== undefined) {
      problems.push(
        'REDIS_URL: give either REDIS_URL or SPROCD_SENTINELS (a Sentinel REDIS_URL is redis+sentinel://host:26379,.../master)',
      );
      return;
    }
    s.redisUrl = formatSentinelUrl({
      sentinels: s.sentinels.split(',').map((a) => parseAddress(a)),
      name: s.sentinelMaster,
      db: 0,
      tls: false,
    });
  }
  if (s.sentinelPassword !== undefined) {
    if (s.redisUrl === undefined || !isSentinelUrl(s.redisUrl)) {
      problems.push('SPROCD_SENTINEL_PASSWORD: needs SPROCD_SENTINELS or a redis+sentinel:// REDIS_URL');
      return;
    }
    s.redisUrl = formatSentinelUrl({ ...parseSentinelUrl(s.redisUrl), sentinelPassword: s.sentinelPassword });
  }
  if (s.replicaAcks > 0 && s.redisUrl === undefined) {
    problems.push(
      'SPROCD_REPLICA_ACKS: needs REDIS_URL, SPROCD_SENTINELS or SPROCD_CLUSTER_NODES (the embedded Redis has no replicas)',
    );
  }
}

/**
 * The rule between SPROCD_CLUSTER_NODES and the other Redis settings (src/config.ts runs it once each
 * setting passed its own check, before the Sentinel rules of ./sentinel-settings.ts).
 */
import { CLUSTER_NODE, formatClusterUrl } from './cluster-url.js';
import { parseAddress } from './sentinel-url.js';

/** The settings this rule reads (a setting that failed its own check is undefined). */
export interface ClusterSettings {
  redisUrl: string | undefined;
  clusterNodes: string | undefined;
  sentinels: string | undefined;
}

/**
 * SPROCD_CLUSTER_NODES becomes a `redis+cluster://` REDIS_URL, so that every connection is made from
 * one URL; it stands instead of REDIS_URL and of SPROCD_SENTINELS, never beside them.
 */
export function clusterRules(s: ClusterSettings, problems: string[]): void {
  if (s.clusterNodes === undefined || problems.some((p) => p.startsWith('SPROCD_CLUSTER_NODES'))) {
    return;
  }
  if (s.redisUrl !== undefined || s.sentinels !== undefined) {
    problems.push(
      'SPROCD_CLUSTER_NODES: give either SPROCD_CLUSTER_NODES, REDIS_URL or SPROCD_SENTINELS (a Cluster REDIS_URL is redis+cluster://host:6379,...)',
    );
    return;
  }
  s.redisUrl = formatClusterUrl({
    nodes: s.clusterNodes.split(',').map((a) => parseAddress(a, CLUSTER_NODE)),
    tls: false,
  });
}

/**
 * Settings: environment variables → one typed, validated object. Every default lives here, and a bad
 * value stops the start with a message that names the variable (one line per bad setting). The file
 * is long because every setting's variable, rule and default stand in its one table, and the rules
 * that tie settings together beside it.
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { ConfigError, formatZodError } from './errors.js';
import { clusterRules } from './redis/cluster-settings.js';
import { CLUSTER_NODE, isClusterUrl, parseClusterUrl, redactClusterUrl } from './redis/cluster-url.js';
import { isUnixUrl, parseUnixUrl } from './redis/unix-url.js';
import { sentinelRules } from './redis/sentinel-settings.js';
import { isSentinelUrl, parseAddress, parseSentinelUrl, redactSentinelUrl } from './redis/sentinel-url.js';
import type { AddressKind } from './redis/sentinel-url.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Typed settings of one node; each names its variable (defaults in SCHEMA below). */
export interface Settings {
  /**
   * `REDIS_URL` (`redis://`, `rediss://`, `redis+sentinel://` / `rediss+sentinel://` naming the
   * sentinels and the master group, or `redis+cluster://` / `rediss+cluster://` naming startup nodes of
   * a Redis Cluster), or the URL the `SPROCD_SENTINELS` or `SPROCD_CLUSTER_NODES` settings make;
   * undefined starts the embedded redis-server.
   */
  redisUrl: string | undefined;
  /** `SPROCD_CLUSTER_NODES`: `host:port,host:port` of Redis Cluster nodes (instead of a Cluster REDIS_URL). */
  clusterNodes: string | undefined;
  /** `SPROCD_SENTINELS`: `host:port,host:port` of the sentinels (instead of a Sentinel REDIS_URL). */
  sentinels: string | undefined;
  /** `SPROCD_SENTINEL_MASTER`: the master group name, with SPROCD_SENTINELS. */
  sentinelMaster: string | undefined;
  /** `SPROCD_SENTINEL_PASSWORD` (a secret): the sentinels' password, with either Sentinel form. */
  sentinelPassword: string | undefined;
  /** `SPROCD_STORAGE_SLOTS`: data slots of the session storage's entries (1: one hash under `{prefix}`). */
  storageSlots: number;
  /** `SPROCD_REPLICA_ACKS`: replicas that must have a write before it is acknowledged (Redis WAIT; 0: none). */
  replicaAcks: number;
  /** `SPROCD_REPLICA_ACK_TIMEOUT_MS`: the longest wait for those replicas (then 503 NOT_REPLICATED). */
  replicaAckTimeoutMs: number;
  /** `SPROCD_PREFIX`: every Redis key lives under `{prefix}`. */
  prefix: string;
  /** `HOST`: the API's address; beyond loopback it needs a token. */
  host: string;
  /** `PORT`: the API's port (0 picks a free one). */
  port: number;
  /**
   * `SPROCD_TOKEN` (a secret, never printed): one caller with every right; without it and without
   * `callersFile`, the node answers loopback, same-origin requests only and asks for no token.
   */
  token: string | undefined;
  /** `SPROCD_CALLERS_FILE`: named callers with their scopes (absolute once loaded), re-read on SIGHUP. */
  callersFile: string | undefined;
  /** `SPROCD_AUDIT_MAX`: entries the audit trail keeps in Redis (0 keeps none). */
  auditMax: number;
  /** `SPROCD_CONCURRENCY`: executions this node runs at once. */
  concurrency: number;
  /** `SPROCD_QUEUE_SHARDS`: BullMQ queues the executions are spread over (redis/shards.ts). */
  queueShards: number;
  /** `SPROCD_WORKER_BATCH`: executions a node files and takes in one Redis call (redis/batched-worker.ts; 1: one call each). */
  workerBatch: number;
  /** `SPROCD_JOBS_DIR`: the procedures (absolute once loaded). */
  jobsDir: string;
  /** `SPROCD_LIFECYCLE_DIR`: the lifecycle hooks (absolute once loaded). */
  lifecycleDir: string;
  /** `SPROCD_SHUTDOWN_GRACE_MS`: how long a stop waits for running executions. */
  shutdownGraceMs: number;
  /** `SPROCD_BACKUP_CRON`: automatic backups; undefined keeps the stored schedule, "off" removes it. */
  backupCron: string | undefined;
  /** `SPROCD_BACKUP_TZ`: the time zone of the backup cron. */
  backupTimezone: string | undefined;
  /** `SPROCD_BACKUP_DIR`: where backup files go (absolute once loaded). */
  backupDir: string;
  /** `SPROCD_BACKUP_KEEP`: backup files kept per prefix. */
  backupKeep: number;
  /** `SPROCD_BACKUP_RETRIES`: retries of a failed automatic backup. */
  backupRetries: number;
  /** `SPROCD_BACKUP_RETRY_DELAY_MS`: the delay between those retries. */
  backupRetryDelayMs: number;
  /** `SPROCD_BACKUP_MAX_FAILURES`: failed automatic backups in a row that stop them. */
  backupMaxFailures: number;
  /**
   * `SPROCD_BACKUP_KEY` (a secret, never printed): signs backup files (HMAC-SHA256) and verifies
   * restored ones; undefined writes unsigned files and restores only with the admin's override.
   */
  backupKey: string | undefined;
  /** `LOG_LEVEL`. */
  logLevel: (typeof LOG_LEVELS)[number];
  /** `SPROCD_USER_NAME`: the session's `userName`. */
  userName: string;
  /** `SPROCD_LOCK_LEASE_MS`: a storage lock's lease, renewed while its holder lives. */
  lockLeaseMs: number;
  /** `SPROCD_LOCK_TIMEOUT_MS`: the longest `storage.use` waits for a lock. */
  lockTimeoutMs: number;
  /** `SPROCD_STORAGE_MAX_ENTRY_BYTES`: the largest storage entry, as JSON. */
  storageMaxEntryBytes: number;
  /** `SPROCD_KEEP_FINISHED`: finished executions kept. */
  keepFinished: number;
  /** `SPROCD_KEEP_FINISHED_S`: how long finished executions are kept. */
  keepFinishedSeconds: number;
  /** `SPROCD_BODY_LIMIT`: the largest JSON body the API takes. */
  bodyLimit: number;
  /** `SPROCD_RESTORE_MAX_BYTES`: the largest backup file POST /v1/restore takes. */
  restoreMaxBytes: number;
  /** `SPROCD_REDIS_TIMEOUT_MS`: a request waits no longer for Redis (then 503 REDIS_UNAVAILABLE). */
  redisTimeoutMs: number;
  /** `SPROCD_RATE_LIMIT`: requests per caller per window, counted by all nodes together (0: no limit). */
  rateLimit: number;
  /** `SPROCD_RATE_LIMIT_WINDOW_MS`: the window of the rate limit. */
  rateLimitWindowMs: number;
  /** `SPROCD_MAX_WAITS`: requests of this node waiting at once for an execution to end (`wait`). */
  maxWaits: number;
  /** `SPROCD_MAX_WAITING`: executions waiting to run (queued or delayed) past which new ones are refused (0: no cap). */
  maxWaiting: number;
  /** `SPROCD_MAX_CONNECTIONS`: open HTTP connections of this node; more are closed at once. */
  maxConnections: number;
  /** `SPROCD_HEADERS_TIMEOUT_MS`: a request's headers must arrive within this (slow clients are closed). */
  headersTimeoutMs: number;
  /** `SPROCD_REQUEST_TIMEOUT_MS`: a whole request, body included, must arrive within this (0: no limit). */
  requestTimeoutMs: number;
  /** `SPROCD_KEEP_ALIVE_TIMEOUT_MS`: an idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** `SPROCD_EXECUTION_LEASE_MS`: an execution whose node stops renewing this is recovered. */
  executionLeaseMs: number;
  /** `SPROCD_MAX_RECOVERIES`: recoveries after which an execution fails. */
  maxRecoveries: number;
  /** `SPROCD_HEARTBEAT_MS`: how often a node writes its heartbeat. */
  heartbeatMs: number;
  /** `SPROCD_NODE_TIMEOUT_MS`: a node silent this long has left. */
  nodeTimeoutMs: number;
  /** `SPROCD_NODE_NAME` (host-pid by default). */
  nodeName: string;
  /** `SPROCD_DATA_DIR`: the embedded Redis's folder (absolute once loaded). */
  dataDir: string;
}

/** Shortest SPROCD_BACKUP_KEY, in bytes. */
const MIN_BACKUP_KEY_BYTES = 32;

/** Settings whose value a message never shows. */
const SECRETS: ReadonlySet<string> = new Set([
  'SPROCD_TOKEN',
  'SPROCD_BACKUP_KEY',
  'SPROCD_SENTINEL_PASSWORD',
]);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** A comma-separated list of `host:port` (SPROCD_SENTINELS, SPROCD_CLUSTER_NODES). */
const addressList = (kind?: AddressKind) =>
  nonEmpty.superRefine((list, ctx) => {
    for (const address of list.split(',')) {
      try {
        parseAddress(address, kind);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }
  });

/** Each setting: its variable, its parser, its default (as the string a user would write). */
const SCHEMA = {
  redisUrl: [
    'REDIS_URL',
    z
      .string()
      .trim()
      .regex(
        /^(rediss?(\+sentinel|\+cluster)?|unix):\/\//,
        'must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster://, rediss+cluster:// or unix://',
      )
      .superRefine((url, ctx) => {
        try {
          if (isSentinelUrl(url)) {
            parseSentinelUrl(url);
          } else if (isClusterUrl(url)) {
            parseClusterUrl(url);
          } else if (isUnixUrl(url)) {
            parseUnixUrl(url);
          }
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    undefined,
  ],
  clusterNodes: ['SPROCD_CLUSTER_NODES', addressList(CLUSTER_NODE), undefined],
  sentinels: ['SPROCD_SENTINELS', addressList(), undefined],
  sentinelMaster: [
    'SPROCD_SENTINEL_MASTER',
    z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'use 1-100 of A-Z a-z 0-9 _ . -'),
    undefined,
  ],
  sentinelPassword: ['SPROCD_SENTINEL_PASSWORD', z.string().min(1), undefined],
  replicaAcks: ['SPROCD_REPLICA_ACKS', int(0, 100), '0'],
  storageSlots: ['SPROCD_STORAGE_SLOTS', int(1, 1024), '1'],
  replicaAckTimeoutMs: ['SPROCD_REPLICA_ACK_TIMEOUT_MS', int(10), '1000'],
  prefix: [
    'SPROCD_PREFIX',
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use 1-64 of A-Z a-z 0-9 _ . -'),
    'sprocd',
  ],
  host: ['HOST', nonEmpty, '127.0.0.1'],
  port: ['PORT', int(0, 65535), '8080'],
  token: ['SPROCD_TOKEN', z.string().min(16, 'must be at least 16 characters'), undefined],
  callersFile: ['SPROCD_CALLERS_FILE', nonEmpty, undefined],
  auditMax: ['SPROCD_AUDIT_MAX', int(0, 1_000_000), '10000'],
  concurrency: ['SPROCD_CONCURRENCY', int(1, 10_000), '16'],
  queueShards: ['SPROCD_QUEUE_SHARDS', int(1, 64), '1'], // 64: MAX_QUEUE_SHARDS of redis/shards.ts
  workerBatch: ['SPROCD_WORKER_BATCH', int(1, 1000), '32'],
  jobsDir: ['SPROCD_JOBS_DIR', nonEmpty, './jobs'],
  lifecycleDir: ['SPROCD_LIFECYCLE_DIR', nonEmpty, './lifecycle'],
  shutdownGraceMs: ['SPROCD_SHUTDOWN_GRACE_MS', int(0), '10000'],
  backupCron: ['SPROCD_BACKUP_CRON', nonEmpty, undefined],
  backupTimezone: ['SPROCD_BACKUP_TZ', nonEmpty, undefined],
  backupDir: ['SPROCD_BACKUP_DIR', nonEmpty, './backups'],
  backupKeep: ['SPROCD_BACKUP_KEEP', int(1, 10_000), '3'],
  backupRetries: ['SPROCD_BACKUP_RETRIES', int(0, 100), '3'],
  backupRetryDelayMs: ['SPROCD_BACKUP_RETRY_DELAY_MS', int(0), '60000'],
  backupMaxFailures: ['SPROCD_BACKUP_MAX_FAILURES', int(1, 1000), '5'],
  backupKey: [
    'SPROCD_BACKUP_KEY',
    z
      .string()
      .refine(
        (key) => Buffer.byteLength(key, 'utf8') >= MIN_BACKUP_KEY_BYTES,
        `must be at least ${MIN_BACKUP_KEY_BYTES} bytes (HMAC-SHA256 needs that much; e.g. openssl rand -hex 32)`,
      ),
    undefined,
  ],
  logLevel: ['LOG_LEVEL', z.enum(LOG_LEVELS), 'info'],
  userName: ['SPROCD_USER_NAME', nonEmpty, 'sprocd'],
  lockLeaseMs: ['SPROCD_LOCK_LEASE_MS', int(100), '10000'],
  lockTimeoutMs: ['SPROCD_LOCK_TIMEOUT_MS', int(1), '30000'],
  storageMaxEntryBytes: ['SPROCD_STORAGE_MAX_ENTRY_BYTES', int(1), String(1024 * 1024)],
  keepFinished: ['SPROCD_KEEP_FINISHED', int(0), '1000'],
  keepFinishedSeconds: ['SPROCD_KEEP_FINISHED_S', int(1), String(24 * 3600)],
  bodyLimit: ['SPROCD_BODY_LIMIT', int(1), String(1024 * 1024)],
  restoreMaxBytes: ['SPROCD_RESTORE_MAX_BYTES', int(1), String(512 * 1024 * 1024)],
  redisTimeoutMs: ['SPROCD_REDIS_TIMEOUT_MS', int(50), '2000'],
  rateLimit: ['SPROCD_RATE_LIMIT', int(0), '3000'],
  rateLimitWindowMs: ['SPROCD_RATE_LIMIT_WINDOW_MS', int(100, 3_600_000), '10000'],
  maxWaits: ['SPROCD_MAX_WAITS', int(1), '1000'],
  maxWaiting: ['SPROCD_MAX_WAITING', int(0), '0'],
  maxConnections: ['SPROCD_MAX_CONNECTIONS', int(1), '1000'],
  headersTimeoutMs: ['SPROCD_HEADERS_TIMEOUT_MS', int(100), '10000'],
  requestTimeoutMs: ['SPROCD_REQUEST_TIMEOUT_MS', int(0), '300000'],
  keepAliveTimeoutMs: ['SPROCD_KEEP_ALIVE_TIMEOUT_MS', int(100), '72000'],
  executionLeaseMs: ['SPROCD_EXECUTION_LEASE_MS', int(500), '30000'],
  maxRecoveries: ['SPROCD_MAX_RECOVERIES', int(0, 1000), '5'],
  heartbeatMs: ['SPROCD_HEARTBEAT_MS', int(100), '5000'],
  nodeTimeoutMs: ['SPROCD_NODE_TIMEOUT_MS', int(300), '15000'],
  nodeName: [
    'SPROCD_NODE_NAME',
    z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'use 1-100 of A-Z a-z 0-9 _ . : -'),
    undefined,
  ],
  dataDir: ['SPROCD_DATA_DIR', nonEmpty, './.sprocd'],
} as const satisfies Record<keyof Settings, readonly [string, z.ZodType, string | undefined]>;

/** Loopback addresses: 127.0.0.0/8 and ::1 (IPv4-mapped forms such as ::ffff:127.0.0.1 included). */
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * The host name of `host` (an address or name, with or without a port, IPv6 bare or in brackets) as
 * a URL parser reads it: IPv4 in every notation becomes dotted decimal (`0x7f.1` → `127.0.0.1`), IPv6
 * is compressed, names are lower-cased. Undefined when it is not a host at all.
 */
export function parseHostname(host: string): string | undefined {
  const text = net.isIPv6(host) ? `[${host}]` : host;
  // Nothing a URL would read as a user, a path, a query or a fragment: only the host (and a port).
  if (text === '' || /[\s/\\@?#%]/.test(text)) {
    return undefined;
  }
  try {
    return new URL(`http://${text}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Whether `host` (an address or name, optionally with a port) only reaches this machine: `localhost`,
 * or an address in 127.0.0.0/8 or ::1, parsed (not compared as text).
 */
export function isLoopbackHost(host: string): boolean {
  const hostname = parseHostname(host);
  if (hostname === undefined) {
    return false;
  }
  if (hostname === 'localhost') {
    return true;
  }
  const address = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const family = net.isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * How a setting's value shows in a message: never a secret's, and a URL without its user and
 * password (old-style URLs carry the password as the user: `redis://secret@host`).
 */
function shown(variable: string, raw: string): string {
  if (SECRETS.has(variable)) {
    return '(hidden)';
  }
  if (isSentinelUrl(raw) || isClusterUrl(raw)) {
    const redacted = isSentinelUrl(raw) ? redactSentinelUrl(raw) : redactClusterUrl(raw);
    if (!redacted.startsWith('[')) {
      return JSON.stringify(redacted);
    }
    // Unreadable, so not redactable: shown only when it holds no user, password or sentinelPassword.
    return /@|password/i.test(raw) ? '(hidden: it may hold credentials)' : JSON.stringify(raw);
  }
  if (raw.includes('@')) {
    try {
      const url = new URL(raw.trim());
      if (url.username || url.password) {
        url.username &&= '***';
        url.password &&= '***';
        return JSON.stringify(url.toString());
      }
    } catch {
      // not a URL: hidden below
    }
    return '(hidden: it may hold credentials)';
  }
  return JSON.stringify(raw);
}

/**
 * Reads settings from `env` (process.env by default), resolving folders against `cwd`.
 * Throws one ConfigError listing every bad setting by its variable name.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, [variable, schema, fallback]] of Object.entries(SCHEMA)) {
    const raw = env[variable] === undefined || env[variable] === '' ? fallback : env[variable];
    if (raw === undefined) {
      out[key] = undefined;
      continue;
    }
    const parsed = (schema as z.ZodType).safeParse(raw);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      problems.push(`${variable}=${shown(variable, raw)}: ${formatZodError(parsed.error)}`);
    }
  }
  // The rules between settings; a setting that failed its own check above is undefined here.
  const s = out as unknown as Settings;
  if (s.backupCron !== undefined && s.backupCron !== 'off') {
    try {
      CronExpressionParser.parse(s.backupCron, s.backupTimezone ? { tz: s.backupTimezone } : {});
    } catch (err) {
      problems.push(`SPROCD_BACKUP_CRON=${JSON.stringify(s.backupCron)}: ${(err as Error).message}`);
    }
  }
  if (s.backupTimezone !== undefined && !isValidTimezone(s.backupTimezone)) {
    problems.push(`SPROCD_BACKUP_TZ=${JSON.stringify(s.backupTimezone)}: not a known IANA time zone`);
  }
  if (
    s.host !== undefined &&
    !isLoopbackHost(s.host) &&
    s.token === undefined &&
    s.callersFile === undefined &&
    !problems.some((p) => p.startsWith('SPROCD_TOKEN'))
  ) {
    problems.push(
      `HOST=${JSON.stringify(s.host)}: listening beyond loopback needs SPROCD_TOKEN or SPROCD_CALLERS_FILE (anyone could run procedures)`,
    );
  }
  if (s.nodeTimeoutMs !== undefined && s.heartbeatMs !== undefined && s.nodeTimeoutMs <= s.heartbeatMs) {
    problems.push('SPROCD_NODE_TIMEOUT_MS: must be longer than SPROCD_HEARTBEAT_MS');
  }
  if (
    s.requestTimeoutMs !== undefined &&
    s.headersTimeoutMs !== undefined &&
    s.requestTimeoutMs !== 0 &&
    s.requestTimeoutMs < s.headersTimeoutMs
  ) {
    problems.push('SPROCD_REQUEST_TIMEOUT_MS: must be 0 or at least SPROCD_HEADERS_TIMEOUT_MS');
  }
  clusterRules(s, problems);
  sentinelRules(s, problems);
  if (
    s.replicaAcks > 0 &&
    s.replicaAckTimeoutMs !== undefined &&
    s.redisTimeoutMs !== undefined &&
    s.replicaAckTimeoutMs >= s.redisTimeoutMs
  ) {
    // The WAIT runs on the command connection, whose commands fail after SPROCD_REDIS_TIMEOUT_MS.
    problems.push('SPROCD_REPLICA_ACK_TIMEOUT_MS: must be shorter than SPROCD_REDIS_TIMEOUT_MS');
  }
  if (problems.length > 0) {
    throw new ConfigError(`Bad settings:\n  ${problems.join('\n  ')}`, { problems });
  }
  for (const key of ['jobsDir', 'lifecycleDir', 'backupDir', 'dataDir'] as const) {
    s[key] = path.resolve(cwd, s[key]);
  }
  if (s.callersFile !== undefined) {
    s.callersFile = path.resolve(cwd, s.callersFile);
  }
  s.nodeName ??= `${os.hostname()}-${process.pid}`;
  return s;
}

/** Whether `tz` is an IANA time zone this Node knows. */
export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

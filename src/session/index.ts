/**
 * The stored-procedure Session: one per deployment, created once on an empty Redis and the same on
 * every node and across restarts, with its shared `storage` (see storage.ts and locks.ts, and
 * docs/SESSION.md for the semantics and the Redis layout).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { serverOptions } from '../redis/cluster.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type pino from 'pino';
import { closeConnection, openConnection, waitReady } from '../redis/connections.js';
import type { Keys } from '../redis/keys.js';
import type { WriteAcks } from '../redis/replica-acks.js';
import { sessionIdentity, storageSlots } from '../redis/scripts.js';
import type { Session, SessionInfo, Storage } from '../types.js';
import { storageLayout } from './layout.js';
import { type LockOwner, lockLabel } from './lock-owner.js';
import { LockManager, mapRedisError, type RunFence } from './locks.js';
import { StorageSlotsMismatchError } from './errors.js';
import type { StorageLayout } from './layout.js';
import type { SlotKeys } from './slots.js';
import { SessionStorage } from './storage.js';

export * from './errors.js';
export { storageLayout, type StorageLayout } from './layout.js';

/** What {@link openSession} needs. */
export interface SessionServiceOptions {
  /** The node's shared command connection (it has a commandTimeout); not closed by the session. */
  command: RedisConnection;
  /** For the session's own blocking connection (one per node, whatever the number of waiters). */
  redisUrl: string;
  keys: Keys;
  /** SPROCD_USER_NAME. */
  userName: string;
  /** SPROCD_LOCK_LEASE_MS: a lock whose holder stops renewing it frees itself after this. */
  lockLeaseMs: number;
  /** SPROCD_LOCK_TIMEOUT_MS: the longest `storage.use` waits for a lock. */
  lockTimeoutMs: number;
  /** SPROCD_STORAGE_MAX_ENTRY_BYTES: the largest JSON of one entry. */
  maxEntryBytes: number;
  /** Names the blocking connection in CLIENT LIST (`<connectionName>:session`). */
  connectionName: string;
  logger: pino.Logger;
  /** For tests only. */
  testHooks?: SessionTestHooks;
  /** SPROCD_STORAGE_SLOTS: data slots of the entries (1, the default: one hash under `{prefix}`). */
  storageSlots?: number;
  /** SPROCD_REPLICA_ACKS for the writes of a data slot (on a Cluster: WAIT on that slot's master). */
  slotAcks?: (slot: SlotKeys) => WriteAcks;
  /** The node's name, in the labels that say who holds or waits for a lock (lock-owner.ts); default: the host name. */
  nodeName?: string;
  /** SPROCD_REPLICA_ACKS on the command connection: a commit returns once replicas have it. */
  acks?: WriteAcks;
}

/** Hooks that let tests provoke what is otherwise hard to time. */
export interface SessionTestHooks {
  /** While it returns true, lock leases are not renewed (as if the process were paused). */
  skipLockRenewal?: () => boolean;
  /** Runs right after a multi-slot commit was decided, before it is applied (a crash there). */
  afterDecide?: () => void;
}

/** What `GET /v1/session` shows. */
export interface SessionDescription {
  id: string;
  info: SessionInfo;
  privileges: string[];
}

/** An open session on one node. */
export interface SessionService {
  /** The `ctx.session` of every hook of this node: its locks name the node alone. */
  session: Session;
  /**
   * The same session for one writer (an execution, the console): its locks name it too, and `check`,
   * when given, runs before each `use` takes its locks and again before it commits (it throws to
   * refuse: an aborted execution writes nothing); `fence`, when given, is checked by the commit
   * itself on the server it reaches (an execution's job lock: storage.ts, StorageWriter).
   */
  sessionFor(owner: LockOwner, check?: () => void, fence?: RunFence): Session;
  /** The session as stored now (re-read from Redis). */
  describe(): Promise<SessionDescription>;
  /** Lets running uses finish (up to one lease), stops waiting ones, closes the connection it opened. */
  close(): Promise<void>;
  /** Where the storage is (with its data slots): the console's listing reads it. */
  readonly layout: StorageLayout;
}

/** Checks SPROCD_STORAGE_SLOTS against the deployment's (storing it at the first start with K > 1). */
async function checkSlots(redis: RedisConnection, keys: Keys, k: number): Promise<void> {
  let stored: number;
  try {
    stored = await storageSlots(redis, keys.storage, k);
  } catch (err) {
    throw mapRedisError(err);
  }
  if (stored !== k) {
    throw new StorageSlotsMismatchError(k, stored);
  }
}

/** 4D's stored-procedure session answers these the same way whatever is asked. */
const PRIVILEGES = ['WebAdmin'] as const;

/** `info.hostType`: 4D says "windows" or "mac"; other platforms keep Node's name ("linux", ...). */
export function hostTypeOf(platform: NodeJS.Platform): string {
  switch (platform) {
    case 'win32':
      return 'windows';
    case 'darwin':
      return 'mac';
    default:
      return platform;
  }
}

interface Identity {
  id: string;
  createdAtMs: number;
}

async function ensureIdentity(redis: RedisConnection, keys: Keys, machineName: string): Promise<Identity> {
  try {
    const { id, createdAtMs } = await sessionIdentity(redis, keys, randomUUID(), machineName);
    return { id, createdAtMs };
  } catch (err) {
    throw mapRedisError(err);
  }
}

/**
 * Opens the session of the deployment named by `opts.keys`: creates its identity when Redis has none
 * (atomically, so nodes starting together agree on one id), starts the lock heartbeat and the inbox
 * reader, and returns the Session every procedure and hook of this node gets.
 */
export async function openSession(opts: SessionServiceOptions): Promise<SessionService> {
  const logger = opts.logger.child({ module: 'session' });
  const machineName = os.hostname();
  let identity = await ensureIdentity(opts.command, opts.keys, machineName);
  const makeInfo = (ident: Identity): SessionInfo =>
    Object.freeze({
      type: 'storedProcedure',
      ID: ident.id,
      userName: opts.userName,
      machineName,
      hostType: hostTypeOf(process.platform),
      creationDateTime: new Date(ident.createdAtMs).toISOString(),
      state: 'active',
    }) as SessionInfo;
  let info = makeInfo(identity);

  const k = opts.storageSlots ?? 1;
  await checkSlots(opts.command, opts.keys, k);
  const layout = storageLayout(opts.keys, k);
  const timeoutMs = Number(serverOptions(opts.command).commandTimeout ?? 2000);
  const blocking = openConnection('session', { url: opts.redisUrl, timeoutMs, name: opts.connectionName });
  const locks = new LockManager({
    redis: opts.command,
    blocking,
    layout,
    nodeId: randomBytes(8).toString('hex'),
    leaseMs: opts.lockLeaseMs,
    timeoutMs: opts.lockTimeoutMs,
    logger,
    skipLockRenewal: opts.testHooks?.skipLockRenewal,
    ...(opts.testHooks?.afterDecide ? { afterDecide: opts.testHooks.afterDecide } : {}),
    ...(opts.acks ? { acks: opts.acks } : {}),
    ...(opts.slotAcks ? { slotAcks: opts.slotAcks } : {}),
  });
  try {
    await waitReady(blocking, Math.max(timeoutMs, 5000));
    await locks.start();
  } catch (err) {
    await locks.close().catch(() => undefined);
    await closeConnection(blocking);
    throw err;
  }
  const storage = new SessionStorage({
    redis: opts.command,
    locks,
    layout,
    maxEntryBytes: opts.maxEntryBytes,
    logger,
  });

  const sessionWith = (storageFacade: Storage): Session =>
    Object.freeze({
      get id() {
        return identity.id;
      },
      get info() {
        return info;
      },
      userName: opts.userName,
      storage: storageFacade,
      hasPrivilege: (_privilege: string) => true,
      getPrivileges: () => [...PRIVILEGES],
      setPrivileges: (_privileges: unknown) => false,
      clearPrivileges: () => true,
      isGuest: () => false,
    });
  const session = sessionWith(storage.facadeFor({ label: lockLabel(opts.nodeName ?? machineName, {}) }));

  let closing: Promise<void> | undefined;
  return {
    layout,
    session,
    sessionFor: (owner, check, fence) =>
      sessionWith(storage.facadeFor({ label: lockLabel(opts.nodeName ?? machineName, owner), check, fence })),
    async describe() {
      const now = await ensureIdentity(opts.command, opts.keys, machineName);
      if (now.id !== identity.id || now.createdAtMs !== identity.createdAtMs) {
        // A restore put back another session: from now on this node answers with that one.
        identity = now;
        info = makeInfo(now);
      }
      return { id: identity.id, info: { ...info }, privileges: [...PRIVILEGES] };
    },
    close() {
      closing ??= (async () => {
        await storage.close(opts.lockLeaseMs);
        await locks.close();
        await closeConnection(blocking);
      })();
      return closing;
    },
  };
}

/**
 * The cluster's backup lock: one backup or restore at a time in the whole cluster. A string with a
 * PX lease holding what runs, renewed every third of the lease while held; a holder that misses
 * its renewals loses it and is told so (docs/ARCHITECTURE.md#backups-and-restore).
 */
import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Keys } from '../redis/keys.js';
import { backupLock } from '../redis/scripts.js';
import type { BackupTrigger } from './backup-status.js';

/** The backup (or restore) holding the cluster's lock. */
export interface RunningBackup {
  number: number;
  node: string;
  trigger: BackupTrigger | 'restore';
  startedAt: string;
}

/** How long the backup lock lives without renewal; renewed every third of it. */
const LEASE_MS = 15_000;

/** The cluster-wide lock held by the running backup or restore, its lease renewed while held. */
export class BackupLock {
  private readonly timer: NodeJS.Timeout;
  private released = false;

  private constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly value: string,
    onLost: () => void,
  ) {
    this.timer = setInterval(() => {
      this.call('renew').then(
        (ok) => {
          if (!ok && !this.released) {
            clearInterval(this.timer);
            onLost();
          }
        },
        () => undefined, // Redis away: the next renewal tries again; the lease covers two misses
      );
    }, LEASE_MS / 3);
    this.timer.unref();
  }

  /**
   * Takes the lock for `info`, or returns undefined when another backup or restore holds it.
   * `onLost` runs if the lease runs out while held.
   */
  static async acquire(
    redis: RedisConnection,
    keys: Keys,
    info: RunningBackup,
    onLost: () => void,
  ): Promise<BackupLock | undefined> {
    const value = JSON.stringify({ ...info, token: randomBytes(8).toString('hex') });
    const ok = await redis.set(keys.backup.lock, value, 'PX', LEASE_MS, 'NX');
    return ok === 'OK' ? new BackupLock(redis, keys, value, onLost) : undefined;
  }

  /** Gives the lock back (only if it is still this holder's). */
  async release(): Promise<void> {
    this.released = true;
    clearInterval(this.timer);
    await this.call('release');
  }

  private call(op: 'renew' | 'release'): Promise<boolean> {
    return backupLock(this.redis, this.keys, op, this.value, LEASE_MS);
  }
}

/** What holds the backup lock now, if anything. */
export async function runningBackup(redis: RedisConnection, keys: Keys): Promise<RunningBackup | undefined> {
  return parseRunning(await redis.get(keys.backup.lock));
}

/** Reads the lock's value; undefined when free or unreadable. */
function parseRunning(lock: string | null): RunningBackup | undefined {
  if (lock === null) {
    return undefined;
  }
  try {
    const { number, node, trigger, startedAt } = JSON.parse(lock) as RunningBackup;
    return { number, node, trigger, startedAt };
  } catch {
    return undefined;
  }
}

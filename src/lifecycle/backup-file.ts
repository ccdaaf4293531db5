/**
 * Backup files on disk: their names, the crash-safe writing of one (temporary name, gzip, fsync,
 * rename, fsync of the folder), and the retention (SPROCD_BACKUP_KEEP)
 * (docs/ARCHITECTURE.md#backups-and-restore).
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Logger } from 'pino';
import { BACKUP_EXTENSION, GZIP_LEVEL } from './backup-format.js';
import { BackupWriteError } from './backup-status.js';

/** Left-over temporary files older than this are removed by the next backup. */
const STALE_TEMP_MS = 3_600_000;

/** `<prefix>-backup-<UTC yyyymmddThhmmssSSS>Z-<number, 8 digits>.sprocd.gz`: sorts by time. */
export function backupFileName(prefix: string, at: Date, number: number): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${prefix}-backup-${stamp}-${String(number).padStart(8, '0')}${BACKUP_EXTENSION}`;
}

/** Whether `name` is a backup file of the deployment `prefix` (retention touches nothing else). */
export function isBackupFileOf(prefix: string, name: string): boolean {
  return (
    name.startsWith(`${prefix}-backup-`) &&
    name.endsWith(BACKUP_EXTENSION) &&
    /^\d{8}T\d{9}Z-\d{8,}$/.test(name.slice(prefix.length + 8, -BACKUP_EXTENSION.length))
  );
}

/**
 * Writes `dir/name` gzipped from the lines `content()` yields, so that the name exists only once
 * the whole file is durable. The temporary file is opened first, so an unwritable folder fails
 * (BackupWriteError) before `content` is asked for anything. Returns the file's path and size.
 */
export async function writeBackupFile(
  dir: string,
  name: string,
  content: () => Promise<AsyncIterable<Buffer>>,
  signal: AbortSignal,
): Promise<{ file: string; size: number }> {
  const file = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: fsp.FileHandle;
  try {
    // The owner's only: a backup holds the whole session (an older, wider folder is narrowed).
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(dir, 0o700).catch(() => undefined);
    handle = await fsp.open(temp, 'wx', 0o600);
  } catch (err) {
    throw new BackupWriteError(`cannot write to ${dir}: ${(err as Error).message}`, { cause: err });
  }
  try {
    await pipeline(
      Readable.from(await content()),
      zlib.createGzip({ level: GZIP_LEVEL }),
      handle.createWriteStream(),
      { signal },
    );
    const sync = await fsp.open(temp, 'r+');
    try {
      await sync.sync();
    } finally {
      await sync.close();
    }
    if (signal.aborted) {
      throw signal.reason;
    }
    await fsp.rename(temp, file);
    await syncDir(dir);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
  const { size } = await fsp.stat(file);
  return { file, size };
}

/**
 * Keeps the newest `keep` backup files of the deployment `prefix` in `dir` and removes its stale
 * temporary files; logs instead of throwing (a retention failure does not fail the backup).
 */
export async function pruneBackups(dir: string, prefix: string, keep: number, log: Logger): Promise<void> {
  try {
    const names = await fsp.readdir(dir);
    const ours = names.filter((n) => isBackupFileOf(prefix, n)).sort();
    const excess = ours.slice(0, Math.max(0, ours.length - keep));
    for (const n of excess) {
      await fsp.rm(path.join(dir, n), { force: true });
    }
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const n of names) {
      if (n.startsWith(`.${prefix}-backup-`) && n.endsWith('.tmp')) {
        const st = await fsp.stat(path.join(dir, n)).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) {
          await fsp.rm(path.join(dir, n), { force: true });
        }
      }
    }
    if (excess.length > 0) {
      log.info({ removed: excess }, 'old backups removed (SPROCD_BACKUP_KEEP)');
    }
  } catch (err) {
    log.warn({ err }, 'could not apply the backup retention');
  }
}

async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a folder; the rename is then as durable as they make it.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

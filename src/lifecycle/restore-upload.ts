/**
 * The first pass of a restore: the uploaded file is copied to a private temporary file while it is
 * read and checked whole (backup-reader.ts), so that nothing is applied before the file is known to
 * be sound and signed, and memory stays bounded whatever its size (docs/BACKUPS.md#restore). The
 * second pass (restore.ts) reads that temporary file again.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, finished, type Readable } from 'node:stream';
import { SprocdError } from '../errors.js';
import { BackupInvalidError, type BackupHeader } from './backup-format.js';
import { readBackup, type ReadOptions, type ReadProgress, type Trust } from './backup-reader.js';

/** What the first pass found in a sound file. */
export interface CheckedUpload {
  /** The temporary copy: the second pass reads it, the caller removes it. */
  readonly file: string;
  readonly header: BackupHeader;
  readonly trust: Trust;
  readonly entries: number;
  readonly executions: number;
  /** Compressed bytes received. */
  readonly bytes: number;
}

/** How far an upload went: compressed bytes received and bytes inflated (logged with a refusal). */
export interface UploadProgress extends ReadProgress {
  bytes: number;
}

/** The place of the temporary copy of a restore's upload (stale ones go with backup-file.ts's retention). */
export function uploadFile(dir: string, prefix: string): string {
  return path.join(dir, `.${prefix}-backup-restore-${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Copies `body` (at most `maxBytes`) to `file` (created, owner-only) while checking it; resolves
 * once the file is complete and sound. Throws BackupInvalidError, PAYLOAD_TOO_LARGE, or what the
 * disk throws; on any failure `file` may be left for the caller to remove, and `body` is left
 * unread from that point.
 */
export async function receiveUpload(
  body: Readable,
  file: string,
  maxBytes: number,
  options: ReadOptions,
  signal: AbortSignal,
  progress: UploadProgress = { bytes: 0, inflatedBytes: 0 },
  /** Called with the number of lines checked so far, after each line (the caller throttles). */
  onLines?: (lines: number) => void,
): Promise<CheckedUpload> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const handle = await fsp.open(file, 'wx', 0o600);
  const out = handle.createWriteStream();
  // Every chunk the reader is given is on disk first; the reader's pace is the upload's pace.
  const copy = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      progress.bytes += chunk.length;
      if (progress.bytes > maxBytes) {
        done(
          new SprocdError(
            'PAYLOAD_TOO_LARGE',
            `The backup file is larger than SPROCD_RESTORE_MAX_BYTES (${maxBytes} bytes).`,
          ),
        );
        return;
      }
      out.write(chunk, (err) => done(err ?? null, chunk));
    },
    flush(done) {
      out.end((err?: Error | null) => done(err ?? null));
    },
  });
  // Their failures reach the reader through the write callbacks and the pipe; once reading has
  // stopped, a late one (a write in flight when the copy is dropped) has nobody to tell.
  out.on('error', () => undefined);
  copy.on('error', () => undefined);
  // The body is piped, not owned: a refusal stops reading it without destroying the request.
  const stopCut = finished(body, (err) => {
    if (err) {
      copy.destroy(new BackupInvalidError('the upload ended before the file did (the client went away?)'));
    }
  });
  body.pipe(copy);
  let header: BackupHeader | undefined;
  let trust: Trust = 'unsigned';
  let counts = { entries: 0, executions: 0 };
  let lines = 0;
  try {
    for await (const item of readBackup(copy, options, progress)) {
      signal.throwIfAborted();
      onLines?.(++lines);
      if (item.t === 'header') {
        ({ header, trust } = item);
      } else if (item.t === 'end') {
        counts = item;
      }
    }
    // The trailer was the last line; what follows in the gzip stream (nothing) must reach the disk.
    await new Promise<void>((resolve, reject) => finished(out, (err) => (err ? reject(err) : resolve())));
  } finally {
    stopCut();
    body.unpipe(copy);
    copy.destroy();
    out.destroy();
    await handle.close().catch(() => undefined);
  }
  if (!header) {
    throw new BackupInvalidError('it has no header line');
  }
  return { file, header, trust, ...counts, bytes: progress.bytes };
}

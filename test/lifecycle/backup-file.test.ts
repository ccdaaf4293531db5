/**
 * Backup files on disk, without Redis: their names, writing one (that parses back; nothing left
 * behind when the folder cannot be written or the content fails), and the retention.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  backupFileName,
  isBackupFileOf,
  pruneBackups,
  writeBackupFile,
} from '../../src/lifecycle/backup-file.js';
import { BACKUP_FORMAT, BACKUP_VERSION, BackupEncoder } from '../../src/lifecycle/backup-format.js';
import { parseBackup } from '../../src/lifecycle/backup-reader.js';
import { BackupWriteError } from '../../src/lifecycle/backup-status.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-backup-file-test-'));
const log = pino({ level: 'silent' });
const never = new AbortController().signal;

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function folder(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function* lines(): AsyncGenerator<Buffer> {
  const encoder = new BackupEncoder(undefined);
  yield encoder.line({
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: new Date(0).toISOString(),
    prefix: 'acme',
    node: 'n',
    number: 1,
    trigger: 'manual',
    ...encoder.signature(),
  });
  yield encoder.line({ t: 'session', fields: { id: 's', createdAtMs: '1' } });
  yield encoder.line({ t: 'sequence', value: 3 });
  yield encoder.entry('k', '{"v":1}');
  yield encoder.trailer();
}

describe('backup file names', () => {
  it('sort by time and carry the deployment and the number', () => {
    const name = backupFileName('acme', new Date('2026-03-01T02:03:04.005Z'), 42);
    expect(name).toBe('acme-backup-20260301T020304005Z-00000042.sprocd.gz');
    expect(backupFileName('acme', new Date('2026-03-01T02:03:04.006Z'), 1) > name).toBe(true);
  });

  it('tell the backups of one deployment from anything else', () => {
    const name = backupFileName('acme', new Date(), 7);
    expect(isBackupFileOf('acme', name)).toBe(true);
    expect(isBackupFileOf('acme-2', name)).toBe(false);
    expect(isBackupFileOf('acme', backupFileName('acme-2', new Date(), 7))).toBe(false);
    expect(isBackupFileOf('acme', 'acme-backup-notes.sprocd.gz')).toBe(false);
    expect(isBackupFileOf('acme', `${name}.tmp`)).toBe(false);
  });
});

describe('writeBackupFile', () => {
  it('writes a file that parses back, and leaves no temporary file', async () => {
    const dir = path.join(root, 'new', 'folder'); // made as needed
    const { file, size } = await writeBackupFile(dir, 'acme-backup.sprocd.gz', async () => lines(), never);
    expect(file).toBe(path.join(dir, 'acme-backup.sprocd.gz'));
    expect(size).toBe(fs.statSync(file).size);
    const parsed = await parseBackup(fs.readFileSync(file), { allowUnsigned: true });
    expect(parsed.entries.get('k')).toBe('{"v":1}');
    expect(fs.readdirSync(dir)).toEqual(['acme-backup.sprocd.gz']);
  });

  it('fails with BackupWriteError before asking for the content when the folder cannot be written', async () => {
    const blocker = path.join(folder('blocked'), 'a-file');
    fs.writeFileSync(blocker, '');
    let asked = false;
    const write = writeBackupFile(
      path.join(blocker, 'sub'),
      'x.sprocd.gz',
      async () => {
        asked = true;
        return lines();
      },
      never,
    );
    await expect(write).rejects.toBeInstanceOf(BackupWriteError);
    expect(asked).toBe(false);
  });

  it('removes its temporary file when the content fails, and writes no file', async () => {
    const dir = folder('failing');
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('{"partial":true}\n');
      throw new Error('Redis went away');
    }
    await expect(writeBackupFile(dir, 'x.sprocd.gz', async () => failing(), never)).rejects.toThrow(
      'Redis went away',
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('writes no file when aborted', async () => {
    const dir = folder('aborted');
    const controller = new AbortController();
    controller.abort(new Error('stopping'));
    await expect(
      writeBackupFile(dir, 'x.sprocd.gz', async () => lines(), controller.signal),
    ).rejects.toThrow();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('pruneBackups', () => {
  it("keeps the newest files of the deployment and touches nobody else's", async () => {
    const dir = folder('retention');
    const ours = [1, 2, 3, 4].map((n) => backupFileName('acme', new Date(Date.UTC(2026, 0, n)), n));
    const others = [backupFileName('other', new Date(Date.UTC(2026, 0, 1)), 1), 'notes.txt'];
    for (const name of [...ours, ...others]) {
      fs.writeFileSync(path.join(dir, name), '');
    }
    const staleTemp = `.${ours[0]}.abcd.tmp`;
    const freshTemp = `.${ours[1]}.ef01.tmp`;
    fs.writeFileSync(path.join(dir, staleTemp), '');
    fs.writeFileSync(path.join(dir, freshTemp), '');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    fs.utimesSync(path.join(dir, staleTemp), twoHoursAgo, twoHoursAgo);

    await pruneBackups(dir, 'acme', 2, log);
    expect(fs.readdirSync(dir).sort()).toEqual([freshTemp, ...ours.slice(2), ...others].sort());
  });

  it('does not throw when the folder is gone', async () => {
    await expect(pruneBackups(path.join(root, 'missing'), 'acme', 1, log)).resolves.toBeUndefined();
  });
});

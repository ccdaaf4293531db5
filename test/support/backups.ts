/** Helpers of the backup and restore tests: the reason a file is refused with. */
import { expect } from 'vitest';
import { BackupInvalidError } from '../../src/lifecycle/backup-format.js';

/** The `details.reason` of the BackupInvalidError `work` rejects with (fails the test otherwise). */
export async function reason(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackupInvalidError);
  expect((err as BackupInvalidError).code).toBe('BACKUP_INVALID');
  return ((err as BackupInvalidError).details as { reason: string }).reason;
}

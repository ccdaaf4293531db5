/**
 * How an execution's error is kept. BullMQ keeps only a `failedReason` string, so sprocd stores the
 * error as JSON there; reasons that BullMQ writes itself (a job stalled too often) stay plain text.
 */
import { describeError } from '../errors.js';

/** An execution's error as the API shows it. */
export interface StoredError {
  name: string;
  message: string;
  code?: string;
}

/** The `failedReason` that stores `err`. */
export function encodeFailure(err: unknown): string {
  return JSON.stringify(describeError(err));
}

/** The error stored in a `failedReason`. */
export function decodeFailure(reason: string | undefined): StoredError | undefined {
  if (reason === undefined || reason === '') {
    return undefined;
  }
  if (reason.startsWith('{')) {
    try {
      const parsed = JSON.parse(reason) as Partial<StoredError>;
      if (typeof parsed.message === 'string') {
        return {
          name: parsed.name ?? 'Error',
          message: parsed.message,
          ...(parsed.code ? { code: parsed.code } : {}),
        };
      }
    } catch {
      // plain text after all
    }
  }
  if (/stalled more than allowable limit/.test(reason)) {
    return {
      name: 'RecoveryLimitError',
      message: `Its node died more often than SPROCD_MAX_RECOVERIES allows (${reason}).`,
      code: 'RECOVERY_LIMIT',
    };
  }
  return { name: 'Error', message: reason };
}

/** Schemas of /v1/session: the stored-procedure session and its storage. */
import { z } from 'zod';
import type { SessionInfo } from '../../types.js';
import { IsoTime, JsonValueSchema } from './common.js';

/** `Session.info` of the stored-procedure session (4D's shape). */
export const SessionInfoSchema = z
  .object({
    type: z.literal('storedProcedure'),
    ID: z.string(),
    userName: z.string(),
    machineName: z.string(),
    hostType: z.string(),
    creationDateTime: IsoTime,
    state: z.enum(['active', 'postponed', 'sleeping']),
  })
  .meta({ id: 'SessionInfo' }) satisfies z.ZodType<SessionInfo, unknown>;

/** The answer of GET /v1/session. */
export const SessionSchema = z
  .object({
    id: z.string(),
    info: SessionInfoSchema,
    privileges: z.array(z.string()).describe('Always ["WebAdmin"] (4D).'),
  })
  .meta({ id: 'Session' });

/** The answer of GET /v1/session/storage: every entry at one moment. */
export const StorageSnapshotSchema = z
  .record(z.string(), JsonValueSchema)
  .meta({ id: 'StorageSnapshot', description: 'Every storage entry by key, at one moment.' });

/** The URL of one storage entry. */
export const StorageKeyParams = z.strictObject({
  key: z.string().describe('The entry name (URL-encoded).'),
});

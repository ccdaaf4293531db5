/**
 * The console's schedules and backup files: GET /v1/schedules (next ticks, last runs, missed ticks)
 * and GET /v1/backups/:number/file (the file of a backup this node wrote, as a download).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SprocdError } from '../errors.js';
import type { ScheduleView } from '../lifecycle/schedule-report.js';
import { withRedisTimeout } from '../redis/errors.js';
import { errors, ok, otherContent } from './schemas/common.js';
import { BackupNumberParams, ScheduleListSchema } from './schemas/schedules.js';

/** Where a backup's file is, as its history record says. */
export interface BackupFileRecord {
  number: number;
  node: string;
  file?: string;
}

/** What the schedule and backup-file routes need of the node. */
export interface SchedulesRouteDeps {
  /** The schedules; throws NotReadyError until the node runs them. */
  schedules(): Promise<ScheduleView[]>;
  /** The history record of backup `number`, if the history still has it. */
  backupRecord(number: number): Promise<BackupFileRecord | undefined>;
  /** This node's name: only the node that wrote a file has it. */
  readonly name: string;
  readonly redisTimeoutMs: number;
}

/** The schedule and backup-file routes, as a fastify plugin. */
export const scheduleRoutes: FastifyPluginAsyncZod<SchedulesRouteDeps> = async (app, deps) => {
  app.get(
    '/schedules',
    {
      schema: {
        operationId: 'listSchedules',
        summary: 'The automatic backup and the scheduled procedures: next ticks, last run, missed ticks.',
        response: { 200: ok('The schedules.', ScheduleListSchema), ...errors(401) },
      },
    },
    async () => ({ items: await withRedisTimeout(deps.schedules(), deps.redisTimeoutMs) }),
  );

  app.get(
    '/backups/:number/file',
    {
      schema: {
        operationId: 'downloadBackup',
        summary: 'The file of a backup, from the node that wrote it.',
        params: BackupNumberParams,
        response: {
          200: otherContent('The backup file.', 'application/octet-stream'),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const { number } = request.params;
      const record = await withRedisTimeout(deps.backupRecord(number), deps.redisTimeoutMs);
      const gone = (why: string, details: Record<string, unknown> = {}) =>
        new SprocdError('BACKUP_NOT_FOUND', `Backup ${number}: ${why}.`, { details: { number, ...details } });
      if (!record?.file) {
        throw gone(record ? 'it wrote no file' : 'not in the backup history');
      }
      if (record.node !== deps.name) {
        throw gone(`its file is on node ${record.node}; download it there`, { node: record.node });
      }
      let stat: fs.Stats;
      try {
        stat = await fs.promises.stat(record.file);
      } catch {
        throw gone('its file is gone (SPROCD_BACKUP_KEEP removed it, or it was moved)');
      }
      return (
        reply
          .type('application/octet-stream')
          .header('content-length', stat.size)
          .header(
            'content-disposition',
            `attachment; filename="${path.basename(record.file).replace(/"/g, '')}"`,
          )
          // Streamed, not read whole: a backup can be large. (The schema types this answer as text.)
          .send(fs.createReadStream(record.file) as unknown as string)
      );
    },
  );
};

/**
 * The schedules as the console shows them: the automatic backup and each scheduled procedure, with
 * their next ticks (computed with cron-parser, the parser BullMQ computes the ticks with), their last
 * run and, for the backup, the ticks missed while no node ran (read from the backup history).
 */
import { CronExpressionParser } from 'cron-parser';
import { BACKUP_STATUS } from './backup-status.js';
import type { BackupRecord } from './backup-history.js';
import type { ProcedureSchedule } from './procedure-schedules.js';

/** How many next ticks a schedule shows. */
export const NEXT_TICKS = 5;

/** One schedule. */
export interface ScheduleView {
  id: string;
  kind: 'backup' | 'procedure';
  procedure?: string;
  cron: string;
  tz?: string;
  /** The next ticks (ISO), soonest first. */
  next: string[];
  lastRun?: { at: string; scheduledAt?: string; execution?: number; backup?: number; outcome?: string };
  /** Ticks missed while no node ran, among the retained history. */
  missed: number;
  missedTicks?: string[];
}

/** The last execution a procedure schedule queued (it is named `schedule:<procedure>`). */
export interface ScheduledRun {
  number: number;
  createdAt: string;
  state: string;
}

/** The next `count` ticks of `cron` after `now` (ISO). */
export function nextTicks(
  cron: string,
  tz: string | undefined,
  now = new Date(),
  count = NEXT_TICKS,
): string[] {
  try {
    const it = CronExpressionParser.parse(cron, { currentDate: now, ...(tz ? { tz } : {}) });
    return Array.from({ length: count }, () => it.next().toDate().toISOString());
  } catch {
    return [];
  }
}

/** The automatic backup's schedule, from the backup settings and history (newest first). */
export function backupSchedule(
  cron: string,
  tz: string | undefined,
  history: readonly BackupRecord[],
  now = new Date(),
): ScheduleView {
  const automatic = history.filter((r) => r.trigger !== 'manual');
  const missed = automatic.filter((r) => r.status === BACKUP_STATUS.missed);
  const last = automatic.find((r) => r.status !== BACKUP_STATUS.missed);
  const view: ScheduleView = {
    id: 'backup',
    kind: 'backup',
    cron,
    next: nextTicks(cron, tz, now),
    missed: missed.length,
  };
  if (tz) {
    view.tz = tz;
  }
  if (last) {
    view.lastRun = {
      at: last.startedAt,
      backup: last.number,
      outcome: last.outcome,
      ...(last.scheduledAt ? { scheduledAt: last.scheduledAt } : {}),
    };
  }
  if (missed.length) {
    view.missedTicks = missed.map((r) => r.scheduledAt ?? r.startedAt);
  }
  return view;
}

/** A procedure's schedule, with the last execution it queued (when it is still kept). */
export function procedureSchedule(
  procedure: string,
  schedule: ProcedureSchedule,
  last: ScheduledRun | undefined,
  now = new Date(),
): ScheduleView {
  const view: ScheduleView = {
    id: `procedure:${procedure}`,
    kind: 'procedure',
    procedure,
    cron: schedule.cron,
    next: nextTicks(schedule.cron, schedule.tz, now),
    missed: 0,
  };
  if (schedule.tz) {
    view.tz = schedule.tz;
  }
  if (last) {
    view.lastRun = { at: last.createdAt, execution: last.number, outcome: last.state };
  }
  return view;
}

/** One of the cluster's schedulers, as BullMQ lists them (Queue#getJobSchedulers). */
export interface SchedulerEntry {
  key: string;
  pattern?: string;
  tz?: string;
  template?: { data?: unknown };
}

/** Where {@link readSchedules} reads. */
export interface ScheduleSource {
  /** The lifecycle queue's schedulers: the cluster's schedules. */
  schedulers(): Promise<SchedulerEntry[]>;
  /** The backup history, newest first. */
  backupHistory(): Promise<BackupRecord[]>;
  /** The last execution procedure `procedure`'s schedule queued, if it is still kept. */
  lastScheduledRun(procedure: string): Promise<ScheduledRun | undefined>;
}

/** The cluster's schedules: the backup first, then the procedures by name. */
export async function readSchedules(source: ScheduleSource, now = new Date()): Promise<ScheduleView[]> {
  const schedulers = await source.schedulers();
  const out: ScheduleView[] = [];
  let history: BackupRecord[] | undefined;
  for (const s of schedulers) {
    const data = (s.template?.data ?? {}) as { kind?: string; procedure?: string };
    if (s.pattern === undefined) {
      continue;
    }
    if (data.kind === 'backup') {
      history ??= await source.backupHistory();
      out.push(backupSchedule(s.pattern, s.tz, history, now));
    } else if (data.kind === 'procedure' && data.procedure) {
      const schedule: ProcedureSchedule = { cron: s.pattern, ...(s.tz ? { tz: s.tz } : {}) };
      out.push(
        procedureSchedule(data.procedure, schedule, await source.lastScheduledRun(data.procedure), now),
      );
    }
  }
  return out.sort((a, b) =>
    a.kind !== b.kind ? (a.kind === 'backup' ? -1 : 1) : (a.procedure ?? '').localeCompare(b.procedure ?? ''),
  );
}

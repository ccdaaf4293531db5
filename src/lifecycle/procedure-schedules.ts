/**
 * The `schedule` of procedures, checked once each time jobs/ loads: the node keeps the result and
 * the schedules are set up from it (docs/ARCHITECTURE.md#schedules).
 */
import { CronExpressionParser } from 'cron-parser';
import { isValidTimezone } from '../config.js';
import { ModuleLoadError, formatZodError } from '../errors.js';
import { assertJson } from '../procedures/json.js';
import type { ProcedureRegistry } from '../procedures/registry.js';

/** A procedure's `schedule`: a cron string, or the cron with its time zone and params. */
export interface ProcedureSchedule {
  cron: string;
  tz?: string;
  params?: unknown;
}

/**
 * Reads the `schedule` of every loaded procedure (a field defineProcedure keeps as it is) and checks
 * it: cron syntax (with cron-parser, the parser BullMQ computes the ticks with), time zone, JSON
 * params that pass the procedure's params schema. A bad one throws ModuleLoadError naming the file,
 * which stops the start. Returns procedure name → schedule, for the procedures that have one.
 */
export function checkProcedureSchedules(
  registry: Pick<ProcedureRegistry, 'names' | 'get'>,
): ReadonlyMap<string, ProcedureSchedule> {
  const out = new Map<string, ProcedureSchedule>();
  for (const name of registry.names()) {
    const definition = registry.get(name);
    const raw = (definition as { schedule?: unknown } | undefined)?.schedule;
    if (!definition || raw === undefined) {
      continue;
    }
    const fail = (reason: string): never => {
      throw new ModuleLoadError(definition.file, `schedule: ${reason}`);
    };
    const schedule = readSchedule(raw, fail);
    if (schedule.tz !== undefined && !isValidTimezone(schedule.tz)) {
      fail(`tz ${JSON.stringify(schedule.tz)} is not a known IANA time zone`);
    }
    try {
      CronExpressionParser.parse(schedule.cron, schedule.tz ? { tz: schedule.tz } : {}).next();
    } catch (err) {
      fail(`${JSON.stringify(schedule.cron)} is not a cron expression: ${(err as Error).message}`);
    }
    if (schedule.params !== undefined) {
      try {
        assertJson(schedule.params, 'schedule.params');
      } catch (err) {
        fail((err as Error).message);
      }
    }
    if (definition.params) {
      const parsed = definition.params.safeParse(schedule.params);
      if (!parsed.success) {
        fail(`params do not match the procedure's params schema: ${formatZodError(parsed.error)}`);
      }
    }
    out.set(name, schedule);
  }
  return out;
}

/** The schedule `raw` describes; calls `fail` (which throws) when it has the wrong shape. */
function readSchedule(raw: unknown, fail: (reason: string) => never): ProcedureSchedule {
  if (typeof raw === 'string') {
    return { cron: raw };
  }
  if (typeof raw !== 'object' || raw === null || typeof (raw as { cron?: unknown }).cron !== 'string') {
    return fail('must be a cron string or { cron, tz?, params? }');
  }
  const r = raw as { cron: string; tz?: unknown; params?: unknown };
  if (r.tz !== undefined && typeof r.tz !== 'string') {
    fail('tz must be an IANA time zone name such as "Europe/Paris"');
  }
  const schedule: ProcedureSchedule = { cron: r.cron };
  if (r.tz !== undefined) {
    schedule.tz = r.tz as string;
  }
  if (r.params !== undefined) {
    schedule.params = r.params;
  }
  return schedule;
}

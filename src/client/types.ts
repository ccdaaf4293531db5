/**
 * The client's types, inferred from the zod schemas the API validates and documents with
 * (src/api/schemas), so the client and /openapi.json cannot drift apart; and the types of a
 * procedure's params and result, read from its `defineProcedure`.
 */
import type { z } from 'zod';
import type {
  BackupListQuerySchema,
  BackupRecordSchema,
  BackupStatusSchema,
  RestoreSummarySchema,
} from '../api/schemas/backups.js';
import type {
  HealthSchema,
  NodeRecordSchema,
  NotReadySchema,
  ProcedureSchema,
  ReadySchema,
} from '../api/schemas/cluster.js';
import type {
  ExecuteBodySchema,
  ExecuteResponseSchema,
  ExecutionListQuerySchema,
  ExecutionListSchema,
  ExecutionViewSchema,
} from '../api/schemas/executions.js';
import type { AuditPageSchema, AuditQuerySchema } from '../api/schemas/audit.js';
import type { BulkBodySchema, BulkResultSchema, TimelineSchema } from '../api/schemas/execution-admin.js';
import type { ExecutionLogsSchema } from '../api/schemas/execution-logs.js';
import type {
  ProcessDetailsSchema,
  ProcessNumberSchema,
  ProcessStateSchema,
} from '../api/schemas/processes.js';
import type { ScheduleListSchema } from '../api/schemas/schedules.js';
import type { SemaphoreStateSchema, SignalTriggeredSchema, SignalViewSchema } from '../api/schemas/sync.js';
import type { SessionSchema, StorageSnapshotSchema } from '../api/schemas/session.js';
import type { StorageEntriesSchema, StorageWriteSchema } from '../api/schemas/session-entries.js';
import type {
  StatsQuerySchema,
  StatsSchema,
  SystemEventListSchema,
  SystemEventsQuerySchema,
} from '../api/schemas/stats.js';
import type {
  WorkerCallBodySchema,
  WorkerCallSchema,
  WorkerKillSchema,
  WorkerViewSchema,
} from '../api/schemas/workers.js';
import type { ProcedureDefinition } from '../procedures/define.js';
import type { JsonValue } from '../types.js';

/** Process info of an execution with its 4D state code (GET /v1/processes/{number}). */
export type ProcessInfo = z.output<typeof ProcessDetailsSchema>;
/** Process state of an execution (GET /v1/processes/{number}/state). */
export type ProcessStateAnswer = z.output<typeof ProcessStateSchema>;
/** A signal as GET /v1/signals/{id} shows it. */
export type SignalInfo = z.output<typeof SignalViewSchema>;
/** What triggering a signal answers (POST /v1/signals/{id}/trigger). */
export type SignalTriggerAnswer = z.output<typeof SignalTriggeredSchema>;
/** Test semaphore (GET /v1/semaphores/{name}). */
export type SemaphoreInfo = z.output<typeof SemaphoreStateSchema>;
/** Process number of a process name (GET /v1/processes/by-name/{name}). */
export type ProcessNumberAnswer = z.output<typeof ProcessNumberSchema>;
/** An execution as the API shows it (GET /v1/executions/{number}). */
export type Execution = z.output<typeof ExecutionViewSchema>;
/** The answer of POST /v1/executions: the execution, `existing` when `unique` found a live one. */
export type ExecuteAnswer = z.output<typeof ExecuteResponseSchema>;
/** Execute on server's options, and `wait` (ms) to answer when it finished. */
export type ExecuteRequestOptions = Omit<z.input<typeof ExecuteBodySchema>, 'procedure' | 'params'>;
/** Filters of GET /v1/executions. */
export type ExecutionListQuery = z.output<typeof ExecutionListQuerySchema>;
/** A page of GET /v1/executions. */
export type ExecutionPage = z.output<typeof ExecutionListSchema>;
/** A bulk action and its filter (POST /v1/executions/bulk). */
export type BulkRequest = z.input<typeof BulkBodySchema>;
/** What a bulk action did, or would do with `dryRun`. */
export type BulkResult = z.output<typeof BulkResultSchema>;
/** An execution's life, oldest first (GET /v1/executions/{number}/timeline). */
export type Timeline = z.output<typeof TimelineSchema>;
/** One log line an execution wrote through ctx.log (GET /v1/executions/{number}/logs). */
export type LogLine = z.output<typeof ExecutionLogsSchema>['items'][number];
/** The automatic backup's or a procedure's schedule (GET /v1/schedules). */
export type ScheduleInfo = z.output<typeof ScheduleListSchema>['items'][number];
/** Filters and cursor of GET /v1/audit. */
export type AuditQuery = z.output<typeof AuditQuerySchema>;
/** A page of the audit trail. */
export type AuditPage = z.output<typeof AuditPageSchema>;
/** A procedure as GET /v1/procedures lists it. */
export type ProcedureInfo = z.output<typeof ProcedureSchema>;
/** The answer of GET /v1/session. */
export type SessionAnswer = z.output<typeof SessionSchema>;
/** Every storage entry (GET /v1/session/storage). */
export type StorageSnapshot = z.output<typeof StorageSnapshotSchema>;
/** Each storage entry's size, and each lock's holder and waiters (GET /v1/session/entries). */
export type StorageEntry = z.output<typeof StorageEntriesSchema>['items'][number];
/** The answer of PUT /v1/session/storage/{key}. */
export type StorageWrite = z.output<typeof StorageWriteSchema>;
/** GET /v1/stats: queue depth now and the recent series. */
export type Stats = z.output<typeof StatsSchema>;
/** The query of GET /v1/stats. */
export type StatsQuery = z.output<typeof StatsQuerySchema>;
/** One system event (GET /v1/system-events). */
export type SystemEvent = z.output<typeof SystemEventListSchema>['items'][number];
/** The query of GET /v1/system-events. */
export type SystemEventsQuery = z.output<typeof SystemEventsQuerySchema>;
/** A live node (GET /v1/nodes). */
export type NodeInfo = z.output<typeof NodeRecordSchema>;
/** GET /v1/backups. */
export type BackupStatus = z.output<typeof BackupStatusSchema>;
/** Filters of GET /v1/backups. */
export type BackupListQuery = z.output<typeof BackupListQuerySchema>;
/** One backup of the history (and the answer of POST /v1/backups). */
export type BackupRecord = z.output<typeof BackupRecordSchema>;
/** The answer of POST /v1/restore. */
export type RestoreSummary = z.output<typeof RestoreSummarySchema>;
/** GET /healthz. */
export type HealthAnswer = z.output<typeof HealthSchema>;
/** GET /readyz: ready, or not and why. */
export type ReadyAnswer = z.output<typeof ReadySchema> | z.output<typeof NotReadySchema>;

/** A procedure module's default export: `typeof import('./jobs/hello.js').default`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any procedure, whatever its types
export type AnyProcedure = ProcedureDefinition<any, any, any> | ((params: any, ctx: any) => unknown);

/** Procedure names and their types: `{ hello: typeof import('./jobs/hello.js').default }`. */
export type ProcedureTypes = Record<string, AnyProcedure>;

/** What a request gives as the params of `T` (its schema's input: defaulted fields optional). */
export type ParamsOf<T> =
  T extends ProcedureDefinition<infer _P, infer _R, infer I>
    ? I
    : T extends (params: infer P, ...rest: never[]) => unknown
      ? P
      : unknown;

/** What `T`'s run resolves to: the execution's result once it completed. */
export type ResultOf<T> =
  T extends ProcedureDefinition<infer _P, infer R, infer _I>
    ? Awaited<R>
    : T extends (...args: never[]) => infer R
      ? Awaited<R>
      : JsonValue;

/** An execution of `T`, its result typed. */
export type ExecutionOf<T> = Omit<ExecuteAnswer, 'result'> & { result?: ResultOf<T> };

/** The procedure `execute(name, ...)` is typed by: the type argument, else the client's map, else none. */
export type ProcedureFor<Map, N extends string, T> = [T] extends [never]
  ? N extends keyof Map
    ? Map[N]
    : (params: unknown) => JsonValue
  : T;

/**
 * `execute`'s arguments after the name: params may be left out when the procedure runs without
 * (its schema takes undefined, or `{}`: every field optional or defaulted), as the node does.
 */
export type ExecuteArgs<T> =
  undefined extends ParamsOf<T>
    ? [params?: ParamsOf<T>, options?: ExecuteRequestOptions]
    : // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- "an empty object fits"
      {} extends ParamsOf<T>
      ? [params?: ParamsOf<T>, options?: ExecuteRequestOptions]
      : [params: ParamsOf<T>, options?: ExecuteRequestOptions];

/** A worker as GET /v1/workers shows it. */
export type WorkerInfo = z.output<typeof WorkerViewSchema>;
/** The body of CALL WORKER (POST /v1/workers/{name}/calls). */
export type WorkerCallRequest = z.input<typeof WorkerCallBodySchema>;
/** What CALL WORKER answers: the queued message. */
export type WorkerCallAnswer = z.output<typeof WorkerCallSchema>;
/** What KILL WORKER answers (DELETE /v1/workers/{name}). */
export type WorkerKillAnswer = z.output<typeof WorkerKillSchema>;

/** Execute on server's options in a batch: those of a single request but `wait`. */
export type ExecuteBatchItemOptions = Omit<ExecuteRequestOptions, 'wait'>;

/**
 * One execution of `executeBatch`: with a map of procedures, one of its procedures with params typed
 * by its schema; without one, any procedure and params.
 */
export type ExecuteBatchItem<Map> = [keyof Map & string] extends [never]
  ? { procedure: string; params?: unknown } & ExecuteBatchItemOptions
  : {
      [N in keyof Map & string]: { procedure: N; params?: ParamsOf<Map[N]> } & ExecuteBatchItemOptions;
    }[keyof Map & string];

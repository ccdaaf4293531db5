/**
 * sprocd's public API: what a procedure or hook module imports (`defineProcedure`, `z`, the types),
 * `createNode` to embed a node, and a typed HTTP client.
 *
 * An embedded node (`const node = createNode(loadSettings())`) offers `start()`, `stop()` and
 * `reload()`, and reads `name`, `state` ({@link NodeState}), `url` (its API), `settings`, `session`
 * (the shared Session, once started) and `isReady()`; everything else about it stays inside.
 */
export { z } from 'zod';
export {
  defineProcedure,
  type Procedure,
  type ProcedureDefinition,
  type ProcedureScheduleOption,
  type Backoff,
  type Isolation,
} from './procedures/define.js';
export {
  BACKUP_STATUS,
  type BackupRecord,
  type BackupHookContext,
  type BackupTrigger,
  type RestoreSummary,
} from './lifecycle/index.js';
export type {
  JsonValue,
  Draft,
  Storage,
  Session,
  SessionInfo,
  ExecuteOptions,
  ExecutionView,
  ExecutionState,
  ProcessInfo,
  HookContext,
  ProcedureContext,
  ErrCallHandler,
  Signal,
  Processes,
  ProcessDetails,
  ProcessStateCode,
  WorkerScope,
} from './types.js';
export type { SystemEvent } from './lifecycle/system-events.js';
export type { OnErrorInfo, OnErrorError } from './lifecycle/on-error.js';
export { SprocdError, AbortedError, ValidationError, SignalNotFoundError, type ErrorCode } from './errors.js';
export { UnrecoverableError } from 'bullmq';
export { SprocdClient, ApiError, SprocdApiError, type ClientOptions } from './client.js';
export { loadSettings, type Settings } from './config.js';
export { createNode } from './start.js';
export type { SprocdNode } from './node.js';
export type { NodeState } from './node-state.js';

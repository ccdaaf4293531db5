/**
 * `sprocd/client`: a typed client for a node's HTTP API. Import it without the server:
 * `import { SprocdClient } from 'sprocd/client'`.
 */
export { SprocdClient, type ClientOptions, type EventQuery } from './client.js';
export { ApiError, SprocdApiError, type ApiErrorCode, type ClientErrorCode } from './errors.js';
export type * from './types.js';
export type { ErrorCode } from '../errors.js';
export type { EventStreamOptions, StreamEvent } from '../events/sse-reader.js';
export type { ExecutionState, JsonValue } from '../types.js';

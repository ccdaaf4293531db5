/**
 * What `import ... from 'sprocd'` gives a module loaded in a procedure's worker thread: what a
 * procedure module uses (defineProcedure, z, the error classes), without the server the full entry
 * (src/index.ts) would load into every thread. Types come from the full entry as usual.
 */
export { z } from 'zod';
export { defineProcedure } from '../define.js';
export { SprocdError, AbortedError, ValidationError, SignalNotFoundError } from '../../errors.js';
export { UnrecoverableError } from 'bullmq';

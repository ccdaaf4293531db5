import { defineProcedure } from 'sprocd';

/** Does nothing, in a worker thread: what `isolation: 'thread'` costs an execution. */
export default defineProcedure({ isolation: 'thread', run: async () => null });

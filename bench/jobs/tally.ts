/** Counts itself for bench/workers.ts (same process): the no-op a worker's messages run. */
export default async () => {
  (globalThis as { __benchTally?: () => void }).__benchTally?.();
  return null;
};

/** A no-op procedure: bench/console.ts fills the queue with five of them to filter the list by one. */
export default async () => null;

/** Does nothing: the throughput benchmark's procedure. */
export default async () => null;

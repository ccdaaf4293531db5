/**
 * Every Redis key sprocd uses, in one place. All of them share the `{prefix}` hash tag, so that
 * multi-key Lua scripts also run on Redis Cluster, and two deployments with other prefixes never meet.
 */

/** Name of the single BullMQ queue all procedures travel through. */
export const QUEUE_NAME = 'procedures';

/** The keys of one deployment. */
export interface Keys {
  /** BullMQ's `prefix` option: its keys become `{prefix}:procedures:*`. */
  readonly bullPrefix: string;
  /** Counter that allots execution numbers (INCR). */
  readonly sequence: string;
  /** Pub/sub channel carrying abort and wake requests to whichever node runs the execution. */
  readonly controlChannel: string;
  /** Hash holding the session's identity (id, creationDateTime, ...). */
  readonly session: string;
  /** Everything the session storage owns starts with this. */
  readonly storagePrefix: string;
  /** Hash of live nodes → heartbeat JSON. */
  readonly nodes: string;
  /** Pub/sub channel for system events. */
  readonly eventsChannel: string;
  /** Everything backups own starts with this. */
  readonly backupPrefix: string;
  /** A BullMQ job key for an execution number. */
  job(number: number): string;
  /** Any other key under the prefix. */
  other(name: string): string;
}

/** Keys for the deployment named by `prefix`. */
export function createKeys(prefix: string): Keys {
  const tag = `{${prefix}}`;
  return {
    bullPrefix: tag,
    sequence: `${tag}:seq`,
    controlChannel: `${tag}:control`,
    session: `${tag}:session`,
    storagePrefix: `${tag}:storage`,
    nodes: `${tag}:nodes`,
    eventsChannel: `${tag}:events`,
    backupPrefix: `${tag}:backup`,
    job: (number) => `${tag}:${QUEUE_NAME}:${jobIdOf(number)}`,
    other: (name) => `${tag}:${name}`,
  };
}

/**
 * BullMQ refuses integer job ids, so execution N travels as job "eN"; the number stays the public
 * name everywhere else.
 */
export function jobIdOf(number: number): string {
  return `e${number}`;
}

/** The execution number of a job id made by jobIdOf, or undefined for foreign ids. */
export function numberOfJobId(jobId: string | undefined): number | undefined {
  if (jobId === undefined || !/^e[1-9]\d*$/.test(jobId)) {
    return undefined;
  }
  return Number(jobId.slice(1));
}

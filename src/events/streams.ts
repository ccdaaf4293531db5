/** The two Redis streams the event hub reads (./hub.ts), named for a deployment. */
import { bullQueueKeys } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';

/** The streams the hub reads, and how to find an execution's job hash. */
export interface HubStreams {
  /** BullMQ's events stream of the procedures queue. */
  readonly bull: string;
  /** sprocd's event log. */
  readonly log: string;
  /** The job hash of execution `number` (its `name` is the procedure, `ats` its starts). */
  job(number: number): string;
}

/** The streams of the deployment `keys`. */
export function hubStreams(keys: Keys): HubStreams {
  const bull = bullQueueKeys(keys);
  return { bull: bull.events, log: keys.eventLog, job: (n) => bull.job(jobIdOf(n)) };
}

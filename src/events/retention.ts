/**
 * How much event history Redis keeps for clients that resume with Last-Event-ID.
 *
 * BullMQ's job-event stream is trimmed to about `streams.events.maxLen` entries (BullMQ's default is
 * 10,000). An execution writes about five (added, waiting, active, completed, and its progress), so
 * the default holds the last 2,000 executions: seconds of a busy cluster. sprocd keeps ten times that,
 * minutes of history at hundreds of executions a second, for some megabytes of Redis memory.
 */

/** The `streams.events.maxLen` of the procedures queue. */
export const JOB_EVENTS_MAX_LEN = 100_000;

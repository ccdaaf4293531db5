/**
 * jobJsonOfHash decodes a job's stored options as BullMQ's Job.optsFromJSON does, whatever they hold,
 * though it keeps the decoded options of the text after the job id (executions differ only in it).
 */
import { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { jobJsonOfHash } from '../../src/redis/bullmq-internals.js';

const hash = (opts: string | undefined) => ({
  name: 'p',
  data: '{}',
  timestamp: '1',
  ...(opts === undefined ? {} : { opts }),
});

describe('jobJsonOfHash options', () => {
  const cases = [
    '{"jobId":"e1","attempts":1}',
    '{"jobId":"e2","attempts":1}', // same text after the id: from what the first one kept
    '{"jobId":"e3","attempts":3,"stackTraceLimit":1}',
    '{"jobId":"e4","attempts":2,"backoff":{"type":"fixed","delay":50}}', // nested: decoded each time
    '{"jobId":"e5","attempts":2,"backoff":{"type":"fixed","delay":50}}',
    '{"jobId":"e\\"6","attempts":1}', // an escaped quote in the id
    '{"jobId":"e\\u00017","attempts":1}', // an escape that is not a quote
    '{"jobId":"e\\\\","attempts":1}', // an escaped backslash right before the closing quote
    '{"attempts":1,"jobId":"e9"}', // the id not first
    '{"jobId":"e10","kl":5,"attempts":1}', // a short key BullMQ renames (keepLogs)
    '{"jobId":"e11"}',
    '{}',
    undefined,
  ];

  it.each(cases.map((c) => [c ?? '(none)', c]))('decodes %s as BullMQ does', (_, opts) => {
    expect(jobJsonOfHash(hash(opts)).opts).toEqual(Job.optsFromJSON(opts));
    // Twice: the second from what the first one kept, where it kept anything.
    expect(jobJsonOfHash(hash(opts)).opts).toEqual(Job.optsFromJSON(opts));
  });

  it("gives each job options of its own: changing one job's changes no other's", () => {
    const a = jobJsonOfHash(hash('{"jobId":"e20","attempts":1}')).opts as Record<string, unknown>;
    a.attempts = 9;
    const b = jobJsonOfHash(hash('{"jobId":"e21","attempts":1}')).opts;
    expect(b).toEqual({ jobId: 'e21', attempts: 1 });
    const backoff = '"attempts":2,"backoff":{"type":"fixed","delay":50}}';
    const c = jobJsonOfHash(hash(`{"jobId":"e22",${backoff}`)).opts as { backoff: { delay: number } };
    c.backoff.delay = 1;
    const d = jobJsonOfHash(hash(`{"jobId":"e23",${backoff}`)).opts as { backoff: { delay: number } };
    expect(d.backoff.delay).toBe(50);
  });
});

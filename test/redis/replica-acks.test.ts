/**
 * Replica acknowledgements on the test Redis, which has no replica: WAIT 1 then always times out, which
 * is what these tests need (a refusal, one WAIT for many writes, no acknowledgement across a reconnect).
 * The fail-overs themselves are in test/sentinel.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NotReplicatedError } from '../../src/errors.js';
import { closeConnection, openConnection, waitReady } from '../../src/redis/connections.js';
import { ReplicaAcks, acknowledged } from '../../src/redis/replica-acks.js';
import { testRedisUrl, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('acks');
const redis = openConnection('command', { url: testRedisUrl(), timeoutMs: 2000, name: prefix });

afterAll(async () => {
  await redis.del(`${prefix}:k`);
  await closeConnection(redis);
});

async function refusal(work: Promise<unknown>): Promise<NotReplicatedError> {
  const err = await work.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NotReplicatedError);
  return err as NotReplicatedError;
}

describe('ReplicaAcks', () => {
  it('acknowledges at once when off', async () => {
    await waitReady(redis, 5000);
    const acks = new ReplicaAcks(redis, { replicas: 0, timeoutMs: 50 });
    await expect(acknowledged(acks, redis.set(`${prefix}:k`, '1'))).resolves.toBe('OK');
    expect(acks.waits).toBe(0);
    acks.close();
  });

  it('refuses with NOT_REPLICATED when fewer replicas confirm in time, and says how many did', async () => {
    await waitReady(redis, 5000);
    const acks = new ReplicaAcks(redis, { replicas: 1, timeoutMs: 50 });
    const err = await refusal(acknowledged(acks, redis.set(`${prefix}:k`, '2')));
    expect(err.code).toBe('NOT_REPLICATED');
    expect(err.details).toMatchObject({ reason: 'timeout', wanted: 1, got: 0, retryAfterSeconds: 1 });
    acks.close();
  });

  it('covers the writes that complete while one WAIT is in flight with the next WAIT (group commit)', async () => {
    await waitReady(redis, 5000);
    const acks = new ReplicaAcks(redis, { replicas: 1, timeoutMs: 50 });
    const writes = Array.from({ length: 50 }, (_, i) =>
      acknowledged(acks, redis.hset(`${prefix}:k2`, String(i), '1')).catch((e: unknown) => e),
    );
    const outcomes = await Promise.all(writes);
    expect(outcomes.every((o) => o instanceof NotReplicatedError)).toBe(true);
    // The first write's WAIT, then one for all that completed meanwhile.
    expect(acks.waits).toBeLessThanOrEqual(2);
    await redis.del(`${prefix}:k2`);
    acks.close();
  });

  it('never acknowledges across a reconnect, even when the WAIT is sent again after it', async () => {
    await waitReady(redis, 5000);
    const acks = new ReplicaAcks(redis, { replicas: 1, timeoutMs: 300 });
    // Written, then the connection drops before the confirmation was asked for.
    const ticket = acks.ticket();
    await redis.set(`${prefix}:k`, '3');
    redis.disconnect(true);
    await waitReady(redis, 5000);
    expect((await refusal(acks.confirm(ticket))).details).toMatchObject({ reason: 'reconnected' });

    // The connection drops while the WAIT is in flight: ioredis sends it again on the new connection,
    // whose answer must not count.
    const next = acks.ticket();
    await redis.set(`${prefix}:k`, '4');
    const confirming = acks.confirm(next);
    redis.disconnect(true);
    expect((await refusal(confirming)).details).toMatchObject({ reason: 'reconnected' });
    acks.close();
  });

  it('routes every slot to the one group commit on a single server, where one master has every write', async () => {
    await waitReady(redis, 5000);
    const acks = new ReplicaAcks(redis, { replicas: 1, timeoutMs: 50, routeKey: `{${prefix}}:seq` });
    expect(acks.routed(`{${prefix}:q1}`)).toBe(acks);
    expect(acks.routed(`{${prefix}}:seq`)).toBe(acks);
    await refusal(acknowledged(acks.routed(`{${prefix}:q1}`), redis.set(`${prefix}:k`, '5')));
    expect(acks.allWaits).toBe(1);
    acks.close();
  });
});

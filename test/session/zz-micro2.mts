import pino from 'pino';
import { openConnection, closeConnection } from '../../src/redis/connections.js';
import { createKeys } from '../../src/redis/keys.js';
import { LockManager } from '../../src/session/locks.js';
import { storageLayout } from '../../src/session/layout.js';
import { scripts } from '../../src/session/scripts.js';
const url = 'redis://127.0.0.1:6499';
const prefix = 'micro2' + Date.now();
const command = openConnection('command', { url, timeoutMs: 5000, name: 'smoke' });
const blocking = openConnection('session', { url, timeoutMs: 5000, name: 'smoke' });
const layout = storageLayout(createKeys(prefix));
const locks = new LockManager({ redis: command, blocking, layout, nodeId: 'abc', leaseMs: 5000, timeoutMs: 5000, logger: pino({ level: 'warn' }) });
await locks.start();
const sha = await command.script('LOAD', 'return 1') as string;
for (let round = 0; round < 4; round++) {
  const N = 3000;
  let acq = 0n, com = 0n;
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const held = await locks.acquire(['hot']);
    const t1 = process.hrtime.bigint();
    await locks.commit(held, new Map([['hot', { op: 'set', json: '{"n":1}' }]]));
    const t2 = process.hrtime.bigint();
    acq += t1 - t0; com += t2 - t1;
  }
  let t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { await command.evalsha(sha, 0); }
  const ev = Number(process.hrtime.bigint() - t) / 1000 / N;
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { await scripts.heartbeat.run(command, [layout.alive('zz')], [5000]); }
  const hb = Number(process.hrtime.bigint() - t) / 1000 / N;
  console.log(`acquire ${(Number(acq) / 1000 / N).toFixed(1)}us commit ${(Number(com) / 1000 / N).toFixed(1)}us evalsha ${ev.toFixed(1)}us heartbeat-script ${hb.toFixed(1)}`);
}
await locks.close(); await closeConnection(blocking); await closeConnection(command);

import pino from 'pino';
import { openConnection, closeConnection } from '../../src/redis/connections.js';
import { createKeys } from '../../src/redis/keys.js';
import { openSession } from '../../src/session/index.js';
const url = 'redis://127.0.0.1:6499';
const prefix = 'micro' + Date.now();
const command = openConnection('command', { url, timeoutMs: 5000, name: 'smoke' });
const s = await openSession({ command, redisUrl: url, keys: createKeys(prefix), userName: 'sprocd', lockLeaseMs: 5000, lockTimeoutMs: 50000, maxEntryBytes: 65536, connectionName: 'smoke', logger: pino({ level: 'warn' }) });
const st = s.session.storage;
const sha = await command.script('LOAD', 'return 1') as string;
for (let round = 0; round < 3; round++) {
  const N = 3000;
  let t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await st.use('hot', (d) => { d.n = ((d.n as number) ?? 0) + 1; });
  const useUs = Number(process.hrtime.bigint() - t) / 1000 / N;
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { await command.evalsha(sha, 0); await command.evalsha(sha, 0); }
  const evUs = Number(process.hrtime.bigint() - t) / 1000 / N;
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) { await command.get('x'); await command.set('x', '1'); }
  const gsUs = Number(process.hrtime.bigint() - t) / 1000 / N;
  console.log(`use ${useUs.toFixed(1)}us  2xevalsha ${evUs.toFixed(1)}us  get+set ${gsUs.toFixed(1)}us`);
}
await s.close(); await closeConnection(command);

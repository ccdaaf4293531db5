import { AsyncLocalStorage } from 'node:async_hooks';
import { DraftScope } from '../../src/session/drafts.js';
import { serializeEntry, parseEntry } from '../../src/session/values.js';
const N = 200000;
let json = '{"n":1}';
let t = process.hrtime.bigint();
for (let i = 0; i < N; i++) {
  const scope = new DraftScope();
  const e = scope.open('hot', parseEntry(json) as Record<string, unknown>, true);
  const d = e.proxy; d.n = ((d.n as number) ?? 0) + 1;
  scope.end();
  json = serializeEntry('hot', e.raw, 65536);
}
console.log('draft cycle', (Number(process.hrtime.bigint() - t) / 1000 / N).toFixed(2), 'us', json);
const als = new AsyncLocalStorage<object>();
t = process.hrtime.bigint();
for (let i = 0; i < N / 10; i++) { await als.run({}, async () => { await null; }); }
console.log('als.run+await', (Number(process.hrtime.bigint() - t) / 1000 / (N / 10)).toFixed(2), 'us');
t = process.hrtime.bigint();
for (let i = 0; i < N / 10; i++) { await (async () => { await null; })(); }
console.log('plain await', (Number(process.hrtime.bigint() - t) / 1000 / (N / 10)).toFixed(2), 'us');

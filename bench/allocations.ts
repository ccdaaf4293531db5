/**
 * What a no-op execution allocates in the node, by where (issue 11): the drain of bench/graphile.ts in
 * sprocd's fastest configuration (concurrency 256, batch 256), under V8's sampling heap profiler with
 * every object counted, collected or not. Bytes per execution change little from run to run where the
 * drain's rate and CPU time swing by a fifth on this VM, so this is the measure of a change to the hot
 * path's allocations (a quarter of a drain's node time is garbage collection: docs/BENCHMARKS.md).
 * Not part of `npm run bench`; run on its own:
 *
 *   node --import tsx bench/allocations.ts
 *
 * ALLOC_TOTAL executions (default 40,000); ALLOC_DEPTH frames per allocation site (default 1: the
 * allocating function); ALLOC_FILTER keeps the sites whose frames name it. Starts its own redis-server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { startRedisServer } from '../src/redis/embedded.js';
import { sprocdSide } from './graphile.js';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

const total = Number(process.env.ALLOC_TOTAL ?? 40_000);
const depth = Number(process.env.ALLOC_DEPTH ?? 1);
const filter = process.env.ALLOC_FILTER;

/** Bytes allocated per site (its last `depth` frames, innermost last). */
function sites(head: SamplingNode): Map<string, number> {
  const bytes = new Map<string, number>();
  const walk = (node: SamplingNode, stack: string[]) => {
    const f = node.callFrame;
    const frame = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    const here = [...stack, frame].slice(-depth);
    if (node.selfSize > 0) {
      const key = here.join(' < ');
      bytes.set(key, (bytes.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) {
      walk(child, here);
    }
  };
  walk(head, []);
  return bytes;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-alloc-'));
const server = await startRedisServer({ dir, appendonly: false });
const session = new Session();
session.connect();
const side = await sprocdSide(server.url, 'sprocd', {
  SPROCD_CONCURRENCY: '256',
  SPROCD_WORKER_BATCH: '256',
});
try {
  await side.drain(2000);
  await side.drain(20_000); // warm-up: optimized code, grown pools
  await side.drain(total, {
    before: async () => {
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 512,
        includeObjectsCollectedByMinorGC: true,
        includeObjectsCollectedByMajorGC: true,
      });
    },
    after: async () => {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      const bytes = sites(profile.head as unknown as SamplingNode);
      const all = [...bytes.values()].reduce((a, b) => a + b, 0);
      console.log(`allocated per execution: ${(all / total).toFixed(0)} B (drain of ${total})`);
      const shown = [...bytes]
        .filter(([site]) => !filter || site.includes(filter))
        .sort((a, b) => b[1] - a[1]);
      for (const [site, n] of shown.slice(0, 30)) {
        console.log(`${(n / total).toFixed(0).padStart(7)} B  ${site}`);
      }
    },
  });
} finally {
  await side.close();
  await server.stop();
  session.disconnect();
}

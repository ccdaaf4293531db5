/**
 * The live clients of bench/console.ts, in a process of their own as they would be on operators'
 * machines: 3 consoles on the executions page (GET /v1/events with the types and digest that page asks for, and
 * the list loaded again as that page does: at most once a second while events come, its `throttleMs`
 * in src/console/pages/executions.js, and never two loads at once, as useLoad in src/console/lib/live.js)
 * and 3
 * `sprocd watch` (SprocdClient.events() without a filter, each event formatted as the CLI prints it).
 *
 * Usage: console-clients.ts URL. Reads commands on stdin: `mark` starts new figures, `report` prints
 * the figures since the mark as one JSON line; `quit` ends. Prints `ready` once every stream is open.
 */
import readline from 'node:readline';
import { formatEvent } from '../src/cli-events.js';
import { SprocdClient } from '../src/client.js';
import type { StreamEvent } from '../src/events/sse-reader.js';

const url = process.argv[2] as string;
/** How often a console reloads its list while events come (0: never): the executions page's throttle. */
const reloadMs = Number(process.env.BENCH_CONSOLE_RELOAD_MS ?? 1000);
/** The digest the console's tab stream asks for (src/console/lib/live.js); 0: each event, as before. */
const digestMs = Number(process.env.BENCH_CONSOLE_DIGEST_MS ?? 1000) || undefined;
const client = new SprocdClient({ url, token: '' });
const controller = new AbortController();

let latencies: number[] = [];
let events = 0;
let reloads = 0;
let ended = 0;
/** Characters the watch clients would have printed (kept so the formatting is not optimized away). */
let printed = 0;
let cpu = process.cpuUsage();
let since = performance.now();

/** Completion to arrival, for each `completed` event (`at` is when BullMQ wrote it, in Redis). */
function measure(event: StreamEvent): void {
  events++;
  const data = event.data as { state?: string; at?: string } | undefined;
  if (event.type === 'execution.state' && data?.state === 'completed' && data.at) {
    latencies.push(Date.now() - Date.parse(data.at));
  }
}

async function consoleClient(opened: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let loading = false;
  let stale = false;
  // As useLoad: events mark the list stale; a throttle timer loads it, unless a load runs, which then
  // loads once more after it.
  const soon = () => {
    stale = true;
    timer ??= setTimeout(() => {
      timer = undefined;
      if (!loading) {
        void reload();
      }
    }, reloadMs);
  };
  const reload = async () => {
    loading = true;
    stale = false;
    reloads++;
    try {
      await (await fetch(`${url}/v1/executions?limit=50`)).arrayBuffer();
    } catch {
      // the node stopped; the stream ends too
    } finally {
      loading = false;
      if (stale && !controller.signal.aborted) {
        soon();
      }
    }
  };
  // As the page's tab stream: execution events as a digest a second, since the page only reloads.
  const stream = client.events(
    { type: ['execution.removed', 'execution.state', 'system'], digest: digestMs },
    { signal: controller.signal, onOpen: opened },
  );
  for await (const event of stream) {
    measure(event);
    if (reloadMs > 0) {
      soon();
    }
  }
  clearTimeout(timer);
  ended++;
}

async function watchClient(opened: () => void): Promise<void> {
  for await (const event of client.events({}, { signal: controller.signal, onOpen: opened })) {
    measure(event);
    printed += formatEvent(event, new Date()).length; // what `sprocd watch` would print
  }
  ended++;
}

let open = 0;
const opened = () => {
  if (++open === 6) {
    process.stdout.write('ready\n');
  }
};
const clients = [
  ...Array.from({ length: 3 }, () => consoleClient(opened)),
  ...Array.from({ length: 3 }, () => watchClient(opened)),
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line === 'mark') {
    latencies = [];
    events = 0;
    reloads = 0;
    cpu = process.cpuUsage();
    since = performance.now();
  } else if (line === 'report') {
    const sorted = [...latencies].sort((a, b) => a - b);
    const used = process.cpuUsage(cpu);
    process.stdout.write(
      `${JSON.stringify({
        events,
        reloads,
        ended,
        printed,
        samples: sorted.length,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1) ?? NaN,
        cpuShare: (used.user + used.system) / 1000 / (performance.now() - since),
      })}\n`,
    );
  } else if (line === 'quit') {
    break;
  }
}
controller.abort();
// Keep-alive sockets of the list reloads would hold the process: the figures are out, so end it.
await Promise.race([Promise.allSettled(clients), new Promise((r) => setTimeout(r, 1000))]);
process.exit(0);

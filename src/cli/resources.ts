/** `sprocd session`, `storage`, `nodes`, `procedures`, `status`, `openapi`: what a node knows. */
import { Command } from 'commander';
import type { CliContext } from './context.js';
import { CliError, EXIT } from './exit.js';
import { printJson, printTable } from './output.js';

/** Seconds since `iso`, for people. */
function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
}

/** The commands that read the session, the cluster and the node. */
export function resourceCommands(ctx: CliContext): Command[] {
  const session = new Command('session')
    .description('show the stored-procedure session')
    .action(async () => printJson(ctx.io, await ctx.client().session()));

  const storage = new Command('storage')
    .description('show the session storage, or one entry')
    .argument('[key]', 'entry name')
    .action(async (key?: string) => printJson(ctx.io, await ctx.client().storage(key)));

  const nodes = new Command('nodes').description('list the live nodes').action(async () => {
    const items = await ctx.client().nodes();
    if (ctx.json()) {
      printJson(ctx.io, items);
      return;
    }
    printTable(
      ctx.io,
      ['NODE', 'HOST', 'PID', 'RUNNING', 'VERSION', 'STARTED', 'HEARTBEAT', 'PROCEDURES'],
      items.map((n) => [
        n.node,
        n.host,
        String(n.pid),
        `${n.active}/${n.concurrency}`,
        n.version ?? '',
        n.startedAt,
        ago(n.heartbeatAt),
        String(n.procedures.length),
      ]),
    );
  });

  const procedures = new Command('procedures')
    .description('list the procedures of jobs/ (--json: with their params JSON Schema)')
    .action(async () => {
      const items = await ctx.client().procedures();
      if (ctx.json()) {
        printJson(ctx.io, items);
        return;
      }
      printTable(
        ctx.io,
        ['NAME', 'PARAMS', 'DESCRIPTION'],
        items.map((p) => {
          const props = (p.params as { properties?: Record<string, unknown> } | undefined)?.properties;
          return [
            p.name,
            p.params === undefined ? 'any' : props ? Object.keys(props).join(',') || '{}' : 'schema',
            p.description ?? '',
          ];
        }),
      );
    });

  const status = new Command('status')
    .description("the node's health and readiness; exits 7 when it does not take work")
    .action(async () => {
      const client = ctx.client();
      const [health, ready] = await Promise.all([client.health(), client.ready()]);
      if (ctx.json()) {
        printJson(ctx.io, {
          ...health,
          ready: ready.status === 'ready',
          reason: 'reason' in ready ? ready.reason : undefined,
        });
      } else {
        const why = 'reason' in ready && ready.reason ? ` (${ready.reason})` : '';
        ctx.io.out.write(`${health.node}: ${health.state}, ${ready.status}${why}\n`);
      }
      if (ready.status !== 'ready') {
        throw new CliError('NOT_READY', `${health.node} does not take work now`, EXIT.unavailable);
      }
    });

  const openapi = new Command('openapi')
    .description("print the node's OpenAPI 3.1 document (also served at /openapi.json, browsable at /docs)")
    .action(async () => printJson(ctx.io, await ctx.client().openapi()));

  const schedules = new Command('schedules')
    .description('the automatic backup and the scheduled procedures: next tick, last run, missed ticks')
    .action(async () => {
      const items = await ctx.client().schedules();
      if (ctx.json()) {
        printJson(ctx.io, items);
        return;
      }
      printTable(
        ctx.io,
        ['SCHEDULE', 'CRON', 'NEXT', 'LAST RUN', 'OUTCOME', 'MISSED'],
        items.map((s) => [
          s.kind === 'backup' ? 'backup' : (s.procedure ?? s.id),
          s.tz ? `${s.cron} (${s.tz})` : s.cron,
          s.next[0] ?? '',
          s.lastRun?.at ?? '',
          s.lastRun?.outcome ?? '',
          String(s.missed),
        ]),
      );
    });

  return [session, storage, nodes, procedures, schedules, status, openapi];
}

/** `sprocd audit`: the audit trail, newest first (GET /v1/audit; needs the admin scope). */
import { Command } from 'commander';
import { AUDIT_ACTIONS, type AuditAction } from '../auth/audit.js';
import { oneOf, wholeNumber } from './args.js';
import type { CliContext } from './context.js';
import { printJson, printTable } from './output.js';

/** What an entry acted on, for people: `reports/daily #12`, `key cart`, `backup 3`, ... */
function detailsText(details: Record<string, unknown> | undefined): string {
  if (!details) {
    return '';
  }
  return Object.entries(details)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** `sprocd audit`. */
export function auditCommand(ctx: CliContext): Command {
  return new Command('audit')
    .description(
      'the audit trail, newest first: who executed, aborted, retried, backed up, restored or edited what',
    )
    .option('--limit <n>', 'how many entries (1-1000, default 50)', wholeNumber(1, 1000))
    .option('--caller <name>', "only this caller's entries")
    .option('--action <action>', `only this action (${AUDIT_ACTIONS.join(', ')})`, oneOf(AUDIT_ACTIONS))
    .option('--before <cursor>', 'older entries: the cursor the previous page printed')
    .action(async (opts: { limit?: number; caller?: string; action?: AuditAction; before?: string }) => {
      const page = await ctx.client().audit(opts);
      if (ctx.json()) {
        printJson(ctx.io, page);
        return;
      }
      printTable(
        ctx.io,
        ['TIME', 'CALLER', 'ACTION', 'STATUS', 'NODE', 'DETAILS'],
        page.items.map((e) => [e.at, e.caller, e.action, String(e.status), e.node, detailsText(e.details)]),
      );
      if (page.nextCursor) {
        ctx.io.out.write(`(older entries: sprocd audit --before ${page.nextCursor})\n`);
      }
    });
}

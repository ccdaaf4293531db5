/**
 * The CLI's live views, on GET /v1/events: `sprocd watch` prints one line per event (or NDJSON), and
 * `--follow` of `exec` and `get` shows one execution's progress until it ends.
 */
import { Command } from 'commander';
import { ApiError, type EventQuery, type SprocdClient } from './client.js';
import type { StreamEvent } from './events/sse-reader.js';
import type { ExecutionState, ExecutionView, JsonValue } from './types.js';

/** Where the live views write. */
export interface Terminal {
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream & { isTTY?: boolean };
}

const processTerminal: Terminal = { out: process.stdout, err: process.stderr };

const FINAL: readonly ExecutionState[] = ['completed', 'failed', 'aborted'];

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** An execution number option, checked here so that no NaN reaches the server. */
function numberArg(raw: string): number {
  if (!/^[1-9]\d{0,15}$/.test(raw)) {
    throw new ApiError('BAD_ARGUMENT', `--number must be an execution number, not ${JSON.stringify(raw)}`, 0);
  }
  return Number(raw);
}

/** `sprocd watch`: the node's events, one line each, until Ctrl-C. */
export function watchCommand(client: () => SprocdClient, terminal: Terminal = processTerminal): Command {
  return new Command('watch')
    .description('print the live events: executions, system events, backups (Ctrl-C ends)')
    .option('--procedure <name>', 'only executions of this procedure (repeatable)', collect, [])
    .option('--number <n>', 'only this execution (repeatable)', collect, [])
    .option(
      '--type <type>',
      'only these event types, e.g. execution.state, system, backup (repeatable, or comma-separated)',
      collect,
      [],
    )
    .option('--after <id>', 'start after this event id (from an earlier --json line) instead of now')
    .option('--json', 'print one JSON object per line (NDJSON): {"id","type","data"}')
    .action(
      async (opts: {
        procedure: string[];
        number: string[];
        type: string[];
        after?: string;
        json?: boolean;
      }) => {
        const filter: EventQuery = {
          procedure: opts.procedure.length ? opts.procedure : undefined,
          number: opts.number.length ? opts.number.map(numberArg) : undefined,
          type: opts.type.length ? opts.type : undefined,
        };
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          for await (const event of client().events(filter, {
            signal: controller.signal,
            lastEventId: opts.after,
          })) {
            terminal.out.write(
              opts.json ? `${JSON.stringify(event)}\n` : `${formatEvent(event, new Date())}\n`,
            );
          }
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      },
    );
}

/** One line for `event`: its time, then what happened. */
export function formatEvent(event: StreamEvent, now: Date): string {
  const data = (event.data ?? {}) as Record<string, unknown>;
  const at = typeof data.at === 'string' ? new Date(data.at) : now;
  const time = Number.isNaN(at.getTime()) ? '' : at.toISOString().slice(11, 23);
  const who = `#${String(data.number)}${data.procedure ? ` ${String(data.procedure)}` : ''}`;
  let what: string;
  switch (event.type) {
    case 'execution.state': {
      const error = data.error as { code?: string; message?: string } | undefined;
      what = `${who} ${String(data.state)}`;
      if (data.attempt !== undefined && data.state === 'active') {
        what += ` (attempt ${String(data.attempt)})`;
      }
      if (typeof data.delayedUntil === 'string') {
        what += ` until ${data.delayedUntil}`;
      }
      if (error) {
        what += `: ${error.code ? `${error.code} ` : ''}${error.message ?? ''}`;
      }
      break;
    }
    case 'execution.progress':
      what = `${who} progress ${formatProgress(data.progress as JsonValue)}`;
      break;
    case 'execution.removed':
      what = `${who} removed`;
      break;
    case 'system': {
      const { type, at: _at, node, ...details } = data;
      what = `system ${String(type)} on ${String(node)}${Object.keys(details).length ? ` ${JSON.stringify(details)}` : ''}`;
      break;
    }
    case 'reset':
      what = 'reset: some events were missed (no longer kept); what follows is live';
      break;
    default: {
      const { at: _at, ...rest } = data;
      what = `${event.type} ${JSON.stringify(rest)}`;
    }
  }
  return `${time}  ${what}`;
}

function formatProgress(progress: JsonValue | undefined): string {
  return typeof progress === 'number' ? `${progress}%` : JSON.stringify(progress ?? null);
}

/**
 * Follows execution `number` until it ends: the events first (so none is missed), then its current
 * state, then each change. On a terminal a progress bar is redrawn on stderr; otherwise one line per
 * change. Resolves with the final view; throws (non-zero exit) when the execution failed or was aborted.
 */
export async function followExecution(
  client: SprocdClient,
  number: number,
  terminal: Terminal = processTerminal,
): Promise<ExecutionView> {
  const show = new FollowView(number, terminal.err);
  const controller = new AbortController();
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const events = client.events(
    { number, type: 'execution' },
    { signal: controller.signal, onOpen: () => opened() },
  );
  let next = events.next();
  let view: ExecutionView;
  try {
    // A stream that fails before it opens rejects `next`; one that opens resolves `open`.
    await Promise.race([open, next]);
    view = await client.get(number);
    show.update(view);
    while (!FINAL.includes(view.state)) {
      const result = await next;
      if (result.done) {
        break;
      }
      next = events.next();
      const data = (result.value.data ?? {}) as Record<string, unknown>;
      if (result.value.type === 'execution.progress') {
        view = { ...view, progress: data.progress as JsonValue };
      } else if (result.value.type === 'execution.state') {
        const state = data.state as ExecutionState;
        // The final view carries the result or the error the event does not.
        view = FINAL.includes(state) ? await client.get(number) : { ...view, state };
      } else if (result.value.type === 'execution.removed') {
        view = await client.get(number);
      } else if (result.value.type === 'reset') {
        view = await client.get(number);
      }
      show.update(view);
    }
  } finally {
    controller.abort();
    next.catch(() => undefined);
    show.end();
  }
  if (view.state === 'failed' || view.state === 'aborted') {
    throw new ApiError(
      view.error?.code ?? 'EXECUTION_FAILED',
      `execution ${view.number} ${view.state}: ${view.error?.message ?? ''}`,
      0,
    );
  }
  return view;
}

/** How a followed execution is shown: a redrawn bar on a terminal, lines otherwise. */
class FollowView {
  private last = '';
  private readonly tty: boolean;

  constructor(
    private readonly number: number,
    private readonly err: NodeJS.WritableStream & { isTTY?: boolean },
  ) {
    this.tty = err.isTTY === true;
  }

  update(view: ExecutionView): void {
    const line = this.tty ? this.bar(view) : this.plain(view);
    if (line === this.last) {
      return;
    }
    this.last = line;
    this.err.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }

  end(): void {
    if (this.tty && this.last) {
      this.err.write('\n');
    }
  }

  private plain(view: ExecutionView): string {
    const progress = view.progress === undefined ? '' : ` progress ${formatProgress(view.progress)}`;
    return `execution ${this.number} ${view.procedure}: ${view.state}${progress}`;
  }

  private bar(view: ExecutionView): string {
    const width = 30;
    const p = view.progress;
    let shown: string;
    if (typeof p === 'number') {
      const filled = Math.round((Math.min(Math.max(p, 0), 100) / 100) * width);
      shown = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.round(p)}%`;
    } else if (view.state === 'completed') {
      shown = `[${'#'.repeat(width)}] 100%`;
    } else {
      shown = p === undefined ? `[${'-'.repeat(width)}]` : JSON.stringify(p).slice(0, 60);
    }
    return `#${this.number} ${view.procedure} ${shown} ${view.state}`;
  }
}

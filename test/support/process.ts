/**
 * The one way tests run Node.js child processes: a long-running one (a node, a session agent, a
 * start that must fail) with its output read line by line, and a command run to its end (the CLI).
 * Nodes (support/node.ts) and session agents (session/helpers.ts) are thin layers over this.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** bin/sprocd.js, the command a user runs. */
export const BIN = path.join(ROOT, 'bin', 'sprocd.js');

/** One line of a child's output: its JSON when the line is JSON, `{ msg }` when not, `{ stderr }` for stderr. */
export type OutputLine = Record<string, unknown>;

/** A child process started by {@link startProcess}. */
export interface TestProcess {
  proc: ChildProcess;
  /** Every output line so far, in order (stdout lines, and stderr chunks as `{ stderr }`). */
  lines: OutputLine[];
  /** All of stdout so far, as written. */
  stdout(): string;
  /** All of stderr so far, as written. */
  stderr(): string;
  /** Resolves with the exit code, or the signal name when a signal ended it. */
  exited: Promise<number | string>;
  /** Resolves with the first line (past or future) that matches; rejects on exit or time-out. */
  waitForLine(match: (line: OutputLine) => boolean, timeoutMs?: number): Promise<OutputLine>;
  /** Writes `message` as one JSON line to stdin (for children started with `stdin: true`). */
  send(message: Record<string, unknown>): void;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | string>;
  /** Sends `signal` (SIGKILL unless told otherwise) unless it has exited, and resolves with the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** How to start a child process. */
export interface ProcessOptions {
  /** The whole environment of the child (see {@link childEnv} to start from this process's). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** A process group of its own, so a test can signal the group as a terminal's Ctrl-C does. */
  detached?: boolean;
  /** Keep stdin open for {@link TestProcess.send}. */
  stdin?: boolean;
  /** Node options before the script (e.g. `['--import', 'tsx']`). */
  nodeArgs?: string[];
  /** Names the process in error messages. */
  label?: string;
}

/**
 * This process's environment with `overrides`, minus what would make the child behave as a test
 * worker: vitest's variables (src/modules.ts skips registering tsx under vitest) and NODE_OPTIONS.
 */
export function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...overrides };
  for (const name of Object.keys(env)) {
    if (name.startsWith('VITEST') || name === 'NODE_OPTIONS') {
      delete env[name];
    }
  }
  return env;
}

/** Starts `node [nodeArgs] script ...args` and collects its output. */
export function startProcess(script: string, args: string[], options: ProcessOptions): TestProcess {
  const label = options.label ?? path.basename(script);
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const lines: OutputLine[] = [];
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  let out = '';
  let err = '';
  let partial = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const raw = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (raw.trim() === '') {
        continue;
      }
      try {
        lines.push(JSON.parse(raw) as OutputLine);
      } catch {
        lines.push({ msg: raw });
      }
    }
    notify();
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    err += chunk;
    lines.push({ stderr: chunk });
    notify();
  });
  // 'exit' may come before the last output: wait for the pipes to close too, but not for long, since
  // a grandchild (an embedded redis-server) may hold them open.
  const drained = Promise.all(
    [proc.stdout, proc.stderr].map((s) => (s === null ? undefined : once(s, 'close').catch(() => undefined))),
  );
  let exitValue: number | string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => {
      void Promise.race([drained, sleep(500)]).then(() => {
        exitValue = code ?? signal ?? -1;
        resolve(exitValue);
        notify();
      });
    }),
  );

  const lastLines = () => JSON.stringify(lines.slice(-5));
  const waitForLine = (match: (line: OutputLine) => boolean, timeoutMs = 20_000) =>
    new Promise<OutputLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found !== undefined) {
          cleanup();
          resolve(found);
        } else if (exitValue !== undefined) {
          cleanup();
          reject(
            new Error(
              `${label} exited (${exitValue}) before the expected line; stderr: ${err.slice(-2000)}; last lines: ${lastLines()}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${label}: no matching line within ${timeoutMs} ms; last lines: ${lastLines()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (exitValue === undefined) {
      proc.kill(signal);
    }
    return exited;
  };
  return {
    proc,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine,
    send: (message) => {
      proc.stdin?.write(`${JSON.stringify(message)}\n`);
    },
    stop: () => kill('SIGTERM'),
    kill,
  };
}

/** The outcome of a command run to its end. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const run = promisify(execFile);

/** Runs `sprocd ...args` to its end; a non-zero exit is a result, not an error. */
export async function runSprocd(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: childEnv(options.env),
      cwd: options.cwd ?? ROOT,
      timeout: options.timeoutMs ?? 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

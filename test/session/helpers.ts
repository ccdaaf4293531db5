/**
 * Helpers of the session tests: sessions opened in this process (each one a "node" of its own, with
 * its own blocking connection and node id), and agents: real node processes running
 * fixtures/agent.ts, driven line by line over stdin/stdout (started by support/process.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { RedisConnection } from '../../src/redis/redis-connection.js';
import { closeConnection, openConnection } from '../../src/redis/connections.js';
import { createKeys } from '../../src/redis/keys.js';
import { openSession, type SessionService, type SessionServiceOptions } from '../../src/session/index.js';
import { childEnv, startProcess, type OutputLine } from '../support/process.js';
import { testRedisUrl } from '../support/redis.js';

/** A session service opened in this process, with the command connection it runs on. */
export interface TestSession extends SessionService {
  command: RedisConnection;
}

/**
 * SPROCD_STORAGE_SLOTS of the sessions these suites open: SPROCD_TEST_STORAGE_SLOTS, so that the same
 * suites also run with the entries in data slots (vitest.config.ts, project "storage-slots").
 */
export const TEST_STORAGE_SLOTS = Number(process.env.SPROCD_TEST_STORAGE_SLOTS ?? '1');

/** Opens a session on `prefix` with quick test settings; `overrides` replace any option. */
export async function openTestSession(
  prefix: string,
  overrides: Partial<Omit<SessionServiceOptions, 'command' | 'keys'>> & { commandTimeoutMs?: number } = {},
): Promise<TestSession> {
  const { commandTimeoutMs = 5000, ...options } = overrides;
  const url = options.redisUrl ?? testRedisUrl();
  const command = openConnection('command', {
    url,
    timeoutMs: commandTimeoutMs,
    name: `sprocd-test-${prefix}`,
  });
  try {
    const service = await openSession({
      command,
      redisUrl: url,
      keys: createKeys(prefix),
      userName: 'sprocd',
      lockLeaseMs: 1000,
      lockTimeoutMs: 5000,
      maxEntryBytes: 64 * 1024,
      connectionName: `sprocd-test-${prefix}`,
      logger: pino({ level: 'silent' }),
      storageSlots: TEST_STORAGE_SLOTS,
      ...options,
    });
    return {
      ...service,
      command,
      async close() {
        await service.close();
        await closeConnection(command);
      },
    };
  } catch (err) {
    await closeConnection(command);
    throw err;
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Catches the rejection of `p` (fails when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; details?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

const AGENT = fileURLToPath(new URL('./fixtures/agent.ts', import.meta.url));

/** A message from an agent (see fixtures/agent.ts). */
export type AgentMessage = OutputLine & { id?: number; event?: string };

/** A real node process running fixtures/agent.ts (started with support/process.ts). */
export interface Agent {
  proc: ChildProcess;
  /** Sends a command and resolves with its reply (`{ id, ... }`). */
  call(command: Record<string, unknown>, timeoutMs?: number): Promise<AgentMessage>;
  /** Sends a command without waiting for its reply; returns its id. */
  send(command: Record<string, unknown>): number;
  /** Resolves with the first message (past or future) that matches. */
  waitFor(match: (m: AgentMessage) => boolean, timeoutMs?: number): Promise<AgentMessage>;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string>;
  stderr(): string;
}

/** Starts an agent process; resolves once it is ready for commands. */
export async function spawnAgent(): Promise<Agent> {
  const child = startProcess(AGENT, [], {
    env: childEnv(),
    nodeArgs: ['--import', 'tsx'],
    stdin: true,
    label: 'agent',
  });
  let nextId = 1;
  const send = (command: Record<string, unknown>) => {
    const id = nextId++;
    child.send({ ...command, id });
    return id;
  };
  const agent: Agent = {
    proc: child.proc,
    send,
    call: async (command, timeoutMs) => {
      const id = send(command);
      const m: AgentMessage = await child.waitForLine((l) => l.id === id, timeoutMs);
      if (typeof m.error === 'string') {
        throw new Error(`agent: ${m.error}`);
      }
      return m;
    },
    waitFor: child.waitForLine,
    exited: child.exited,
    stderr: child.stderr,
  };
  await agent.waitFor((m) => m.event === 'started');
  return agent;
}

/** Kills an agent (SIGKILL unless told otherwise) and waits for it to be gone. */
export async function killAgent(agent: Agent, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (agent.proc.exitCode === null && agent.proc.signalCode === null) {
    agent.proc.kill(signal);
  }
  await agent.exited;
}

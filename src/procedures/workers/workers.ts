/**
 * The calling side of workers (4D's CALL WORKER and KILL WORKER), for ctx, the API and the CLI: a
 * message checked as an execution's request is (the procedure exists, its params pass its schema)
 * and appended to the worker's mailbox in one script; KILL WORKER; and the listing. The side that
 * runs the messages is ./runner.ts (docs/ARCHITECTURE.md#workers).
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../../redis/redis-connection.js';
import { UnknownProcedureError, WorkerNotFoundError } from '../../errors.js';
import type { Keys } from '../../redis/keys.js';
import { workerCall, workerKill } from '../../redis/scripts.js';
import type { JsonValue } from '../../types.js';
import { assertProcedureName, assertWorkerName } from '../names.js';
import { requestParams } from '../params.js';
import type { ProcedureRegistry } from '../registry.js';

/** A message as its mailbox keeps it (short fields: it is written and read once per message). */
export interface StoredMessage {
  /** Its id (a uuid): ctx.process.id while it runs. */
  i: string;
  /** The procedure. */
  p: string;
  /** Its params, as the procedure's schema produced them. */
  a: JsonValue;
  /** When it was queued (ms). */
  q: number;
  /** The execution whose ctx.callWorker queued it. */
  b?: number;
}

/** What a call answers. */
export interface WorkerCallAnswer {
  worker: string;
  /** The message's id. */
  id: string;
  procedure: string;
  /** Messages waiting in the worker's mailbox, this one included (not the one running). */
  pending: number;
}

/** What KILL WORKER did. */
export interface WorkerKillAnswer {
  worker: string;
  /** `ended`: it was idle and ended now; `ending`: it ends once its current message is done. */
  outcome: 'ended' | 'ending';
  /** Pending messages dropped. */
  dropped: number;
}

/** A worker as GET /v1/workers shows it. */
export interface WorkerView {
  name: string;
  /** The node that runs it now; absent while no node holds it (idle since its node stopped or died). */
  node?: string;
  /** Messages waiting, not counting the one running. */
  pending: number;
  /** Messages done since the worker was created (failed ones included). */
  processed: number;
  /** Of those, the ones whose procedure threw. */
  failed: number;
  createdAt: string;
  /** The message running (or left unfinished by a node that died). */
  current?: { id: string; procedure: string; attempt: number; startedAt: string };
  /** Killed: it ends once its current message is done. */
  ending?: boolean;
}

/** The most workers a listing shows. */
export const WORKER_LIST_MAX = 1000;

/** CALL WORKER, KILL WORKER and the listing, on one connection. */
export class Workers {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly registry: ProcedureRegistry,
  ) {}

  /**
   * CALL WORKER: queues `procedure` with `params` for worker `name` (created by its first call).
   * Throws INVALID_NAME, UNKNOWN_PROCEDURE or VALIDATION_FAILED before anything is queued.
   */
  async call(name: string, procedure: string, params?: unknown, caller?: number): Promise<WorkerCallAnswer> {
    assertWorkerName(name);
    assertProcedureName(procedure);
    const definition = this.registry.get(procedure);
    if (!definition) {
      throw new UnknownProcedureError(procedure);
    }
    const message: StoredMessage = {
      i: randomUUID(),
      p: procedure,
      a: requestParams(procedure, definition.params, params),
      q: Date.now(),
    };
    if (caller !== undefined && caller > 0) {
      message.b = caller;
    }
    const pending = await workerCall(this.redis, this.keys, name, JSON.stringify(message));
    return { worker: name, id: message.i, procedure, pending };
  }

  /** KILL WORKER: drops its pending messages; it ends once its current one is done. WORKER_NOT_FOUND when none. */
  async kill(name: string): Promise<WorkerKillAnswer> {
    assertWorkerName(name);
    const { outcome, dropped } = await workerKill(this.redis, this.keys, name);
    if (outcome === 'missing') {
      throw new WorkerNotFoundError(name);
    }
    return { worker: name, outcome, dropped };
  }

  /** KILL WORKER as ctx has it: as in 4D, a worker that does not exist is no error. */
  async killQuietly(name: string): Promise<void> {
    await this.kill(name).catch((err: unknown) => {
      if (!(err instanceof WorkerNotFoundError)) {
        throw err;
      }
    });
  }

  /** The workers of the cluster (at most {@link WORKER_LIST_MAX}), by name. */
  async list(): Promise<WorkerView[]> {
    const w = this.keys.workers;
    const names = (await this.redis.zrange(w.index, 0, -1)).sort().slice(0, WORKER_LIST_MAX);
    if (names.length === 0) {
      return [];
    }
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      pipeline.hmget(w.state(name), 'created', 'n', 'f', 'cur', 'att', 'at', 'killed');
      pipeline.llen(w.mailbox(name));
      pipeline.get(w.owner(name));
    }
    const replies = (await pipeline.exec()) ?? [];
    const views: WorkerView[] = [];
    names.forEach((name, i) => {
      const [created, n, f, cur, att, at, killed] = (replies[3 * i]?.[1] ?? []) as (string | null)[];
      if (created === null || created === undefined) {
        return; // ended between the two reads
      }
      const view: WorkerView = {
        name,
        pending: Number(replies[3 * i + 1]?.[1] ?? 0),
        processed: Number(n ?? 0),
        failed: Number(f ?? 0),
        createdAt: new Date(Number(created)).toISOString(),
      };
      const owner = replies[3 * i + 2]?.[1] as string | null;
      if (owner) {
        view.node = nodeOfToken(owner);
      }
      if (cur) {
        const message = JSON.parse(cur) as StoredMessage;
        view.current = {
          id: message.i,
          procedure: message.p,
          attempt: Number(att ?? 1),
          startedAt: new Date(Number(at ?? message.q)).toISOString(),
        };
      }
      if (killed === '1') {
        view.ending = true;
      }
      views.push(view);
    });
    return views;
  }
}

/** An owner token: a uuid, `@`, the node's name (a uuid has no `@`). */
export function ownerToken(node: string): string {
  return `${randomUUID()}@${node}`;
}

/** The node of an owner token. */
export function nodeOfToken(token: string): string {
  return token.slice(token.indexOf('@') + 1);
}

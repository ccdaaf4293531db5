/** Schemas of the node and cluster routes: health, nodes, procedures. */
import { z } from 'zod';
import type { NodeRecord } from '../../lifecycle/heartbeat.js';
import type { ProcedureListing } from '../../procedures/registry.js';
import { LIVE_COUNT_CAP } from '../../stats/procedure-counts.js';
import { IsoTime } from './common.js';

/** Where a node is in its life. */
const NodeStateSchema = z.enum(['starting', 'ready', 'stopping', 'stopped']);

/** The answer of GET /healthz. */
export const HealthSchema = z
  .object({ status: z.literal('ok'), state: NodeStateSchema, node: z.string() })
  .meta({ id: 'Health' });

/** The answers of GET /readyz. */
export const ReadySchema = z.object({ status: z.literal('ready') }).meta({ id: 'Ready' });
export const NotReadySchema = z
  .object({ status: z.literal('not ready'), reason: z.string().optional() })
  .meta({ id: 'NotReady' });

/** One live node as its heartbeat shows it. */
export const NodeRecordSchema = z
  .object({
    node: z.string(),
    host: z.string(),
    pid: z.number().int(),
    startedAt: IsoTime,
    heartbeatAt: IsoTime,
    active: z.number().int().min(0).describe('Executions running there now.'),
    concurrency: z.number().int().min(1),
    procedures: z.array(z.string()).describe('The procedures the node has loaded.'),
    version: z.string().optional().describe("The node's sprocd version."),
  })
  .meta({ id: 'Node' }) satisfies z.ZodType<NodeRecord, unknown>;

/** The answer of GET /v1/nodes. */
export const NodeListSchema = z.object({ items: z.array(NodeRecordSchema) }).meta({ id: 'NodeList' });

const Count = z.number().int().min(0);

/** A procedure's executions: those that ended over the statistics window, and the unfinished ones now. */
const ProcedureCountsSchema = z
  .object({
    windowMinutes: z
      .number()
      .int()
      .positive()
      .describe('The minutes completed, failed and aborted look back (60: the last hour).'),
    completed: Count.describe('Executions that completed in the window, all nodes.'),
    failed: Count.describe('Executions that failed in the window (their last attempt), all nodes.'),
    aborted: Count.describe(
      'Executions aborted while running in the window, all nodes (one aborted before it started is not counted).',
    ),
    waiting: Count.optional().describe(
      `Waiting now. Left out while the cluster has more than ${LIVE_COUNT_CAP} executions waiting (too many to count by procedure).`,
    ),
    active: Count.optional().describe(
      `Running now. Left out while more than ${LIVE_COUNT_CAP} run in the cluster.`,
    ),
    delayed: Count.optional().describe(
      `Delayed now (a delayMs or a retry's back-off). Left out while more than ${LIVE_COUNT_CAP} are delayed in the cluster.`,
    ),
  })
  .describe(
    'Its executions: those that ended in the last windowMinutes (from the per-minute statistics the failure rate uses), and those waiting, active or delayed now.',
  );

/** One procedure as GET /v1/procedures lists it. */
export const ProcedureSchema = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    params: z
      .unknown()
      .meta({ type: 'object', description: 'The JSON Schema of its params, as a request gives them.' })
      .optional(),
    attempts: z.number().int().min(1).optional(),
    timeoutMs: z.number().positive().optional(),
    delivery: z
      .literal('at-most-once')
      .optional()
      .describe('Present when an execution of it never runs twice (else at-least-once).'),
    schedule: z.object({ cron: z.string(), tz: z.string().optional(), next: z.array(IsoTime) }).optional(),
    counts: ProcedureCountsSchema.optional(),
    failureRate: z
      .number()
      .min(0)
      .max(1)
      .nullable()
      .optional()
      .describe('failed / (completed + failed) over the last hour in the cluster; null when none ended.'),
  })
  .meta({ id: 'Procedure' }) satisfies z.ZodType<ProcedureListing, unknown>;

/** The answer of GET /v1/procedures. */
export const ProcedureListSchema = z
  .object({ items: z.array(ProcedureSchema) })
  .meta({ id: 'ProcedureList' });

// Assignment API (R-ASG-1..5, R-QUE-4): manual assign/unassign, transfer to a queue, a queue's waiting sessions, an agent's load and its recount.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AssignmentService, AssignOutcome } from '../../app/assignment-service.js';
import { summarize } from '../../app/sessions-service.js';
import { SESSION_STATUSES } from '../../core/session/model.js';
import { AppError } from '../../core/errors.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, IdParamSchema, notFoundResponse, security } from '../schemas.js';

const idString = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id');

const AssignedSession = z
  .object({
    id: z.string(),
    status: z.enum(SESSION_STATUSES),
    queueId: z.string().nullable(),
    assigneeId: z.string().nullable(),
    subject: z.string(),
    customer: z.object({ address: z.string(), name: z.string().optional() }),
    messageCount: z.number().int(),
    imported: z.boolean(),
    ticketId: z.string().nullable(),
    linkedFrom: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('AssignedSession', { description: 'The session after the change (same fields as SessionSummary)' });

const WaitingReason = z
  .enum(['closed', 'no_agent', 'all_offline', 'all_at_limit', 'busy'])
  .openapi('WaitingReason', {
    description:
      '`closed`: outside the queue’s business hours; `no_agent`: no active agent in the queue; `all_offline`: logged-in only and nobody online; `all_at_limit`: every available agent reached the daily limit; `busy`: lost concurrent races, retried shortly',
  });

const AutoAssignOutcome = z
  .object({
    assigned: z.boolean(),
    agentId: z.string().nullable(),
    waiting: WaitingReason.nullable().openapi({ description: 'Why the session waits unassigned in the queue, when it does' }),
  })
  .openapi('AutoAssignOutcome');

const AssignBody = z
  .object({ agentId: idString.nullable().openapi({ description: 'The agent to assign; null unassigns' }) })
  .strict()
  .openapi('AssignInput');

const TransferBody = z
  .object({
    queueId: idString,
    agentId: idString.nullable().optional().openapi({ description: 'Assign to this agent (an active member of the target queue); omitted = unassigned, then the target’s auto-assignment runs when on' }),
  })
  .strict()
  .openapi('TransferInput');

const TransferResult = AssignedSession.extend({ autoAssign: AutoAssignOutcome.nullable().openapi({ description: 'Result of the target queue’s auto-assignment, when it ran' }) }).openapi('TransferResult');

const WaitingSchema = z
  .object({
    queueId: z.string(),
    count: z.number().int().openapi({ description: 'Sessions of the queue waiting for auto-assignment' }),
    reason: WaitingReason.nullable().openapi({ description: 'Why the last attempt found nobody; null when nothing waits' }),
    oldestSince: z.string().nullable().openapi({ description: 'When the oldest waiting session started waiting' }),
    autoAssignEnabled: z.boolean(),
  })
  .openapi('QueueWaiting');

const AgentLoadSchema = z
  .object({
    agentId: z.string(),
    active: z.number().int().openapi({ description: 'Assigned sessions that are unopened, reopened or active (R-ASG-3)' }),
    lastAssignedAt: z.string().nullable(),
    daily: z.array(z.object({ queueId: z.string(), day: z.string().openapi({ description: 'Local day of the queue (its time zone)' }), count: z.number().int() })),
    queues: z.array(z.string()).openapi({ description: 'Queues whose auto-assignment considers this agent' }),
    parked: z
      .array(z.object({ queueId: z.string(), reason: z.enum(['limit', 'offline']), until: z.string() }))
      .openapi({ description: 'Queues where the agent is set aside: daily limit reached (until local midnight) or offline (until online)' }),
  })
  .openapi('AgentLoad');

const RecountSchema = z.object({ agentId: z.string(), before: z.number().int(), after: z.number().int() }).openapi('AgentLoadRecount');

const SessionIdParam = z.object({ id: idString.openapi({ param: { name: 'id', in: 'path' } }) });
const json = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

const routes = {
  assign: createRoute({
    method: 'post',
    path: '/api/sessions/{id}/assign',
    tags: ['sessions'],
    summary: 'Assign the session to an agent of its queue, or unassign it (agentId null)',
    description:
      'R-ASG-1. The agent must be an active member of the session’s queue (directly or through a team), else 409. An agent token may only assign the session to its own agent or unassign its own agent (403 otherwise); an admin token may assign anyone. Logged as `agent_assigned` / `agent_unassigned` interactions; counts in the agent’s daily count (a manual assignment may go past the daily limit, which only binds auto-assignment). Assigning takes the session off the queue’s waiting list; unassigning does not put it back (auto-assignment runs on new mail).',
    security,
    request: { params: SessionIdParam, body: json(AssignBody) },
    responses: { 200: { description: 'The session after the change', content: { 'application/json': { schema: AssignedSession } } }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  transfer: createRoute({
    method: 'post',
    path: '/api/sessions/{id}/transfer',
    tags: ['sessions'],
    summary: 'Transfer the session to another queue (R-QUE-4)',
    description:
      'Logged as a `transferred` interaction (from, to) and reported to the CRM. The session is unassigned unless `agentId` (an active member of the target queue, else 409) is given; then the target queue’s auto-assignment runs when it is on. An agent token may only name its own agent. Transferring to the queue the session is in answers 409.',
    security,
    request: { params: SessionIdParam, body: json(TransferBody) },
    responses: { 200: { description: 'The session after the transfer', content: { 'application/json': { schema: TransferResult } } }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  waiting: createRoute({
    method: 'get',
    path: '/api/queues/{id}/waiting',
    tags: ['queues'],
    summary: 'Sessions waiting for auto-assignment in the queue, and why',
    description: 'R-ASG-2/4: a session nobody can take now (hours closed, nobody online, everyone at the limit, no agent) waits unassigned and is assigned, oldest first, as soon as someone can.',
    security,
    request: { params: IdParamSchema },
    responses: { 200: { description: 'The waiting count and reason', content: { 'application/json': { schema: WaitingSchema } } }, ...errorResponses, ...notFoundResponse },
  }),
  load: createRoute({
    method: 'get',
    path: '/api/agents/{id}/load',
    tags: ['agents'],
    summary: 'The agent’s assignment load: active sessions, last assignment, daily counts',
    description: 'Admin, or the agent itself.',
    security,
    request: { params: IdParamSchema },
    responses: { 200: { description: 'The load', content: { 'application/json': { schema: AgentLoadSchema } } }, ...errorResponses },
  }),
  recount: createRoute({
    method: 'post',
    path: '/api/agents/{id}/load/recount',
    tags: ['agents'],
    summary: 'Recount the agent’s active sessions from its assigned sessions (admin repair)',
    security,
    request: { params: IdParamSchema },
    responses: { 200: { description: 'The count before and after', content: { 'application/json': { schema: RecountSchema } } }, ...errorResponses, ...conflictResponse },
  }),
};

function outcomeView(o: AssignOutcome | null) {
  if (!o) return null;
  if (o.kind === 'assigned') return { assigned: true, agentId: o.agentId, waiting: null };
  return { assigned: false, agentId: null, waiting: o.kind === 'waiting' ? o.reason : null };
}

export function assignmentRoutes(app: OpenAPIHono<AuthEnv>, assignment: AssignmentService): void {
  app.openapi(routes.assign, async (c) => {
    const stored = await assignment.manualAssign(c.req.valid('param').id, c.req.valid('json').agentId, c.get('principal'));
    return c.json(summarize(stored), 200);
  });
  app.openapi(routes.transfer, async (c) => {
    const body = c.req.valid('json');
    const result = await assignment.transfer(c.req.valid('param').id, { queueId: body.queueId, agentId: body.agentId ?? null }, c.get('principal'));
    return c.json({ ...summarize(result.session), autoAssign: outcomeView(result.autoAssign) }, 200);
  });
  app.openapi(routes.waiting, async (c) => c.json(await assignment.waiting(c.req.valid('param').id), 200));
  app.openapi(routes.load, async (c) => {
    const principal = c.get('principal');
    const id = c.req.valid('param').id;
    if (principal.role === 'agent' && principal.agentId !== id) throw new AppError('forbidden', 'An agent token can only read its own load');
    return c.json(await assignment.load(id), 200);
  });
  app.openapi(routes.recount, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await assignment.recount(c.req.valid('param').id), 200);
  });
}

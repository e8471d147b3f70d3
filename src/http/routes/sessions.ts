// Sessions API (SPEC §11a, R-SES-1..3): list with filters, detail, raw download, manual status change.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { summarize, type SessionsService } from '../../app/sessions-service.js';
import { SESSION_STATUSES } from '../../core/session/model.js';
import type { AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

export const Address = z.object({ address: z.string(), name: z.string().optional() }).openapi('MailAddress');
const Status = z.enum(SESSION_STATUSES).openapi('SessionStatus');

export const SessionSummary = z
  .object({
    id: z.string().openapi({ example: 'S7K2M9QX4TB' }),
    status: Status,
    queueId: z.string().nullable(),
    assigneeId: z.string().nullable(),
    subject: z.string(),
    customer: Address,
    messageCount: z.number().int(),
    imported: z.boolean(),
    ticketId: z.string().nullable(),
    linkedFrom: z.string().nullable().openapi({ description: 'The closed session this one continues' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('SessionSummary');

const Attachment = z.object({ filename: z.string(), contentType: z.string(), size: z.number().int(), contentId: z.string().optional(), inline: z.boolean() });

export const Message = z
  .object({
    id: z.string().openapi({ description: 'Internal id (for the raw download)' }),
    direction: z.enum(['inbound', 'outbound']),
    messageId: z.string().nullable().openapi({ description: 'RFC 5322 Message-ID, without brackets' }),
    from: Address.nullable(),
    to: z.array(Address),
    cc: z.array(Address),
    subject: z.string(),
    date: z.string().nullable(),
    receivedAt: z.string(),
    arrivedAt: z.string().nullable(),
    text: z.string(),
    html: z.string().nullable().openapi({ description: 'Sanitized HTML' }),
    attachments: z.array(Attachment),
    size: z.number().int(),
    accountId: z.string(),
    flags: z.array(z.string()).openapi({ description: '`new_participant` when the sender was never part of the session (thread matched by token), `duplicate_message_id`, `imported`, `no_message_id`, `bounce`' }),
    kind: z.enum(['customer', 'agent_reply', 'auto_reply', 'bounce']).optional().openapi({ description: 'What the message is; a `bounce` is a delivery report for one of our messages (`bounceOf`)' }),
    agentId: z.string().nullable().optional().openapi({ description: 'Outbound: the agent who wrote it (null for auto-replies and CRM authors without an agent)' }),
    bcc: z.array(Address).optional(),
    bounceOf: z.string().optional().openapi({ description: 'A bounce: internal id of the outbound message it reports on' }),
    delivery: z
      .object({
        state: z.enum(['queued', 'sent', 'failed', 'bounced']),
        queuedAt: z.string(),
        sentAt: z.string().nullable(),
        failedAt: z.string().nullable(),
        attempts: z.number().int(),
        lastError: z.string().nullable().openapi({ description: 'The last failure, in the server’s own words' }),
        accepted: z.array(z.string()),
        rejected: z.array(z.string()),
        sentFolder: z.string().nullable().optional().openapi({ description: 'Sent-folder copy: the folder, null when the server has none; absent while pending' }),
        requeues: z.number().int().optional().openapi({ description: 'Times the outbox queued the send again because its job was gone (channel off for hours, a crash)' }),
      })
      .optional()
      .openapi('Delivery', { description: 'Outbound only: where the delivery stands' }),
    archive: z.object({ key: z.string(), at: z.string() }).optional().openapi({ description: 'The archive copy of the raw message (R-STO-4), once written' }),
    purgedAt: z.string().optional().openapi({ description: 'When retention removed the body and raw bytes here; the raw download then reads the archive' }),
    rev: z.number().int().optional().openapi({ description: 'Revision of the stored message (changes with its delivery, archive copy, purge)' }),
  })
  .openapi('SessionMessage');

const Interaction = z
  .object({ type: z.string(), at: z.string(), actor: z.string(), data: z.record(z.string(), z.unknown()).optional() })
  .openapi('SessionInteraction');

const SessionDetail = SessionSummary.extend({
  participants: z.array(Address),
  statusChangedAt: z.string(),
  lastActivityAt: z.string(),
  messages: z.array(Message),
  interactions: z.array(Interaction),
}).openapi('Session');

export const SessionParam = z.object({ id: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).openapi({ param: { name: 'id', in: 'path' } }) });

const listSessions = createRoute({
  method: 'get',
  path: '/api/sessions',
  tags: ['sessions'],
  summary: 'Sessions, most recent activity first',
  security,
  request: {
    query: ListQuerySchema.extend({
      queue: z.string().max(64).optional().openapi({ param: { name: 'queue', in: 'query' } }),
      status: Status.optional().openapi({ param: { name: 'status', in: 'query' } }),
      assignee: z.string().max(64).optional().openapi({ param: { name: 'assignee', in: 'query' } }),
      unassigned: z.enum(['true', 'false']).optional().openapi({ param: { name: 'unassigned', in: 'query' } }),
      customer: z.string().max(320).optional().openapi({ param: { name: 'customer', in: 'query' }, description: 'Customer email address' }),
      q: z.string().max(200).optional().openapi({ param: { name: 'q', in: 'query' }, description: 'Text in the subject or the customer' }),
    }),
  },
  responses: { 200: { description: 'A page of sessions', content: { 'application/json': { schema: listOf(SessionSummary, 'SessionList') } } }, ...errorResponses },
});

const getSession = createRoute({
  method: 'get',
  path: '/api/sessions/{id}',
  tags: ['sessions'],
  summary: 'One session with its messages and interactions',
  security,
  request: { params: SessionParam },
  responses: { 200: { description: 'The session', content: { 'application/json': { schema: SessionDetail } } }, ...errorResponses, ...notFoundResponse },
});

const rawMessage = createRoute({
  method: 'get',
  path: '/api/sessions/{id}/messages/{msgId}/raw',
  tags: ['sessions'],
  summary: 'The original bytes of a message (message/rfc822)',
  security,
  request: { params: SessionParam.extend({ msgId: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).openapi({ param: { name: 'msgId', in: 'path' } }) }) },
  responses: { 200: { description: 'The .eml file', content: { 'message/rfc822': { schema: z.string().openapi({ format: 'binary' }) } } }, ...errorResponses, ...notFoundResponse },
});

const setStatus = createRoute({
  method: 'post',
  path: '/api/sessions/{id}/status',
  tags: ['sessions'],
  summary: 'Change the status by hand (SPEC §11c); an illegal transition answers 409',
  security,
  request: { params: SessionParam, body: { required: true, content: { 'application/json': { schema: z.object({ status: Status }).strict().openapi('StatusChange') } } } },
  responses: { 200: { description: 'The session after the change', content: { 'application/json': { schema: SessionSummary } } }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
});

export function sessionRoutes(app: OpenAPIHono<AuthEnv>, sessions: SessionsService): void {
  app.openapi(listSessions, async (c) => {
    const { limit, cursor, unassigned, ...filter } = c.req.valid('query');
    const page = await sessions.list({ ...filter, unassigned: unassigned === 'true' }, limit, cursor);
    return c.json(page, 200);
  });
  app.openapi(getSession, async (c) => c.json(await sessions.detail(c.req.valid('param').id), 200));
  app.openapi(rawMessage, async (c) => {
    const { id, msgId } = c.req.valid('param');
    const { bytes, filename } = await sessions.raw(id, msgId);
    return c.body(new Uint8Array(bytes), 200, { 'content-type': 'message/rfc822', 'content-disposition': `attachment; filename="${filename}"` });
  });
  app.openapi(setStatus, async (c) => {
    const principal = c.get('principal');
    const actor = principal.role === 'agent' ? `agent:${principal.agentId}` : `admin:${principal.tokenId}`;
    const stored = await sessions.setStatus(c.req.valid('param').id, c.req.valid('json').status, actor);
    return c.json(summarize(stored), 200);
  });
}

// Outbound API (SPEC §11a/§11b, R-AGT-2..4, R-GLB-2/3): agent replies and new outbound sessions. Both answer 202:
// the mail is accepted into the durable outbox and sent by a job; its `delivery` shows where it stands.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { OutboundService } from '../../app/outbound-service.js';
import { summarize } from '../../app/sessions-service.js';
import type { StoredMessage } from '../../app/ingest-message.js';
import { actingAgent, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, notFoundResponse, security } from '../schemas.js';
import { Message, SessionParam, SessionSummary } from './sessions.js';

const idString = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id');
const noBreaks = (max: number) => z.string().max(max).regex(/^[^\r\n\0]*$/, 'must not contain line breaks or NUL');
const Recipient = z.object({ address: z.string().min(3).max(320), name: noBreaks(200).optional() }).strict().openapi('Recipient');
const recipients = z.array(Recipient).max(100);

const body = {
  agentId: idString.optional().openapi({ description: 'The acting agent; required with an admin token, taken from an agent token otherwise (another id answers 403)' }),
  html: z.string().max(2_000_000).optional().openapi({ description: 'Rich text (sanitized; `data:` images are sent inline by CID)' }),
  text: z.string().max(1_000_000).optional().openapi({ description: 'Plain text (used as the text part; HTML is derived from it when `html` is absent)' }),
  cc: recipients.optional(),
  bcc: recipients.optional().openapi({ description: 'Envelope only, never in the headers' }),
  attachments: z.array(idString).max(10).optional().openapi({ description: 'Upload ids (POST /api/uploads); R-ARP-2 type and size rules' }),
};

const ReplyBody = z
  .object({
    ...body,
    subject: noBreaks(998).optional().openapi({ description: 'A new subject, only when Settings › subject.agentsCanEdit is on (else 400); recorded on the session' }),
    to: recipients.min(1).optional().openapi({ description: 'Default: the session’s customer' }),
    replyAll: z.boolean().optional().openapi({ description: 'Default true: when `cc` is absent, the other recipients of the customer’s last mail stay in Cc' }),
  })
  .strict()
  .openapi('ReplyRequest');

const NewSessionBody = z
  .object({
    ...body,
    queueId: idString.openapi({ description: 'Sent from this queue’s default address, with its signature' }),
    to: recipients.min(1).openapi({ description: 'The first is the session’s customer' }),
    subject: noBreaks(998).min(1),
  })
  .strict()
  .openapi('NewSessionRequest');

const Accepted = z.object({ session: SessionSummary, message: Message }).openapi('OutboundAccepted');

const IdempotencyHeader = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(200)
    .optional()
    .openapi({ param: { name: 'idempotency-key', in: 'header' }, description: '(Idempotency-Key) Retrying with the same key answers the first result instead of sending twice' }),
});

const postReply = createRoute({
  method: 'post',
  path: '/api/sessions/{id}/replies',
  tags: ['sessions'],
  summary: 'Reply to the customer (queued for sending; answers 202)',
  description:
    'From the queue’s default address, with the queue’s signature (tags filled for the agent). Threading headers come from the thread. The first agent reply carries `[#<sessionId>]` when `subject.addSessionId` is on. A reply on a Closed session reopens it within the reopen window; after it, the reply starts a new session linked to this one (the answer shows which). CR/LF/NUL in a subject, name or address answers 400.',
  security,
  request: {
    params: SessionParam,
    headers: IdempotencyHeader,
    body: { required: true, content: { 'application/json': { schema: ReplyBody } } },
  },
  responses: {
    202: { description: 'Accepted into the outbox', content: { 'application/json': { schema: Accepted } } },
    ...errorResponses,
    ...notFoundResponse,
    ...conflictResponse,
  },
});

const postSession = createRoute({
  method: 'post',
  path: '/api/sessions',
  tags: ['sessions'],
  summary: 'Start a new outbound session to a customer (answers 202)',
  security,
  request: { headers: IdempotencyHeader, body: { required: true, content: { 'application/json': { schema: NewSessionBody } } } },
  responses: {
    202: { description: 'Accepted into the outbox', content: { 'application/json': { schema: Accepted } } },
    ...errorResponses,
    ...conflictResponse,
  },
});

/** The message as the API shows it (no storage internals). */
export function messageView(m: StoredMessage) {
  const { rawKey: _r, sha256: _h, source: _s, headers: _hd, sessionId: _sid, ...rest } = m;
  return rest;
}

export function outboundRoutes(app: OpenAPIHono<AuthEnv>, outbound: OutboundService): void {
  app.openapi(postReply, async (c) => {
    const { agentId, ...input } = c.req.valid('json');
    const acting = actingAgent(c.get('principal'), agentId);
    const key = c.req.valid('header')['idempotency-key'];
    const accepted = await outbound.reply(c.req.valid('param').id, acting, input, key ? { idempotencyKey: key } : {});
    return c.json({ session: summarize(accepted.session), message: messageView(accepted.message) }, 202);
  });
  app.openapi(postSession, async (c) => {
    const { agentId, ...input } = c.req.valid('json');
    const acting = actingAgent(c.get('principal'), agentId);
    const key = c.req.valid('header')['idempotency-key'];
    const accepted = await outbound.startSession(acting, input, key ? { idempotencyKey: key } : {});
    return c.json({ session: summarize(accepted.session), message: messageView(accepted.message) }, 202);
  });
}

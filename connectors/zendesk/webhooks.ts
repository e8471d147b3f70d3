// Zendesk webhooks: signature check (HMAC-SHA256 of timestamp + body), the trigger payloads we ship, → CrmEvents.
import { createHmac, createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ConnectorError, RECORD_MARKER, type CrmEvent, type IncomingRequest } from '../contract.js';
import { sessionStatusFromZendesk, type ZendeskStatus } from './mapping.js';

/** Headers of every Zendesk webhook request (Anatomy of a webhook request). */
export const WEBHOOK_HEADERS = {
  signature: 'x-zendesk-webhook-signature',
  timestamp: 'x-zendesk-webhook-signature-timestamp',
  webhookId: 'x-zendesk-webhook-id',
  invocationId: 'x-zendesk-webhook-invocation-id',
  accountId: 'x-zendesk-account-id',
} as const;

/** Older or newer signature timestamps are refused (replay protection). */
export const MAX_WEBHOOK_SKEW_MS = 5 * 60_000;

/** base64(HMAC-SHA256(secret, timestamp + body)) — "Verifying webhook authenticity". */
export function signZendeskWebhook(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(timestamp + body, 'utf8').digest('base64');
}

function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** Throws ConnectorError('auth') unless the request is signed with `secret` within the time window. */
export function verifyZendeskWebhook(request: IncomingRequest, secret: string): { timestampMs: number } {
  const signature = header(request.headers, WEBHOOK_HEADERS.signature);
  const timestamp = header(request.headers, WEBHOOK_HEADERS.timestamp);
  if (!signature || !timestamp) throw new ConnectorError('auth', 'zendesk webhook: unsigned request');
  const timestampMs = Date.parse(timestamp);
  if (Number.isNaN(timestampMs)) throw new ConnectorError('auth', 'zendesk webhook: unreadable signature timestamp');
  if (Math.abs(request.receivedAt - timestampMs) > MAX_WEBHOOK_SKEW_MS) {
    throw new ConnectorError('auth', 'zendesk webhook: signature timestamp outside the 5-minute window');
  }
  const expected = Buffer.from(signZendeskWebhook(secret, timestamp, request.body), 'utf8');
  const given = Buffer.from(signature.trim(), 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new ConnectorError('auth', 'zendesk webhook: signature mismatch');
  }
  return { timestampMs };
}

// ---------------------------------------------------------------------------------------------------------
// What our triggers send (manifests/zendesk/requirements.json ships exactly these; notifications.test.ts
// checks it). Placeholders are Zendesk's; webhook JSON payloads render them as unformatted text.

export type WebhookEventKind = 'agent_reply' | 'status_changed' | 'assignee_changed';

const ticketRef = '"ticket_id": "{{ticket.id}}", "external_id": "{{ticket.external_id}}", "current_user_email": "{{current_user.email}}"';

export const AGENT_REPLY_PAYLOAD =
  `{"email_channel_event": "agent_reply", ${ticketRef}, ` +
  '"comment": {"body": "{{ticket.latest_public_comment.value}}", "author_email": "{{ticket.latest_public_comment.author.email}}"}, ' +
  '"attachments": [{% for attachment in ticket.latest_public_comment.attachments %}{"filename": "{{attachment.filename}}", "url": "{{attachment.url}}"}{% unless forloop.last %},{% endunless %}{% endfor %}]}';

export function statusPayload(status: ZendeskStatus): string {
  return `{"email_channel_event": "status_changed", ${ticketRef}, "status": "${status}"}`;
}

export const ASSIGNEE_PAYLOAD = `{"email_channel_event": "assignee_changed", ${ticketRef}, "assignee_email": "{{ticket.assignee.email}}"}`;

/** Statuses an agent can move a ticket to that the service hears about (one trigger each, literal value). */
export const WEBHOOK_STATUSES: readonly ZendeskStatus[] = ['open', 'pending', 'hold', 'solved', 'closed'];

/** Requirement key of the webhook in requirements.json; triggers reference it in `notification_webhook`. */
export const WEBHOOK_REQUIREMENT_KEY = 'email_channel_webhook';

export interface TriggerCondition {
  field: string;
  operator: string;
  value?: string | boolean;
}

export interface WebhookTrigger {
  title: string;
  description: string;
  conditions: { all: TriggerCondition[]; any: TriggerCondition[] };
  actions: { field: 'notification_webhook'; value: [string, string] }[];
}

/**
 * Our tickets only (marker tag), updates by people only: `current_via_id is_not 5` leaves out every update
 * made through the API (Via type 5 = Web service), i.e. our own writes — no loops.
 */
const ONLY_OUR_TICKETS_BY_PEOPLE: TriggerCondition[] = [
  { field: 'update_type', operator: 'is', value: 'Change' },
  { field: 'current_tags', operator: 'includes', value: RECORD_MARKER },
  { field: 'current_via_id', operator: 'is_not', value: '5' },
];

function trigger(title: string, description: string, extra: TriggerCondition[], payload: string): WebhookTrigger {
  return {
    title,
    description,
    conditions: { all: [...ONLY_OUR_TICKETS_BY_PEOPLE, ...extra], any: [] },
    actions: [{ field: 'notification_webhook', value: [WEBHOOK_REQUIREMENT_KEY, payload] }],
  };
}

/** The webhook triggers, keyed by their requirements.json key. */
export function webhookTriggers(): Record<string, WebhookTrigger> {
  const out: Record<string, WebhookTrigger> = {
    email_channel_agent_reply: trigger(
      'Email channel: agent public reply',
      'Sends an agent public reply on an email-channel ticket to the email channel service, which mails it to the customer.',
      [
        { field: 'comment_is_public', operator: 'is', value: true },
        { field: 'role', operator: 'is', value: 'agent' },
      ],
      AGENT_REPLY_PAYLOAD,
    ),
    email_channel_assignee_change: trigger(
      'Email channel: assignee changed',
      'Tells the email channel service who now owns an email-channel ticket.',
      [{ field: 'assignee_id', operator: 'changed' }],
      ASSIGNEE_PAYLOAD,
    ),
  };
  for (const status of WEBHOOK_STATUSES) {
    out[`email_channel_status_${status}`] = trigger(
      `Email channel: status changed to ${status}`,
      `Tells the email channel service that an agent set an email-channel ticket to ${status}.`,
      [{ field: 'status', operator: 'value', value: status }],
      statusPayload(status),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

const base = {
  ticket_id: z.string().regex(/^\d+$/),
  external_id: z.string().optional(),
  current_user_email: z.string().optional(),
};
const payloadSchema = z.discriminatedUnion('email_channel_event', [
  z.looseObject({
    email_channel_event: z.literal('agent_reply'),
    ...base,
    comment: z.looseObject({ body: z.string(), author_email: z.string().optional() }),
    attachments: z.array(z.looseObject({ filename: z.string(), url: z.string() })).optional(),
  }),
  z.looseObject({ email_channel_event: z.literal('status_changed'), ...base, status: z.string() }),
  z.looseObject({ email_channel_event: z.literal('assignee_changed'), ...base, assignee_email: z.string().optional() }),
]);

export interface ParseWebhookOptions {
  secret: string;
  /** The API user's email: events it caused are our own writes and are dropped (loop guard). */
  apiUserEmail: string;
}

/**
 * Verifies and maps one webhook request to CrmEvents. eventId is Zendesk's invocation id (stable across its
 * retries of one delivery); `at` is the signature timestamp.
 */
export function parseZendeskWebhook(request: IncomingRequest, opts: ParseWebhookOptions): CrmEvent[] {
  const { timestampMs } = verifyZendeskWebhook(request, opts.secret);
  let json: unknown;
  try {
    json = JSON.parse(request.body);
  } catch {
    throw new ConnectorError('permanent', 'zendesk webhook: body is not JSON');
  }
  const kind = typeof json === 'object' && json !== null && 'email_channel_event' in json ? json.email_channel_event : undefined;
  if (kind !== 'agent_reply' && kind !== 'status_changed' && kind !== 'assignee_changed') return []; // not one of ours
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) throw new ConnectorError('permanent', `zendesk webhook: unexpected ${kind} payload`);
  const p = parsed.data;
  const actor = (p.current_user_email ?? '').trim().toLowerCase();
  if (actor !== '' && actor === opts.apiUserEmail.trim().toLowerCase()) return []; // caused by our own write

  const eventId = header(request.headers, WEBHOOK_HEADERS.invocationId) ?? `sha256:${createHash('sha256').update(request.body).digest('hex').slice(0, 32)}`;
  const common = { recordId: p.ticket_id, at: timestampMs, eventId };
  switch (p.email_channel_event) {
    case 'agent_reply': {
      const authorEmail = (p.comment.author_email || p.current_user_email || '').trim();
      if (p.comment.body.trim() === '' || authorEmail === '') return [];
      const attachments = (p.attachments ?? []).filter((a) => a.url !== '').map((a) => ({ filename: a.filename, url: a.url }));
      return [{ type: 'agent_reply', ...common, bodyText: p.comment.body, authorEmail, ...(attachments.length > 0 ? { attachments } : {}) }];
    }
    case 'status_changed': {
      const status = sessionStatusFromZendesk(p.status);
      return status ? [{ type: 'status_changed', ...common, status }] : [];
    }
    case 'assignee_changed': {
      const email = (p.assignee_email ?? '').trim();
      return [{ type: 'assignee_changed', ...common, assigneeEmail: email === '' ? null : email }];
    }
  }
}

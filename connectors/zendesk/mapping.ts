// Session ↔ Zendesk vocabulary: statuses, tags, custom fields and the ticket bodies the connector sends.
import { RECORD_MARKER, type CreateRecordInput, type SessionStatus } from '../contract.js';

export type ZendeskStatus = 'new' | 'open' | 'pending' | 'hold' | 'solved' | 'closed';

/** The mapping options of the connector config (see index.ts). */
export interface MappingConfig {
  closedStatus: 'solved' | 'closed';
  pausedStatus: 'pending' | 'hold';
  groupByQueue: Record<string, number>;
  sessionIdFieldId?: number;
  statusFieldId?: number;
}

/** Session status → Zendesk ticket status (documented in README; paused and closed configurable). */
export function statusMapFor(cfg: Pick<MappingConfig, 'closedStatus' | 'pausedStatus'>): Record<SessionStatus, ZendeskStatus> {
  return {
    unopened: 'open',
    reopened: 'open',
    active: 'open',
    paused: cfg.pausedStatus,
    resolved: 'solved',
    closed: cfg.closedStatus,
  };
}

/** Zendesk ticket status → session status, for CRM events (an agent changed the ticket in Zendesk). */
export function sessionStatusFromZendesk(status: string): SessionStatus | null {
  switch (status.trim().toLowerCase()) {
    case 'new':
      return 'unopened';
    case 'open':
      return 'active';
    case 'pending':
    case 'hold':
    case 'on-hold':
      return 'paused';
    case 'solved':
      return 'resolved';
    case 'closed':
      return 'closed';
    default:
      return null;
  }
}

/** The tag that ties a ticket to its session (besides external_id), e.g. `email_channel_session_s7k2m9qx4tb`. */
export function sessionTag(sessionId: string): string {
  // Zendesk tags are lowercase words; anything else becomes `_`.
  return `email_channel_session_${sessionId.toLowerCase().replace(/[^a-z0-9_-]/g, '_')}`;
}

export function recordTags(sessionId: string): string[] {
  return [RECORD_MARKER, sessionTag(sessionId)];
}

export interface CustomFieldValue {
  id: number;
  value: string | number | boolean | null;
}

/** `custom_fields` of a ticket: the configured session-id and status fields, plus the caller's by field id. */
export function customFieldsFor(
  cfg: MappingConfig,
  values: { sessionId?: string; status?: SessionStatus; extra?: CreateRecordInput['customFields'] },
): CustomFieldValue[] {
  const out = new Map<number, CustomFieldValue['value']>();
  for (const [key, value] of Object.entries(values.extra ?? {})) {
    const id = Number(key);
    // Zendesk custom fields are addressed by numeric id; other keys cannot be sent.
    if (Number.isSafeInteger(id) && id > 0) out.set(id, value);
  }
  if (cfg.sessionIdFieldId !== undefined && values.sessionId !== undefined) out.set(cfg.sessionIdFieldId, values.sessionId);
  if (cfg.statusFieldId !== undefined && values.status !== undefined) out.set(cfg.statusFieldId, values.status);
  return [...out].map(([id, value]) => ({ id, value }));
}

/** The Zendesk group of a service queue (config `groupByQueue`), or undefined when unmapped. */
export function groupForQueue(cfg: MappingConfig, queue: { id: string } | null | undefined): number | undefined {
  return queue ? cfg.groupByQueue[queue.id] : undefined;
}

/** A comment as Zendesk takes it inside `ticket.comment`. */
export interface ZendeskCommentBody {
  body?: string;
  html_body?: string;
  public: boolean;
  uploads?: string[];
  author_id?: number;
}

export function commentBody(c: { bodyText: string; bodyHtml?: string; public: boolean }, uploads: string[], authorId?: number): ZendeskCommentBody {
  const out: ZendeskCommentBody = c.bodyHtml ? { html_body: c.bodyHtml, public: c.public } : { body: c.bodyText, public: c.public };
  if (uploads.length > 0) out.uploads = uploads;
  if (authorId !== undefined) out.author_id = authorId;
  return out;
}

/** Key of the audit metadata (`ticket.metadata`, 1 KB max) that records which of our writes made a comment. */
export const COMMENT_METADATA_KEY = 'email_channel_comment_id';

/** The Create Ticket body: one call carrying the first comment (with its upload tokens), tags and fields. */
export function createTicketBody(
  input: CreateRecordInput,
  cfg: MappingConfig,
  opts: { uploads: string[]; assigneeId?: number; authorId?: number; commentExternalId: string },
): { ticket: Record<string, unknown> } {
  const first = input.firstComment ?? {
    // Zendesk requires a first comment; when bodies are not posted (R-CRM-2 off) a private note says why.
    bodyText: `Email channel session ${input.sessionId} (message bodies are not posted to the CRM).`,
    public: false,
  };
  const ticket: Record<string, unknown> = {
    subject: input.subject.slice(0, 150) || '(no subject)',
    comment: commentBody(first, opts.uploads, opts.authorId),
    requester: input.requester.name ? { name: input.requester.name, email: input.requester.email } : { email: input.requester.email },
    external_id: input.externalId,
    status: statusMapFor(cfg)[input.status],
    // Follow-ups inherit the parent's tags unless tags are given: we always give ours.
    tags: recordTags(input.sessionId),
    metadata: { [COMMENT_METADATA_KEY]: opts.commentExternalId },
  };
  const fields = customFieldsFor(cfg, { sessionId: input.sessionId, status: input.status, extra: input.customFields });
  if (fields.length > 0) ticket.custom_fields = fields;
  const group = groupForQueue(cfg, input.queue);
  if (group !== undefined) ticket.group_id = group;
  if (opts.assigneeId !== undefined) ticket.assignee_id = opts.assigneeId;
  if (input.followUpOf !== undefined) ticket.via_followup_source_id = Number(input.followUpOf);
  return { ticket };
}

/** What one Update Ticket call may carry; the writer coalesces several of them into one. */
export interface TicketPatch {
  status?: ZendeskStatus;
  /** `null` unassigns. */
  assigneeId?: number | null;
  groupId?: number;
  customFields?: CustomFieldValue[];
  comment?: ZendeskCommentBody & { externalId: string };
}

export function updateTicketBody(patch: TicketPatch): { ticket: Record<string, unknown> } {
  const ticket: Record<string, unknown> = {};
  if (patch.status !== undefined) ticket.status = patch.status;
  if (patch.assigneeId !== undefined) ticket.assignee_id = patch.assigneeId;
  if (patch.groupId !== undefined) ticket.group_id = patch.groupId;
  if (patch.customFields && patch.customFields.length > 0) ticket.custom_fields = patch.customFields;
  if (patch.comment) {
    const { externalId, ...comment } = patch.comment;
    ticket.comment = comment;
    ticket.metadata = { [COMMENT_METADATA_KEY]: externalId };
  }
  return { ticket };
}

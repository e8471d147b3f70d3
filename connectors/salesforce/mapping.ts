// Pure mapping between the service's terms and Salesforce Case/EmailMessage/CaseComment/ContentVersion records, SOQL and checkpoints.
import { RECORD_MARKER, type CreateRecordInput, type SessionStatus } from '../contract.js';

/** REST API version every call uses (pinned: field shapes and the upsert/composite answers depend on it). */
export const API_VERSION = '60.0';
export const DATA_PATH = `/services/data/v${API_VERSION}`;

/** Custom fields the install metadata (manifests/salesforce) adds to Case. */
export const SESSION_ID_FIELD = 'EmailChannel_Session_Id__c';
export const STATUS_FIELD = 'EmailChannel_Status__c';
/** Length of EmailChannel_Session_Id__c (Text(32), External ID, Unique). */
export const EXTERNAL_ID_MAX = 32;

/** Field sizes of the standard objects (object reference): longer values are cut, never refused. */
export const LIMITS = {
  caseSubject: 255,
  caseDescription: 32_000,
  suppliedName: 80,
  suppliedEmail: 80,
  emailSubject: 3_000,
  emailBody: 32_000,
  emailAddress: 1_000,
  /** CaseComment.CommentBody: 4,000 bytes. */
  commentBytes: 4_000,
  /** Non-multipart JSON insert of blob data: 37.5 MB of base64 (≈ 28 MB of bytes). */
  base64Bytes: 37_500_000,
} as const;

/**
 * Default session status → Case.Status. The default Case Status picklist holds New, Working, Escalated and
 * Closed, so every default is a value any org has; an org with an "On Hold" value sets `statusMap.paused`.
 * The exact session status always travels in EmailChannel_Status__c.
 */
export const DEFAULT_STATUS_MAP: Record<SessionStatus, string> = {
  unopened: 'New',
  active: 'Working',
  paused: 'Working',
  resolved: 'Closed',
  closed: 'Closed',
  reopened: 'Working',
};

export function resolveStatusMap(overrides: Partial<Record<SessionStatus, string>> | undefined): Record<SessionStatus, string> {
  return { ...DEFAULT_STATUS_MAP, ...(overrides ?? {}) };
}

const SESSION_STATUSES: readonly SessionStatus[] = ['unopened', 'active', 'paused', 'resolved', 'closed', 'reopened'];

export function isSessionStatus(value: unknown): value is SessionStatus {
  return typeof value === 'string' && (SESSION_STATUSES as readonly string[]).includes(value);
}

/**
 * The session status an agent's Case.Status change means, or null when it means no change. `current` is
 * the session status the connector last wrote (EmailChannel_Status__c). Closed values solve the session
 * (the service's timers close it); an open value on a solved session reopens it.
 */
export function crmStatusToSession(
  crmStatus: string,
  current: SessionStatus | null,
  statusMap: Record<SessionStatus, string>,
): SessionStatus | null {
  if (current && statusMap[current] === crmStatus) return null;
  const isDone = (s: SessionStatus | null) => s === 'resolved' || s === 'closed';
  if (crmStatus === statusMap.resolved) return current === 'closed' ? null : 'resolved';
  if (crmStatus === statusMap.closed) return 'closed';
  if (isDone(current)) return 'reopened';
  const working = current === 'active' || current === 'reopened';
  if (crmStatus === statusMap.active || crmStatus === statusMap.reopened) return working ? null : 'active';
  if (crmStatus === statusMap.paused) return 'paused';
  // Back to the "new" value: an agent cannot un-open a session.
  if (crmStatus === statusMap.unopened) return null;
  // Any other open value (Escalated, a custom one): the session is being worked.
  return working ? null : 'active';
}

/** Cuts a string to `max` characters (UTF-16 code units, as Salesforce counts text length). */
export function cut(value: string, max: number): string {
  return value.length <= max ? value : value.slice(0, Math.max(0, max - 1)) + '…';
}

/** Cuts a string so its UTF-8 encoding fits `maxBytes`, without splitting a character. */
export function cutBytes(value: string, maxBytes: number): string {
  const enc = new TextEncoder();
  if (enc.encode(value).length <= maxBytes) return value;
  let lo = 0;
  let hi = value.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (enc.encode(value.slice(0, mid)).length + 3 <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  let out = value.slice(0, lo);
  if (/[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
  return out + '…';
}

/** The idempotency marker a CaseComment body ends with: found again by a query after an ambiguous failure. */
export function commentMarker(externalId: string): string {
  return `[${externalId}]`;
}

/** CommentBody: the text, cut to fit 4,000 bytes with the marker kept at the end. */
export function commentBody(text: string, externalId: string): string {
  const marker = `\n\n${commentMarker(externalId)}`;
  const room = LIMITS.commentBytes - new TextEncoder().encode(marker).length;
  return cutBytes(text, room) + marker;
}

export function hasCommentMarker(body: string | null | undefined, externalId: string): boolean {
  return typeof body === 'string' && body.trimEnd().endsWith(commentMarker(externalId));
}

/** ContentVersion.Description of a file we attach (filterable in SOQL): marks it ours and carries its idempotency key. */
export function fileDescription(externalId: string): string {
  return `${RECORD_MARKER} ${externalId}`;
}

export interface OwnerChoice {
  /** OwnerId for the Case, when the service has an opinion (assignee user, else mapped queue). */
  ownerId?: string;
}

/** The Case body of createRecord (EmailChannel_Session_Id__c carries the external id: unique, so a retry is refused as DUPLICATE_VALUE). */
export function caseFields(input: CreateRecordInput, statusMap: Record<SessionStatus, string>, owner: OwnerChoice): Record<string, unknown> {
  const body: Record<string, unknown> = {
    ...(input.customFields ?? {}),
    Subject: cut(input.subject || '(no subject)', LIMITS.caseSubject),
    Origin: 'Email',
    Status: statusMap[input.status],
    SuppliedEmail: cut(input.requester.email, LIMITS.suppliedEmail),
    [SESSION_ID_FIELD]: input.externalId,
    [STATUS_FIELD]: input.status,
  };
  if (input.requester.name) body.SuppliedName = cut(input.requester.name, LIMITS.suppliedName);
  if (input.firstComment?.bodyText) body.Description = cut(input.firstComment.bodyText, LIMITS.caseDescription);
  if (owner.ownerId) body.OwnerId = owner.ownerId;
  if (input.followUpOf) body.ParentId = input.followUpOf;
  return body;
}

/**
 * The first message as an EmailMessage on the case (`parentRef` is the composite reference to the new
 * case's id). Inbound: Incoming true, Status '0' (New); a session an agent started: Incoming false, '3' (Sent).
 */
export function firstEmailMessage(input: CreateRecordInput, parentRef: string, now: number): Record<string, unknown> | null {
  const first = input.firstComment;
  if (!first || !first.public) return null;
  const author = first.author ?? input.requester;
  const outbound = author.email.toLowerCase() !== input.requester.email.toLowerCase();
  const body: Record<string, unknown> = {
    ParentId: parentRef,
    Incoming: !outbound,
    Status: outbound ? '3' : '0',
    FromAddress: cut(author.email, LIMITS.emailAddress),
    ToAddress: outbound ? cut(input.requester.email, LIMITS.emailAddress) : undefined,
    Subject: cut(input.subject || '(no subject)', LIMITS.emailSubject),
    TextBody: cut(first.bodyText, LIMITS.emailBody),
    MessageDate: new Date(now).toISOString(),
  };
  if (author.name) body.FromName = cut(author.name, LIMITS.emailAddress);
  if (first.bodyHtml) body.HtmlBody = cut(first.bodyHtml, LIMITS.emailBody);
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

/** A SOQL string literal: backslash and quote escaped. */
export function soqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A SOQL dateTime literal (seconds precision, UTC): Salesforce stores audit dates to the second. */
export function soqlDateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Parses a Salesforce dateTime ("2024-05-01T10:00:00.000+0000"). */
export function parseSfDateTime(value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * A position in one polled stream. Salesforce audit dates have one-second precision, so a record can change
 * again within the second the cursor stands on: the cursor keeps, for that second, a signature of every row
 * seen at it, and a row at that second is new again when its signature differs. `after` (an Id) pages within
 * one second only when a whole batch shares it.
 */
export interface StreamCursor {
  /** Epoch ms, whole seconds. */
  t: number;
  /** Id → signature of the rows seen at `t`. */
  seen: Record<string, string>;
  after?: string;
}

export interface PollCheckpoint {
  v: 2;
  /** Cases, by LastModifiedDate. */
  cases: StreamCursor;
  /** Public CaseComments, by CreatedDate. */
  comments: StreamCursor;
}

export function encodeCheckpoint(cp: PollCheckpoint): string {
  return JSON.stringify(cp);
}

const isCursor = (c: unknown): c is StreamCursor => {
  if (!c || typeof c !== 'object') return false;
  const cur = c as Partial<StreamCursor>;
  if (typeof cur.t !== 'number' || !Number.isFinite(cur.t)) return false;
  if (!cur.seen || typeof cur.seen !== 'object' || Array.isArray(cur.seen)) return false;
  if (!Object.values(cur.seen).every((v) => typeof v === 'string')) return false;
  return cur.after === undefined || typeof cur.after === 'string';
};

/** Reads a checkpoint; anything unreadable starts from `fallbackMs` (never throws: a bad checkpoint must not stall polling). */
export function decodeCheckpoint(raw: string | null, fallbackMs: number): PollCheckpoint {
  const t = Math.floor(fallbackMs / 1000) * 1000;
  const start: PollCheckpoint = { v: 2, cases: { t, seen: {} }, comments: { t, seen: {} } };
  if (!raw) return start;
  try {
    const parsed = JSON.parse(raw) as Partial<PollCheckpoint>;
    if (parsed.v !== 2 || !isCursor(parsed.cases) || !isCursor(parsed.comments)) return start;
    return { v: 2, cases: parsed.cases, comments: parsed.comments };
  } catch {
    return start;
  }
}

/** The SOQL condition for rows at or after the cursor's second (or strictly after `after` within it). */
export function afterCursor(field: string, cursor: StreamCursor): string {
  const t = soqlDateTime(cursor.t);
  if (!cursor.after) return `${field} >= ${t}`;
  return `(${field} > ${t} OR (${field} = ${t} AND Id > ${soqlString(cursor.after)}))`;
}

/** A polled row reduced to what the cursor needs. */
export interface CursorRow {
  id: string;
  /** Epoch ms of the ordering date. */
  t: number;
  sig: string;
}

/** True when the cursor already saw this row in this state (same second, same signature). */
export function alreadySeen(cursor: StreamCursor, row: CursorRow): boolean {
  return row.t === cursor.t && cursor.seen[row.id] === row.sig;
}

/** The cursor after a batch (rows in ascending order); `full` when the batch hit its LIMIT. */
export function advanceCursor(cursor: StreamCursor, rows: CursorRow[], full: boolean): StreamCursor {
  if (rows.length === 0) return cursor;
  const last = rows[rows.length - 1] as CursorRow;
  const t = Math.max(cursor.t, last.t);
  const seen: Record<string, string> = t === cursor.t ? { ...cursor.seen } : {};
  for (const row of rows) if (row.t === t) seen[row.id] = row.sig;
  const next: StreamCursor = { t, seen };
  // Paging by Id within one second: only once a whole batch shares it (and until the stream moves past it).
  const paging = full || (t === cursor.t && cursor.after !== undefined);
  if (paging && last.t === t) next.after = last.id;
  return next;
}

export const POLL_BATCH = 200;

/** Cases of ours changed since the cursor (by anyone: status changes are found by comparing Status with EmailChannel_Status__c). */
export function pollCasesSoql(cursor: StreamCursor): string {
  return (
    `SELECT Id, Status, OwnerId, Owner.Type, Owner.Email, ${STATUS_FIELD}, LastModifiedDate, LastModifiedById FROM Case` +
    ` WHERE ${SESSION_ID_FIELD} != null AND ${afterCursor('LastModifiedDate', cursor)}` +
    ` ORDER BY LastModifiedDate ASC, Id ASC LIMIT ${POLL_BATCH}`
  );
}

/** Public case comments written by someone other than the integration user, on our cases. */
export function pollCommentsSoql(cursor: StreamCursor, integrationUserId: string): string {
  return (
    `SELECT Id, ParentId, CommentBody, IsPublished, CreatedDate, CreatedById, CreatedBy.Email FROM CaseComment` +
    ` WHERE IsPublished = true AND CreatedById != ${soqlString(integrationUserId)} AND Parent.${SESSION_ID_FIELD} != null` +
    ` AND ${afterCursor('CreatedDate', cursor)}` +
    ` ORDER BY CreatedDate ASC, Id ASC LIMIT ${POLL_BATCH}`
  );
}

export function userByEmailSoql(email: string): string {
  return `SELECT Id, Email, Name FROM User WHERE Email = ${soqlString(email)} AND IsActive = true LIMIT 1`;
}

export function queueByNameSoql(name: string): string {
  return `SELECT Id, Name, DeveloperName FROM Group WHERE Type = 'Queue' AND (DeveloperName = ${soqlString(name)} OR Name = ${soqlString(name)}) LIMIT 1`;
}

export function agentsSoql(integrationUserId: string): string {
  return `SELECT Id, Email, Name FROM User WHERE IsActive = true AND UserType = 'Standard' AND Id != ${soqlString(integrationUserId)} ORDER BY Id ASC`;
}

export function caseCommentsSoql(caseId: string): string {
  return `SELECT Id, CommentBody FROM CaseComment WHERE ParentId = ${soqlString(caseId)} ORDER BY CreatedDate DESC`;
}

export function caseFilesSoql(caseId: string): string {
  return `SELECT Id, Description FROM ContentVersion WHERE FirstPublishLocationId = ${soqlString(caseId)} AND IsLatest = true`;
}

/** A 15- or 18-character Salesforce record id. */
export const SALESFORCE_ID = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;

/** Base64 of bytes without Buffer (connectors may run where Buffer is absent). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  return btoa(binary);
}

// Record policies (R-CRM-1..6) as a pure function: which durable CRM jobs a session change causes.
// Jobs carry ids derived from the change, so a replay enqueues nothing twice; handlers read the
// session as it is when they run, so several changes in a row coalesce into one CRM update.
import type { JobSpec } from './ports.js';
import type { Session, SessionStatus } from './session/model.js';

export interface CrmPolicy {
  inbound: boolean;
  outbound: boolean;
  comments: { enabled: boolean; frequency: 'session_end' | 'each_reply' };
  pdf: { enabled: boolean; frequency: 'session_end' | 'each_reply' };
  metadataFile: boolean;
}

/** What happened to the session in this change. */
export interface CrmChange {
  prev: Session | null;
  next: Session;
  /** The message this change added, if any. */
  message?: { internalId: string; direction: 'inbound' | 'outbound'; kind: 'customer' | 'agent_reply' | 'auto_reply' };
  /** The session was started by an agent (outbound) rather than by a customer mail. */
  startedBy?: 'customer' | 'agent';
}

export type CrmJobPurpose =
  | 'crm.create_record'
  | 'crm.comment_thread'
  | 'crm.comment_metadata'
  | 'crm.attach_pdf'
  | 'crm.attach_metadata'
  | 'crm.sync_status'
  | 'crm.sync_assignee'
  | 'crm.sync_queue'
  | 'crm.delivery_failed';

export interface CrmJobPayload {
  sessionId: string;
  /** For comments and PDFs after a reply: the thread up to (and including) this message. */
  uptoMessageId?: string;
  /** Why (for logs and the job list). */
  reason: string;
  /** crm.delivery_failed: the outbound message that could not be delivered. */
  messageId?: string;
}

/** Delay before syncing status/assignee, so a burst of changes becomes one CRM update (Zendesk: 30 updates per ticket per 10 min). */
export const CRM_COALESCE_MS = 5_000;

/** The session ended: closed (the CRM record is then complete). */
const ended = (prev: Session | null, next: Session) => next.status === 'closed' && prev?.status !== 'closed';

/** Counts session ends so a session closed, reopened and closed again gets a second end-of-session log. */
const endNumber = (s: Session) => s.interactions.filter((i) => i.type === 'closed').length;

export function crmJobsFor(change: CrmChange, policy: CrmPolicy, connectorId: string, now: number): JobSpec[] {
  const { prev, next, message } = change;
  const target = `crm:${connectorId}`;
  const sid = next.id;
  const jobs: JobSpec[] = [];
  const job = (purpose: CrmJobPurpose, idSuffix: string, payload: Omit<CrmJobPayload, 'sessionId'>, runAt?: number): JobSpec => ({
    id: `crm:${connectorId}:${sid}:${idSuffix}`,
    purpose,
    target,
    payload: { sessionId: sid, ...payload } satisfies CrmJobPayload,
    ...(runAt !== undefined ? { runAt } : {}),
  });

  const startedBy = change.startedBy ?? next.origin ?? 'customer';
  const wantsRecord = startedBy === 'customer' ? policy.inbound : policy.outbound;
  if (!wantsRecord) return jobs;

  if (prev === null) jobs.push(job('crm.create_record', 'create', { reason: startedBy === 'customer' ? 'new inbound session' : 'new outbound session' }));

  // After each agent reply (auto-replies are logged like any mail, R-CRM-6).
  const replied = message && message.direction === 'outbound';
  if (replied) {
    if (policy.comments.frequency === 'each_reply') {
      jobs.push(
        job(policy.comments.enabled ? 'crm.comment_thread' : 'crm.comment_metadata', `comment:${message.internalId}`, { uptoMessageId: message.internalId, reason: `after ${message.kind}` }),
      );
    }
    if (policy.pdf.enabled && policy.pdf.frequency === 'each_reply') {
      jobs.push(job('crm.attach_pdf', `pdf:${message.internalId}`, { uptoMessageId: message.internalId, reason: `after ${message.kind}` }));
    }
  }

  if (ended(prev, next)) {
    const n = endNumber(next);
    if (policy.comments.frequency === 'session_end') {
      jobs.push(job(policy.comments.enabled ? 'crm.comment_thread' : 'crm.comment_metadata', `comment:end:${n}`, { reason: 'session end' }));
    }
    if (policy.pdf.enabled && policy.pdf.frequency === 'session_end') jobs.push(job('crm.attach_pdf', `pdf:end:${n}`, { reason: 'session end' }));
    if (policy.metadataFile) jobs.push(job('crm.attach_metadata', `metadata:end:${n}`, { reason: 'session end' }));
  }

  const statusChanged = prev !== null && prev.status !== next.status;
  if (statusChanged) jobs.push(job('crm.sync_status', `status:${next.updatedAt}`, { reason: `${prev.status} → ${next.status}` }, now + CRM_COALESCE_MS));
  if (prev !== null && prev.assigneeId !== next.assigneeId) jobs.push(job('crm.sync_assignee', `assignee:${next.updatedAt}`, { reason: 'assignee changed' }, now + CRM_COALESCE_MS));
  if (prev !== null && prev.queueId !== next.queueId) jobs.push(job('crm.sync_queue', `queue:${next.updatedAt}`, { reason: 'transferred' }, now + CRM_COALESCE_MS));
  return jobs;
}

/**
 * A CRM status event applies to the session only when it means something new: the CRM reports
 * statuses in its own coarser vocabulary (e.g. Zendesk `open` for unopened, active and reopened), so
 * an event whose CRM value equals the current status's CRM value is our own write echoing back.
 */
export function crmStatusIsNews(current: SessionStatus, reported: SessionStatus, statusMap: Record<SessionStatus, string>): boolean {
  return statusMap[current] !== statusMap[reported];
}

/**
 * An outbound message could not be delivered (refused at send, or bounced later, R-AGT-3 / issue 9b): the record
 * gets an internal note with the reason, once per message and outcome.
 */
export function crmDeliveryFailedJob(connectorId: string, sessionId: string, messageInternalId: string, outcome: 'failed' | 'bounced', reason: string): JobSpec {
  return {
    id: `crm:${connectorId}:${sessionId}:delivery:${messageInternalId}:${outcome}`,
    purpose: 'crm.delivery_failed',
    target: `crm:${connectorId}`,
    payload: { sessionId, messageId: messageInternalId, reason } satisfies CrmJobPayload,
  };
}

// CRM synchronisation (R-CRM-1..6, R-CON-3): runs the durable CRM jobs that record policies cause
// (src/core/crm-policy.ts), and turns CRM events (webhooks, polls) into session events through the same
// status machine. A CRM outage delays writes, never loses them; every write is idempotent.
import { ConnectorError, type ConnectorInstance, type CreateRecordInput, type CrmEvent, type FileRef, type IncomingRequest } from '../core/crm.js';
import { crmJobsFor, crmStatusIsNews, type CrmChange, type CrmJobPayload } from '../core/crm-policy.js';
import { AppError } from '../core/errors.js';
import { PermanentJobError, RetryLaterError, type Clock, type JobQueue, type JobRecord, type JobSpec, type Logger, type Store } from '../core/ports.js';
import type { SessionStatus } from '../core/session/model.js';
import { idxSessionMessages, messageKey, saveSessionOps, sessionKey, type StoredSession } from '../core/session/store-layout.js';
import { trimReply } from '../core/text/reply-trimmer.js';
import type { Settings } from '../config/settings.js';
import type { StoredMessage } from './ingest-message.js';

/** The CRM the service writes to now: the connector chosen in settings, one instance per configuration. */
export interface CrmProvider {
  current(): Promise<{ id: string; instance: ConnectorInstance; statusMap: Record<SessionStatus, string> }>;
  /**
   * A given connector, even after the settings switched to another one: jobs queued for the old
   * connector still run against it (its configuration is kept when switching).
   */
  get(connectorId: string): Promise<{ id: string; instance: ConnectorInstance; statusMap: Record<SessionStatus, string> }>;
}

export interface CrmSyncDeps {
  store: Store;
  jobs: JobQueue;
  clock: Clock;
  logger: Logger;
  settings(): Promise<Settings>;
  crm: CrmProvider;
  /** The thread as a PDF (up to a message, or whole). */
  transcriptPdf?(sessionId: string, uptoMessageId?: string): Promise<Uint8Array>;
  /** The attached files of a stored message (the record's first comment carries them). */
  attachmentsOf?(message: StoredMessage): Promise<FileRef[]>;
  /** Agent email for assignee sync. */
  agentEmail?(agentId: string): Promise<string | null>;
  queueName?(queueId: string): Promise<string | null>;
  /** Applies a CRM-originated status to the session (through the status machine); null = ignored. */
  applyStatus(sessionId: string, status: SessionStatus, actor: string): Promise<void>;
  /** An agent's public reply made in the CRM: the outbound path sends it as an email (R-AGT-4). */
  onAgentReply?(sessionId: string, event: Extract<CrmEvent, { type: 'agent_reply' }>): Promise<void>;
}

export const crmRecordKey = (connectorId: string, recordId: string): string => `crm-record:${connectorId}:${recordId}`;
/** `crm-session:<connectorId>:<sessionId>`: the session's record in that connector. */
export const sessionRecordKey = (connectorId: string, sessionId: string): string => `crm-session:${connectorId}:${sessionId}`;
export const crmEventKey = (connectorId: string, eventId: string): string => `crm-event:${connectorId}:${eventId}`;
const CRM_EVENT_TTL_MS = 7 * 24 * 3600_000;
const MAX_THREAD_MESSAGES = 500;

const externalIdOf = (sessionId: string) => `ec:${sessionId}`;

/** ConnectorError → what the job runner does: retry later (429), retry with backoff (transient), or fail for good. */
export function jobErrorFor(err: unknown): Error {
  if (err instanceof ConnectorError || (err instanceof Error && err.name.endsWith('ConnectorError'))) {
    const e = err as ConnectorError;
    if (e.kind === 'rate_limited') return new RetryLaterError(e.message, e.retryAfterMs ?? 30_000);
    if (e.kind === 'transient') return e;
    return new PermanentJobError(`${e.kind}: ${e.message}`);
  }
  return err as Error;
}

export class CrmSyncService {
  constructor(private readonly deps: CrmSyncDeps) {}

  /** The jobs a session change causes under the current policy (committed with the change by the caller). */
  async jobsFor(change: CrmChange): Promise<JobSpec[]> {
    const settings = await this.deps.settings();
    return crmJobsFor(change, settings.crm, settings.connector.id, this.deps.clock.now());
  }

  /** Registers the job handlers (one per purpose). */
  register(): void {
    const handle = (fn: (payload: CrmJobPayload & { connectorId: string }, job: JobRecord) => Promise<void>) => async (job: JobRecord) => {
      // The target names the connector the job was queued for (`crm:<id>`), which may no longer be the current one.
      const connectorId = job.target.startsWith('crm:') ? job.target.slice(4) : '';
      try {
        await fn({ ...(job.payload as CrmJobPayload), connectorId }, job);
      } catch (err) {
        throw jobErrorFor(err);
      }
    };
    const { jobs } = this.deps;
    jobs.register('crm.create_record', handle((p) => this.createRecord(p.connectorId, p.sessionId).then(() => undefined)));
    jobs.register('crm.comment_thread', handle((p, j) => this.comment(p, j.id, true)));
    jobs.register('crm.comment_metadata', handle((p, j) => this.comment(p, j.id, false)));
    jobs.register('crm.attach_pdf', handle((p, j) => this.attachPdf(p, j.id)));
    jobs.register('crm.attach_metadata', handle((p, j) => this.attachMetadata(p, j.id)));
    jobs.register('crm.sync_status', handle((p) => this.syncStatus(p.connectorId, p.sessionId)));
    jobs.register('crm.sync_assignee', handle((p) => this.syncAssignee(p.connectorId, p.sessionId)));
    jobs.register('crm.sync_queue', handle((p) => this.syncQueue(p.connectorId, p.sessionId)));
    jobs.register('crm.delivery_failed', handle((p, j) => this.deliveryFailed(p, j.id)));
  }

  private async session(id: string): Promise<StoredSession> {
    const s = await this.deps.store.get<StoredSession>(sessionKey(id));
    if (!s) throw new PermanentJobError(`session ${id} no longer exists`);
    return s;
  }

  private async messages(sessionId: string, upto?: string): Promise<StoredMessage[]> {
    const entries = await this.deps.store.indexRange(idxSessionMessages(sessionId), { limit: MAX_THREAD_MESSAGES });
    const docs = (await this.deps.store.getMany<StoredMessage>(entries.map((e) => messageKey(e.member)))).filter((m): m is StoredMessage => !!m);
    if (!upto) return docs;
    const i = docs.findIndex((m) => m.id === upto);
    return i >= 0 ? docs.slice(0, i + 1) : docs;
  }

  /** The record of a session, creating it when needed (idempotent by the session's external id). */
  async createRecord(connectorId: string, sessionId: string): Promise<string> {
    const { instance } = await this.deps.crm.get(connectorId);
    const s = await this.session(sessionId);
    // The session's record in THIS connector (a session keeps the id of the connector it was created in).
    const known = await this.deps.store.get<{ recordId: string }>(sessionRecordKey(connectorId, sessionId));
    if (known) return known.recordId;
    const found = await instance.findByExternalId(externalIdOf(sessionId));
    const recordId = found?.id ?? (await instance.createRecord(await this.recordInput(s))).id;
    await this.linkRecord(connectorId, sessionId, recordId);
    return recordId;
  }

  private async recordInput(s: StoredSession, followUpOf?: string): Promise<CreateRecordInput> {
    const settings = await this.deps.settings();
    const [first] = await this.messages(s.id);
    const withBody = settings.crm.comments.enabled;
    const assigneeEmail = s.assigneeId && this.deps.agentEmail ? await this.deps.agentEmail(s.assigneeId) : null;
    const queueName = s.queueId && this.deps.queueName ? await this.deps.queueName(s.queueId) : null;
    const attachments = first && first.attachments.length > 0 && this.deps.attachmentsOf ? await this.deps.attachmentsOf(first) : [];
    return {
      externalId: externalIdOf(s.id),
      sessionId: s.id,
      subject: s.subject || '(no subject)',
      requester: { email: s.customer.address, ...(s.customer.name ? { name: s.customer.name } : {}) },
      firstComment: first
        ? {
            bodyText: withBody ? trimReply(first.text) || first.text : metadataLine(first),
            public: false,
            ...(first.from ? { author: { email: first.from.address } } : {}),
            ...(attachments.length > 0 ? { attachments } : {}),
          }
        : null,
      status: s.status,
      queue: s.queueId ? { id: s.queueId, name: queueName ?? s.queueId } : null,
      assignee: s.assigneeId && assigneeEmail ? { agentId: s.assigneeId, email: assigneeEmail } : null,
      ...(followUpOf ? { followUpOf } : {}),
    };
  }

  private async linkRecord(connectorId: string, sessionId: string, recordId: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await this.session(sessionId);
      if (prev.ticketId === recordId) {
        await this.deps.store.put(sessionRecordKey(connectorId, sessionId), { recordId });
        return;
      }
      const next = { ...prev, ticketId: recordId, updatedAt: this.deps.clock.now() };
      const { ops } = saveSessionOps(prev, next);
      try {
        await this.deps.store.commit([
          ...ops,
          { op: 'put', key: crmRecordKey(connectorId, recordId), value: { sessionId } },
          { op: 'put', key: sessionRecordKey(connectorId, sessionId), value: { recordId } },
        ]);
        return;
      } catch (err) {
        if ((err as Error).name !== 'CommitConflictError') throw err;
      }
    }
    await this.deps.store.put(crmRecordKey(connectorId, recordId), { sessionId });
    await this.deps.store.put(sessionRecordKey(connectorId, sessionId), { recordId });
  }

  /** Runs a write on the session's record; a closed-for-good record gets a follow-up first (Zendesk). */
  private async onRecord<T>(connectorId: string, sessionId: string, write: (instance: ConnectorInstance, recordId: string) => Promise<T>): Promise<T> {
    const { instance } = await this.deps.crm.get(connectorId);
    const s = await this.session(sessionId);
    const recordId = await this.createRecord(connectorId, sessionId);
    try {
      return await write(instance, recordId);
    } catch (err) {
      if ((err as { followUpNeeded?: boolean }).followUpNeeded === true) {
        const created = await instance.createRecord({ ...(await this.recordInput(s, recordId)), externalId: `${externalIdOf(sessionId)}:followup:${recordId}` });
        await this.linkRecord(connectorId, sessionId, created.id);
        this.deps.logger.info({ sessionId, closed: recordId, followUp: created.id }, 'CRM record was closed; created a follow-up');
        return write(instance, created.id);
      }
      throw err;
    }
  }

  /** The thread to date as one comment: each message's new text, quoted history stripped (R-CRM-2). */
  private async comment(p: CrmJobPayload & { connectorId: string }, externalId: string, withBody: boolean): Promise<void> {
    const messages = await this.messages(p.sessionId, p.uptoMessageId);
    const body = messages.map((m) => (withBody ? `${metadataLine(m)}\n\n${trimReply(m.text) || m.text}` : metadataLine(m))).join('\n\n———\n\n');
    await this.onRecord(p.connectorId, p.sessionId, (crm, recordId) => crm.addComment({ recordId, externalId, bodyText: body || '(no messages)', public: false }));
  }

  /** An outbound message was refused or bounced: an internal note on the record says which, to whom, and why. */
  private async deliveryFailed(p: CrmJobPayload & { connectorId: string }, externalId: string): Promise<void> {
    const m = p.messageId ? await this.deps.store.get<StoredMessage>(messageKey(p.messageId)) : undefined;
    const to = m ? [...m.to, ...m.cc].map((a) => a.address).join(', ') : 'the customer';
    const body = `Email not delivered${m ? ` — “${m.subject}” to ${to}` : ''}: ${p.reason}`;
    await this.onRecord(p.connectorId, p.sessionId, (crm, recordId) => crm.addComment({ recordId, externalId, bodyText: body, public: false }));
  }

  private async attachPdf(p: CrmJobPayload & { connectorId: string }, externalId: string): Promise<void> {
    if (!this.deps.transcriptPdf) throw new PermanentJobError('no PDF renderer is configured');
    const bytes = await this.deps.transcriptPdf(p.sessionId, p.uptoMessageId);
    const name = `${p.sessionId}${p.uptoMessageId ? `-${p.uptoMessageId}` : ''}.pdf`;
    await this.onRecord(p.connectorId, p.sessionId, (crm, recordId) => crm.attachFile(recordId, { filename: name, contentType: 'application/pdf', bytes, externalId }));
  }

  /** R-CRM-4: ids, participants, queue, statuses with timestamps, assignments, message list. */
  async metadata(sessionId: string): Promise<Record<string, unknown>> {
    const s = await this.session(sessionId);
    const messages = await this.messages(sessionId);
    return {
      sessionId: s.id,
      ticketId: s.ticketId,
      linkedFrom: s.linkedFrom,
      subject: s.subject,
      customer: s.customer,
      participants: s.participants,
      queueId: s.queueId,
      status: s.status,
      createdAt: new Date(s.createdAt).toISOString(),
      statuses: s.interactions.filter((i) => i.type === 'status_changed' || i.type === 'closed').map((i) => ({ at: new Date(i.at).toISOString(), actor: i.actor, ...i.data })),
      assignments: s.interactions.filter((i) => i.type === 'agent_assigned' || i.type === 'agent_unassigned' || i.type === 'transferred').map((i) => ({ type: i.type, at: new Date(i.at).toISOString(), actor: i.actor, ...i.data })),
      messages: messages.map((m) => ({
        messageId: m.messageId,
        direction: m.direction,
        from: m.from?.address ?? null,
        date: m.date,
        receivedAt: m.receivedAt,
        size: m.size,
        attachments: m.attachments.map((a) => a.filename),
      })),
    };
  }

  private async attachMetadata(p: CrmJobPayload & { connectorId: string }, externalId: string): Promise<void> {
    const json = JSON.stringify(await this.metadata(p.sessionId), null, 2);
    await this.onRecord(p.connectorId, p.sessionId, (crm, recordId) =>
      crm.attachFile(recordId, { filename: `${p.sessionId}-metadata.json`, contentType: 'application/json', bytes: new TextEncoder().encode(json), externalId }),
    );
  }

  /** Coalesced: several queued status jobs of one session write the CRM once, and only when its value changes. */
  private async syncStatus(connectorId: string, sessionId: string): Promise<void> {
    const s = await this.session(sessionId);
    const { statusMap } = await this.deps.crm.get(connectorId);
    const key = `crm-status:${connectorId}:${sessionId}`;
    const synced = await this.deps.store.get<{ value: string }>(key);
    if (synced?.value === statusMap[s.status]) return;
    await this.onRecord(connectorId, sessionId, (crm, recordId) => crm.setStatus(recordId, s.status));
    await this.deps.store.put(key, { value: statusMap[s.status] });
  }

  private async syncAssignee(connectorId: string, sessionId: string): Promise<void> {
    const s = await this.session(sessionId);
    const email = s.assigneeId && this.deps.agentEmail ? await this.deps.agentEmail(s.assigneeId) : null;
    await this.onRecord(connectorId, sessionId, (crm, recordId) => crm.setAssignee(recordId, email ? { email } : null));
  }

  private async syncQueue(connectorId: string, sessionId: string): Promise<void> {
    const s = await this.session(sessionId);
    if (!s.queueId) return;
    const name = this.deps.queueName ? await this.deps.queueName(s.queueId) : null;
    await this.onRecord(connectorId, sessionId, async (crm, recordId) => {
      if (crm.setQueue) await crm.setQueue(recordId, { id: s.queueId as string, name: name ?? (s.queueId as string) });
    });
  }

  /** POST /api/connector/test: the CRM's own words on failure. */
  async testConnector(): Promise<{ ok: boolean; connector: string; account?: string; error?: { code: string; message: string } }> {
    const { id, instance } = await this.deps.crm.current();
    try {
      const r = await instance.test();
      return { ok: true, connector: id, ...(r.account ? { account: r.account } : {}) };
    } catch (err) {
      const kind = err instanceof ConnectorError || (err as Error).name.endsWith('ConnectorError') ? (err as ConnectorError).kind : 'permanent';
      return { ok: false, connector: id, error: { code: kind, message: (err as Error).message } };
    }
  }

  /** POST /webhooks/:connector — verified by the connector (401 when unsigned or forged), applied once per event id. */
  async handleWebhook(connectorId: string, request: IncomingRequest): Promise<{ received: number; applied: number }> {
    const { id, instance, statusMap } = await this.deps.crm.current();
    if (id !== connectorId) throw new AppError('not_found', `connector ${connectorId} is not the one in use`);
    if (!instance.parseWebhook) throw new AppError('not_found', `connector ${connectorId} takes no webhooks`);
    let events: CrmEvent[];
    try {
      events = await instance.parseWebhook(request);
    } catch (err) {
      if (err instanceof ConnectorError || (err as Error).name.endsWith('ConnectorError')) {
        if ((err as ConnectorError).kind === 'auth') throw new AppError('unauthorized', 'webhook signature missing or invalid');
        throw new AppError('validation_failed', (err as Error).message);
      }
      throw err;
    }
    return { received: events.length, applied: await this.applyEvents(connectorId, events, statusMap) };
  }

  /** One poll of a polling connector (Salesforce); the checkpoint lives in the store. */
  async pollOnce(): Promise<number> {
    const { id, instance, statusMap } = await this.deps.crm.current();
    if (!instance.pollEvents) return 0;
    const key = `crm-poll:${id}`;
    const checkpoint = (await this.deps.store.get<{ checkpoint: string }>(key))?.checkpoint ?? null;
    const { events, checkpoint: next } = await instance.pollEvents(checkpoint);
    const applied = await this.applyEvents(id, events, statusMap);
    await this.deps.store.put(key, { checkpoint: next });
    return applied;
  }

  private async applyEvents(connectorId: string, events: CrmEvent[], statusMap: Record<SessionStatus, string>): Promise<number> {
    let applied = 0;
    for (const event of events.slice(0, 1000)) {
      // Each CRM event is applied once (webhooks are retried by the CRM; polls may overlap).
      if (!(await this.deps.store.putIfAbsent(crmEventKey(connectorId, event.eventId), { at: this.deps.clock.now() }, { ttlMs: CRM_EVENT_TTL_MS }))) continue;
      const link = await this.deps.store.get<{ sessionId: string }>(crmRecordKey(connectorId, event.recordId));
      if (!link) {
        this.deps.logger.info({ connectorId, recordId: event.recordId, type: event.type }, 'CRM event for a record the service does not know; ignored');
        continue;
      }
      const s = await this.deps.store.get<StoredSession>(sessionKey(link.sessionId));
      if (!s) continue;
      try {
        if (event.type === 'status_changed') {
          // An echo of our own write, in the CRM's coarser vocabulary, changes nothing (no loop).
          if (!crmStatusIsNews(s.status, event.status, statusMap)) continue;
          // The CRM already holds this value: the sync job the change queues has nothing to write back.
          await this.deps.store.put(`crm-status:${connectorId}:${s.id}`, { value: statusMap[event.status] });
          await this.deps.applyStatus(s.id, event.status, 'crm');
          applied++;
        } else if (event.type === 'agent_reply') {
          if (this.deps.onAgentReply) {
            await this.deps.onAgentReply(s.id, event);
            applied++;
          }
        } else if (event.type === 'assignee_changed') {
          this.deps.logger.info({ sessionId: s.id, assignee: event.assigneeEmail }, 'CRM assignee change noted');
          applied++;
        }
      } catch (err) {
        this.deps.logger.warn({ sessionId: s.id, event: event.type, err: (err as Error).message }, 'CRM event not applied');
      }
    }
    return applied;
  }
}

/** A message without its body: who, when, which direction (comments off, R-CRM-2). */
function metadataLine(m: StoredMessage): string {
  const who = m.from ? (m.from.name ? `${m.from.name} <${m.from.address}>` : m.from.address) : 'unknown sender';
  return `${m.direction === 'inbound' ? 'Email from' : 'Email sent by'} ${who} — ${m.date ?? m.receivedAt}${m.subject ? ` — ${m.subject}` : ''}`;
}

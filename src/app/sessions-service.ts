// Sessions read side and manual changes: list with filters and cursors, detail with messages and
// interactions, raw download, manual status changes (SPEC §11c), and the status-timer sweep (R-SES-4/5).
import { AppError, conflict, notFound, validationError } from '../core/errors.js';
import { decodeCursor, encodeCursor, type Page } from '../core/paging.js';
import { CommitConflictError, type JobSpec, type BlobStore, type Clock, type IndexEntry, type Logger, type Store } from '../core/ports.js';
import type { Interaction, Session, SessionStatus } from '../core/session/model.js';
import {
  IDX_SESSIONS,
  IDX_SESSIONS_UNASSIGNED,
  idxSessionMessages,
  idxSessionsByAssignee,
  idxSessionsByCustomer,
  idxSessionsByQueue,
  idxSessionsByStatus,
  idxTimer,
  messageKey,
  saveSessionOps,
  sessionKey,
  type StoredSession,
} from '../core/session/store-layout.js';
import { TIMER_NAMES, timerCutoff } from '../core/session/timers.js';
import { transition, type SessionEffect, type SessionEvent } from '../core/session/transition.js';
import type { Settings } from '../config/settings.js';
import type { StoredMessage } from './ingest-message.js';
import { agentLoadOps, autoAssignIntentOps } from './assignment-load.js';

export interface SessionFilter {
  queue?: string;
  status?: SessionStatus;
  assignee?: string;
  unassigned?: boolean;
  customer?: string;
  q?: string;
}

export interface SessionSummary {
  id: string;
  status: SessionStatus;
  queueId: string | null;
  assigneeId: string | null;
  subject: string;
  customer: { address: string; name?: string };
  messageCount: number;
  imported: boolean;
  ticketId: string | null;
  linkedFrom: string | null;
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function summarize(s: Session): SessionSummary {
  return {
    id: s.id,
    status: s.status,
    queueId: s.queueId,
    assigneeId: s.assigneeId,
    subject: s.subject,
    customer: s.customer,
    messageCount: s.messageCount,
    imported: s.imported,
    ticketId: s.ticketId,
    linkedFrom: s.linkedFrom,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
  };
}

export interface SessionDetail extends SessionSummary {
  participants: { address: string; name?: string }[];
  statusChangedAt: string;
  lastActivityAt: string;
  messages: Omit<StoredMessage, 'rawKey' | 'sha256' | 'source' | 'headers' | 'sessionId'>[];
  interactions: (Omit<Interaction, 'at'> & { at: string })[];
}

/** Entries read per scan step, and the most a single list call scans before answering with a cursor. */
const SCAN_BATCH = 200;
const SCAN_CAP = 5000;
const MAX_MESSAGES = 1000;

export interface SessionsDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  logger: Logger;
  settings(): Promise<Settings>;
  onEffects?(session: Session, effects: SessionEffect[]): void;
  /** The original bytes from elsewhere (the archive) once the store's copy was purged by retention. */
  rawFallback?(message: StoredMessage): Promise<Uint8Array | undefined>;
}

export class SessionsService {
  constructor(private readonly deps: SessionsDeps) {}

  async list(filter: SessionFilter, limit: number, cursor?: string): Promise<Page<SessionSummary>> {
    let after: IndexEntry | undefined;
    if (cursor !== undefined) {
      after = decodeCursor(cursor);
      if (!after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    }
    // Read the most selective index; check the other criteria on the documents.
    const index = filter.assignee
      ? idxSessionsByAssignee(filter.assignee)
      : filter.unassigned
        ? IDX_SESSIONS_UNASSIGNED
        : filter.customer
          ? idxSessionsByCustomer(filter.customer)
          : filter.queue
            ? idxSessionsByQueue(filter.queue)
            : filter.status
              ? idxSessionsByStatus(filter.status)
              : IDX_SESSIONS;
    const q = filter.q?.toLowerCase();
    const matches = (s: StoredSession): boolean =>
      (!filter.queue || s.queueId === filter.queue) &&
      (!filter.status || s.status === filter.status) &&
      (!filter.assignee || s.assigneeId === filter.assignee) &&
      (!filter.unassigned || !s.assigneeId) &&
      (!filter.customer || s.customer.address === filter.customer.toLowerCase()) &&
      (!q || s.subject.toLowerCase().includes(q) || s.customer.address.includes(q) || (s.customer.name ?? '').toLowerCase().includes(q));
    const items: SessionSummary[] = [];
    let lastReturned: IndexEntry | undefined;
    let position = after;
    let scanned = 0;
    while (scanned < SCAN_CAP) {
      const entries = await this.deps.store.indexRange(index, { reverse: true, limit: SCAN_BATCH, ...(position ? { after: position } : {}) });
      const docs = await this.deps.store.getMany<StoredSession>(entries.map((e) => sessionKey(e.member)));
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as IndexEntry;
        const doc = docs[i];
        scanned++;
        position = entry;
        if (!doc || !matches(doc)) continue;
        // One match past a full page: there is more, and the next page starts after the last item.
        if (items.length === limit) return { items, nextCursor: lastReturned ? encodeCursor(lastReturned) : null };
        items.push(summarize(doc));
        lastReturned = entry;
      }
      if (entries.length < SCAN_BATCH) return { items, nextCursor: null };
    }
    // The scan cap stopped us mid-index: the client continues from the last entry scanned.
    const nextCursor = position ? encodeCursor(position) : null;
    return { items, nextCursor };
  }

  async getStored(id: string): Promise<StoredSession> {
    const s = await this.deps.store.get<StoredSession>(sessionKey(id));
    if (!s) throw notFound('session', id);
    return s;
  }

  async detail(id: string): Promise<SessionDetail> {
    const s = await this.getStored(id);
    const entries = await this.deps.store.indexRange(idxSessionMessages(id), { limit: MAX_MESSAGES });
    const docs = await this.deps.store.getMany<StoredMessage>(entries.map((e) => messageKey(e.member)));
    const messages = docs
      .filter((m): m is StoredMessage => !!m)
      .map(({ rawKey: _r, sha256: _h, source: _s, headers: _hd, sessionId: _sid, ...rest }) => rest);
    return {
      ...summarize(s),
      participants: s.participants,
      statusChangedAt: iso(s.statusChangedAt),
      lastActivityAt: iso(s.lastActivityAt),
      messages,
      interactions: s.interactions.map((i) => ({ ...i, at: iso(i.at) })),
    };
  }

  /** The original bytes of one message (`msgId` = the internal id). */
  async raw(sessionId: string, msgId: string): Promise<{ bytes: Uint8Array; filename: string }> {
    const m = await this.deps.store.get<StoredMessage>(messageKey(msgId));
    if (!m || m.sessionId !== sessionId) throw notFound('message', msgId);
    const bytes = (m.rawKey ? await this.deps.blobs.get(m.rawKey) : undefined) ?? (await this.deps.rawFallback?.(m));
    if (!bytes) throw new AppError('not_found', `the original bytes of message ${msgId} are no longer stored`);
    return { bytes, filename: `${msgId}.eml` };
  }

  /** Applies an event to a session with optimistic concurrency (bounded retries). */
  async apply(id: string, event: SessionEvent): Promise<StoredSession> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await this.getStored(id);
      const settings = await this.deps.settings();
      const result = transition(prev, event, { now: this.deps.clock.now(), timers: settings.timers });
      if (result.kind === 'illegal') throw conflict(result.message);
      if (result.kind === 'noop') return prev;
      if (result.kind === 'start_new_session') throw conflict(`session ${id} is closed past its reopen window (${result.reason})`);
      const { ops, stored } = saveSessionOps(prev, result.session);
      // Agents' active counts follow status/assignee changes in the same commit (R-ASG-3, assignment-load.ts).
      const load = await agentLoadOps(this.deps.store, prev, result.session);
      const intent = autoAssignIntentOps(result.session, result.effects, this.deps.clock.now());
      try {
        await this.deps.store.commit([...ops, ...load.ops, ...intent]);
        this.deps.onEffects?.(stored, result.effects);
        return stored;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`session ${id} changed concurrently; try again`);
  }

  /** Records an interaction that changes no status (e.g. a CRM agent reply), with the jobs it causes. */
  async note(id: string, interaction: Interaction, jobs: JobSpec[] = []): Promise<StoredSession> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await this.getStored(id);
      const next = { ...prev, updatedAt: this.deps.clock.now(), interactions: [...prev.interactions, interaction] };
      const { ops, stored } = saveSessionOps(prev, next);
      try {
        await this.deps.store.commit(ops, jobs);
        return stored;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`session ${id} changed concurrently; try again`);
  }

  /** POST /api/sessions/:id/status (SPEC §11c). */
  async setStatus(id: string, to: SessionStatus, actor: string): Promise<StoredSession> {
    return this.apply(id, { type: 'set_status', to, actor });
  }

  /**
   * The timer sweep (R-SES-4, R-SES-5): for each enabled timer, reads only the due part of its index
   * (`score <= now - days`), so the cost grows with what is due. Returns how many sessions moved.
   */
  async runTimers(maxPerTimer = 10_000): Promise<number> {
    const settings = await this.deps.settings();
    const now = this.deps.clock.now();
    let moved = 0;
    for (const timer of TIMER_NAMES) {
      const setting = settings.timers[timer];
      if (!setting.enabled) continue;
      const cutoff = timerCutoff(now, setting);
      let seen = 0;
      let after: IndexEntry | undefined;
      while (seen < maxPerTimer) {
        const due = await this.deps.store.indexRange(idxTimer(timer), { max: cutoff, limit: 200, ...(after ? { after } : {}) });
        if (due.length === 0) break;
        for (const entry of due) {
          seen++;
          try {
            const before = await this.deps.store.get<StoredSession>(sessionKey(entry.member));
            if (!before) {
              await this.deps.store.indexRemove(idxTimer(timer), entry.member);
              continue;
            }
            const after2 = await this.apply(entry.member, { type: 'timer', timer });
            if (after2.rev !== before.rev) moved++;
          } catch (err) {
            this.deps.logger.warn({ sessionId: entry.member, timer, err: (err as Error).message }, 'timer could not be applied; will retry next sweep');
          }
        }
        after = due[due.length - 1];
        if (due.length < 200) break;
      }
    }
    return moved;
  }
}

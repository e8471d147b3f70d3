// Ingest one fetched message (DESIGN "Data flow (inbound)"): parse → dedupe → thread → route →
// session transition → one atomic commit (message, Message-ID claim, session, indexes). Idempotent:
// a replay after a crash stores nothing twice (R-REL-1); bad mail is quarantined, never lost (R-REL-3).
import { AppError, notFound } from '../core/errors.js';
import { newSessionId } from '../core/ids.js';
import type { InboundMail, MailAddress } from '../core/mail/inbound.js';
import {
  CommitConflictError,
  type BlobStore,
  type Clock,
  type FetchedMessage,
  type Logger,
  type MailboxSink,
  type Store,
  type WriteOp,
} from '../core/ports.js';
import { routeInbound, type RoutingTables } from '../core/routing.js';
import type { Session } from '../core/session/model.js';
import {
  IDX_QUARANTINE,
  idxSessionMessages,
  idxSessionsByCustomer,
  messageIdKey,
  messageKey,
  quarantineKey,
  quarantineSourceKey,
  rawBlobKey,
  saveSessionOps,
  sessionKey,
  type StoredSession,
} from '../core/session/store-layout.js';
import { newInboundSession, transition, type SessionEffect } from '../core/session/transition.js';
import { decideThread, normalizeSubject, threadKeys, type ThreadMatch } from '../core/threading/match.js';
import type { Settings } from '../config/settings.js';

export type MessageFlag = 'new_participant' | 'duplicate_message_id' | 'imported' | 'no_message_id';

/** A message of a session as stored (bodies may be purged by retention later; headers stay). */
export interface StoredMessage {
  id: string;
  sessionId: string;
  direction: 'inbound' | 'outbound';
  /** RFC Message-ID (no brackets), or null when the mail had none. */
  messageId: string | null;
  from: MailAddress | null;
  to: MailAddress[];
  cc: MailAddress[];
  subject: string;
  /** Date header (ISO), or null. */
  date: string | null;
  /** When the service stored it (ISO). */
  receivedAt: string;
  /** IMAP INTERNALDATE (ISO): arrival in the mailbox. */
  arrivedAt: string | null;
  text: string;
  html: string | null;
  attachments: InboundMail['attachments'];
  headers: Record<string, string>;
  size: number;
  sha256: string;
  accountId: string;
  source: { uidValidity: string; uid: number } | null;
  rawKey: string | null;
  flags: MessageFlag[];
}

/** The claim on a Message-ID (or content hash): which session and message hold it. */
interface MessageIdClaim {
  sessionId: string;
  messageInternalId: string;
  /** Fingerprint of what the sender wrote (see contentFingerprint). */
  contentHash: string;
  rev: number;
}

/** What the sender wrote — sender, subject, date, bodies, attachments — without transport headers. */
async function contentFingerprint(mail: InboundMail): Promise<string> {
  return sha256Hex(
    JSON.stringify([mail.from?.address ?? '', mail.subject, mail.date, mail.text, mail.html ?? '', mail.attachments.map((a) => a.sha256)]),
  );
}

export type QuarantineReason = 'unparseable' | 'too_large' | 'no_header' | 'processing_error';

export interface QuarantineEntry {
  id: string;
  accountId: string;
  source: { uidValidity: string; uid: number };
  reason: QuarantineReason;
  detail: string;
  size: number;
  arrivedAt: string | null;
  quarantinedAt: string;
  rawKey: string | null;
  state: 'open' | 'released';
  releasedAt: string | null;
  sessionId: string | null;
  rev: number;
}

export interface IngestDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  logger: Logger;
  parse(raw: Uint8Array): Promise<InboundMail>;
  settings(): Promise<Settings>;
  routingTables(): Promise<RoutingTables>;
  /** Effects the later issues act on (auto-reply, auto-assignment, CRM); called after the commit. */
  onEffects?(session: Session, effects: SessionEffect[], message: StoredMessage): void;
  onOutcome?(outcome: 'stored' | 'duplicate' | 'quarantined', message: FetchedMessage): void;
  newSessionId?: () => string;
}

const MAX_ATTEMPTS = 25;

/** Too many concurrent changes in a row: not the message's fault, so the worker retries it later. */
export class IngestContentionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestContentionError';
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export class IngestService implements MailboxSink {
  constructor(private readonly deps: IngestDeps) {}

  async deliver(message: FetchedMessage): Promise<'stored' | 'duplicate' | 'quarantined'> {
    const outcome = await this.deliverInner(message);
    this.deps.onOutcome?.(outcome, message);
    return outcome;
  }

  private async deliverInner(message: FetchedMessage): Promise<'stored' | 'duplicate' | 'quarantined'> {
    if (message.tooLarge || message.raw.byteLength === 0) {
      return this.quarantine(message, 'too_large', `message of ${message.size} bytes is over the size limit; it was left in the mailbox`, false);
    }
    let mail: InboundMail;
    try {
      mail = await this.deps.parse(message.raw);
    } catch (err) {
      return this.quarantine(message, 'unparseable', (err as Error).message, true);
    }
    try {
      return await this.store(message, mail);
    } catch (err) {
      if (err instanceof AppError || err instanceof IngestContentionError || (err as Error).name === 'StoreUnavailableError') throw err;
      // A bug or an unexpected shape in this one message must not stall the mailbox (R-REL-3).
      this.deps.logger.error({ err: (err as Error).message, accountId: message.accountId, uid: message.uid }, 'ingest failed; quarantining');
      return this.quarantine(message, 'processing_error', (err as Error).message, true);
    }
  }

  /** Stores a parsed mail; retried on concurrent change (another message of the same thread). */
  private async store(message: FetchedMessage, mail: InboundMail): Promise<'stored' | 'duplicate'> {
    const contentHash = await contentFingerprint(mail);
    const identity = mail.messageId ?? `content:${contentHash}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const claim = await this.deps.store.get<MessageIdClaim>(messageIdKey(identity));
      let claimKey = messageIdKey(identity);
      const flags: MessageFlag[] = [];
      if (!mail.messageId) flags.push('no_message_id');
      if (message.imported) flags.push('imported');
      if (claim) {
        // Same Message-ID and same content (re-upload, second mailbox, replay): the same mail. Transport
        // headers may differ between copies, so the content fingerprint leaves them out. Another mail
        // that reuses the Message-ID (broken senders, bounce generators) is kept under its own key.
        if (claim.contentHash === contentHash || !mail.messageId) return 'duplicate';
        const distinct = messageIdKey(`${identity}#${contentHash.slice(0, 16)}`);
        if (await this.deps.store.get(distinct)) return 'duplicate';
        claimKey = distinct;
        flags.push('duplicate_message_id');
      }
      try {
        await this.commitNew(message, mail, identity, claimKey, flags, contentHash);
        return 'stored';
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        this.deps.logger.debug({ key: err.key, attempt }, 'concurrent change while ingesting; deciding again');
        await pause(Math.random() * Math.min(200, 5 * 2 ** attempt));
      }
    }
    throw new IngestContentionError(`message ${identity} kept conflicting with concurrent changes after ${MAX_ATTEMPTS} attempts`);
  }

  private async commitNew(message: FetchedMessage, mail: InboundMail, identity: string, claimKey: string, flags: MessageFlag[], contentHash: string): Promise<void> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const settings = await this.deps.settings();
    const match = await this.findThread(mail, settings, now);

    let prev: StoredSession | null = null;
    let session: Session;
    let effects: SessionEffect[];
    const from: MailAddress = mail.from ?? { address: '' };
    // The message's internal id is derived from its identity and session, so a replay rewrites the same keys.
    const build = async (sessionId: string) => `msg_${(await sha256Hex(`${claimKey}|${sessionId}`)).slice(0, 24)}`;

    let linkedFrom: string | null = null;
    if (match) {
      prev = (await store.get<StoredSession>(sessionKey(match.sessionId))) ?? null;
      if (!prev) throw new CommitConflictError('matched session vanished', sessionKey(match.sessionId));
      const result = transition(prev, { type: 'inbound', from, messageId: identity, knownSender: false }, { now, timers: settings.timers });
      if (result.kind === 'applied') {
        session = result.session;
        effects = result.effects;
        if (session.participants.length > prev.participants.length) flags.push('new_participant');
      } else if (result.kind === 'start_new_session') {
        linkedFrom = prev.id;
        prev = null;
        ({ session, effects } = await this.newSession(message, mail, now, identity, linkedFrom));
      } else {
        throw new Error(`inbound transition refused: ${result.kind}`);
      }
    } else {
      ({ session, effects } = await this.newSession(message, mail, now, identity, null));
    }
    if (message.imported) effects = effects.filter((e) => e.type !== 'auto_reply' && e.type !== 'auto_assign');

    const internalId = await build(session.id);
    const rawKey = rawBlobKey(internalId);
    // Raw bytes first (same key on replay): an orphan blob after a crash is harmless, a missing one is not.
    await this.deps.blobs.put(rawKey, message.raw, { contentType: 'message/rfc822' });

    const stored: StoredMessage = {
      id: internalId,
      sessionId: session.id,
      direction: 'inbound',
      messageId: mail.messageId,
      from: mail.from,
      to: mail.to,
      cc: mail.cc,
      subject: mail.subject,
      date: mail.date !== null ? new Date(mail.date).toISOString() : null,
      receivedAt: new Date(now).toISOString(),
      arrivedAt: message.internalDate !== null ? new Date(message.internalDate).toISOString() : null,
      text: mail.text,
      html: mail.html,
      attachments: mail.attachments,
      headers: mail.headers,
      size: mail.size,
      sha256: mail.sha256,
      accountId: message.accountId,
      source: { uidValidity: message.uidValidity, uid: message.uid },
      rawKey,
      flags,
    };
    const { ops: sessionOps } = saveSessionOps(prev, session);
    const claim: MessageIdClaim = { sessionId: session.id, messageInternalId: internalId, contentHash, rev: 1 };
    const ops: WriteOp[] = [
      { op: 'check', key: claimKey, rev: null },
      { op: 'put', key: claimKey, value: claim },
      { op: 'put', key: messageKey(internalId), value: stored },
      // Scored by arrival order within the session (messageCount after this message).
      { op: 'index', index: idxSessionMessages(session.id), member: internalId, score: session.messageCount },
      ...sessionOps,
    ];
    await this.deps.store.commit(ops);
    this.deps.onEffects?.(session, effects, stored);
  }

  private async newSession(message: FetchedMessage, mail: InboundMail, now: number, identity: string, linkedFrom: string | null) {
    const tables = await this.deps.routingTables();
    const route = routeInbound(
      {
        to: mail.to.map((a) => a.address),
        cc: mail.cc.map((a) => a.address),
        deliveredTo: mail.deliveredTo,
        mailboxAccountId: message.accountId,
      },
      tables,
    );
    const customer: MailAddress = mail.replyTo[0] ?? mail.from ?? { address: '' };
    const id = (this.deps.newSessionId ?? newSessionId)();
    const created = newInboundSession({
      id,
      queueId: route.queueId,
      subject: mail.subject,
      customer,
      messageId: identity,
      imported: message.imported,
      linkedFrom,
      now,
    });
    const session: Session = {
      ...created.session,
      interactions: [
        ...created.session.interactions,
        ...(linkedFrom ? [{ type: 'status_changed' as const, at: now, actor: 'system', data: { linkedFrom, reason: 'activity on a closed session past its reopen window' } }] : []),
      ],
    };
    return { session, effects: created.effects };
  }

  /** R-SES-2 lookups: every Message-ID of In-Reply-To/References, our ids, the subject token, the optional window. */
  private async findThread(mail: InboundMail, settings: Settings, now: number): Promise<ThreadMatch | null> {
    const keys = threadKeys({ messageId: mail.messageId, inReplyTo: mail.inReplyTo, references: mail.references, subject: mail.subject, from: mail.from?.address ?? '' });
    const ids = keys.messageIds.slice(0, 100);
    const claims = await this.deps.store.getMany<MessageIdClaim>(ids.map((m) => messageIdKey(m.id)));
    const sessionByMessageId = new Map<string, string>();
    ids.forEach((m, i) => {
      const c = claims[i];
      if (c) sessionByMessageId.set(m.id, c.sessionId);
    });
    const candidates = [...keys.ourSessionIds, ...(keys.subjectToken ? [keys.subjectToken] : [])];
    const existing = await this.deps.store.getMany<StoredSession>(candidates.map(sessionKey));
    const existingSessions = new Set(candidates.filter((_, i) => existing[i] !== undefined));
    let subjectWindowMatch: string | null = null;
    const windowMin = settings.threading.subjectWindowMinutes;
    if (windowMin > 0 && keys.sender && keys.normalizedSubject) {
      const recent = await this.deps.store.indexRange(idxSessionsByCustomer(keys.sender), { min: now - windowMin * 60_000, reverse: true, limit: 20 });
      const docs = await this.deps.store.getMany<StoredSession>(recent.map((e) => sessionKey(e.member)));
      subjectWindowMatch = docs.find((d) => d && normalizeSubject(d.subject) === keys.normalizedSubject)?.id ?? null;
    }
    return decideThread(keys, { sessionByMessageId, existingSessions, subjectWindowMatch });
  }

  private async quarantine(message: FetchedMessage, reason: QuarantineReason, detail: string, keepRaw: boolean): Promise<'quarantined'> {
    const { store, clock, logger } = this.deps;
    const sourceKey = quarantineSourceKey(message.accountId, message.uidValidity, message.uid);
    const existing = await store.get<{ id: string }>(sourceKey);
    if (existing) return 'quarantined';
    const id = `qua_${(await sha256Hex(sourceKey)).slice(0, 20)}`;
    const rawKey = keepRaw && message.raw.byteLength > 0 ? rawBlobKey(id) : null;
    if (rawKey) await this.deps.blobs.put(rawKey, message.raw, { contentType: 'message/rfc822' });
    const now = clock.now();
    const entry: QuarantineEntry = {
      id,
      accountId: message.accountId,
      source: { uidValidity: message.uidValidity, uid: message.uid },
      reason,
      detail: detail.slice(0, 1000),
      size: message.size || message.raw.byteLength,
      arrivedAt: message.internalDate !== null ? new Date(message.internalDate).toISOString() : null,
      quarantinedAt: new Date(now).toISOString(),
      rawKey,
      state: 'open',
      releasedAt: null,
      sessionId: null,
      rev: 1,
    };
    try {
      await store.commit([
        { op: 'check', key: sourceKey, rev: null },
        { op: 'put', key: sourceKey, value: { id, rev: 1 } },
        { op: 'put', key: quarantineKey(id), value: entry },
        { op: 'index', index: IDX_QUARANTINE, member: id, score: now },
      ]);
    } catch (err) {
      if (!(err instanceof CommitConflictError)) throw err;
    }
    logger.warn({ accountId: message.accountId, uid: message.uid, reason, detail: entry.detail }, 'message quarantined');
    return 'quarantined';
  }

  /** POST /api/quarantine/:id/retry: ingest the kept bytes again; on success the entry is released. */
  async retryQuarantined(id: string): Promise<QuarantineEntry> {
    const entry = await this.deps.store.get<QuarantineEntry>(quarantineKey(id));
    if (!entry) throw notFound('quarantine entry', id);
    if (entry.state === 'released') return entry;
    if (!entry.rawKey) throw new AppError('conflict', 'this message was not downloaded (over the size limit); raise the limit and it is fetched again from the mailbox');
    const raw = await this.deps.blobs.get(entry.rawKey);
    if (!raw) throw new AppError('conflict', 'the raw bytes of this entry are gone');
    const mail = await this.deps.parse(raw).catch((err: unknown) => {
      throw new AppError('conflict', `still unparseable: ${(err as Error).message}`);
    });
    const fetched: FetchedMessage = { accountId: entry.accountId, uidValidity: entry.source.uidValidity, uid: entry.source.uid, internalDate: entry.arrivedAt ? Date.parse(entry.arrivedAt) : null, size: entry.size, raw, imported: false };
    await this.store(fetched, mail);
    const claim = await this.deps.store.get<MessageIdClaim>(messageIdKey(mail.messageId ?? `content:${await contentFingerprint(mail)}`));
    const released: QuarantineEntry = { ...entry, state: 'released', releasedAt: new Date(this.deps.clock.now()).toISOString(), sessionId: claim?.sessionId ?? null, rev: entry.rev + 1 };
    await this.deps.store.commit([
      { op: 'check', key: quarantineKey(id), rev: entry.rev },
      { op: 'put', key: quarantineKey(id), value: released },
    ]);
    return released;
  }
}

// Ingest one fetched message (DESIGN "Data flow (inbound)"): parse → dedupe → thread → route →
// session transition → one atomic commit (message, Message-ID claim, session, indexes). Idempotent:
// a replay after a crash stores nothing twice (R-REL-1); bad mail is quarantined, never lost (R-REL-3).
import { AppError, notFound } from '../core/errors.js';
import { newSessionId } from '../core/ids.js';
import type { InboundMail, MailAddress } from '../core/mail/inbound.js';
import type { Delivery } from '../core/outbound/outgoing.js';
import {
  CommitConflictError,
  type BlobStore,
  type Clock,
  type FetchedMessage,
  type JobSpec,
  type IndexEntry,
  type IndexRangeOptions,
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
  retentionIndexOp,
  saveSessionOps,
  sessionKey,
  type StoredSession,
} from '../core/session/store-layout.js';
import { newInboundSession, transition, type SessionEffect } from '../core/session/transition.js';
import { decideThread, normalizeSubject, threadKeys, type ThreadKeys, type ThreadMatch } from '../core/threading/match.js';
import type { Settings } from '../config/settings.js';
import { agentLoadOps, autoAssignIntentOps } from './assignment-load.js';
import { messageWriteOps } from './message-writes.js';

/** What a delivery report says about our mail (see core/mail/bounce.ts). */
export interface BounceInfo {
  /** Our Message-IDs (no brackets) the report refers to. */
  ourMessageIds: string[];
  /** 5.x.x / failed: the mail will not arrive. A delay (4.x.x) is noted on the session only. */
  permanent: boolean;
  reason: string;
}

export type MessageFlag = 'new_participant' | 'duplicate_message_id' | 'imported' | 'no_message_id' | 'bounce';

/** What a stored message is: a customer's mail, an agent's reply, an auto-reply, or a bounce of one of ours. */
export type MessageKind = 'customer' | 'agent_reply' | 'auto_reply' | 'bounce';

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
  /** Absent on messages stored before outbound existed: `customer` when inbound. */
  kind?: MessageKind;
  /** Outbound: the agent who wrote it (null for auto-replies). */
  agentId?: string | null;
  /** Outbound: blind copies (envelope only, never in the headers). */
  bcc?: MailAddress[];
  /** Outbound: where the delivery stands (durable outbox). */
  delivery?: Delivery;
  /** A bounce: the outbound message it reports on. */
  bounceOf?: string;
  /** Revision (1 at creation; message-writes.ts checks it on every later change). */
  rev?: number;
}

/** A fetched, parsed mail as a stored message of a session (its kind set by the caller). */
function inboundMessage(message: FetchedMessage, mail: InboundMail, id: string, sessionId: string, rawKey: string, flags: MessageFlag[], now: number): StoredMessage {
  return {
    id,
    sessionId,
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
    rev: 1,
  };
}

/** The claim on a Message-ID (or content hash): which session and message hold it. */
export interface MessageIdClaim {
  sessionId: string;
  messageInternalId: string;
  /** Fingerprint of what the sender wrote (see contentFingerprint); `outbound` for mail we sent. */
  contentHash: string;
  /** Mail we sent: a copy reaching one of our mailboxes (Cc to ourselves, a list) is never a new message. */
  outbound?: boolean;
  rev: number;
}

/** What the sender wrote — sender, subject, date, bodies, attachments — without transport headers. */
async function contentFingerprint(mail: InboundMail, hash: (text: string) => string | Promise<string> = sha256Hex): Promise<string> {
  return hash(
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
  /**
   * The store writes of a blob (e.g. `StoreBlobStore.opsFor`), when the blob store lives in the same Store: the raw
   * bytes are then written in the message's own commit (one durable write per message). Without it, `blobs.put`
   * writes them before the commit.
   */
  blobOps?: (key: string, data: Uint8Array, meta: { contentType?: string }) => WriteOp[];
  /**
   * Deliveries waiting at the same time are committed together: at most `maxMessages` (default 32; 1 commits each
   * alone) and `maxBytes` of raw bytes (default 4 MiB; a larger message commits alone).
   */
  group?: { maxMessages?: number; maxBytes?: number };
  /** Durable jobs a session change causes (CRM record policies), committed with the change. */
  jobsFor?(change: {
    prev: Session | null;
    next: Session;
    message: { internalId: string; direction: 'inbound'; kind: 'customer' };
    /** What the transition asks for (auto-reply triggers…), with the mail and its arrival for the loop guard. */
    effects: SessionEffect[];
    mail: InboundMail;
    arrival: { internalDate: number | null; imported: boolean; now: number };
  }): Promise<JobSpec[]>;
  /** Further writes and durable jobs for each stored message (its archive copy), committed with it. */
  messageWrites?(messageInternalId: string, now: number): { ops: WriteOp[]; jobs: JobSpec[] };
  /** Delivery reports (DSNs) for mail we sent: how to read one, and the CRM jobs a permanent failure causes. */
  bounces?: {
    parse(raw: Uint8Array, mail: InboundMail): BounceInfo | null;
    jobs(sessionId: string, outboundInternalId: string, reason: string): Promise<JobSpec[]>;
  };
  /** SHA-256 of a UTF-8 string as lowercase hex; default WebCrypto (async, off the main thread: slower per call). */
  sha256Hex?: (text: string) => string | Promise<string>;
}

const MAX_ATTEMPTS = 25;

/** Too many concurrent changes in a row: not the message's fault, so the worker retries it later. */
export class IngestContentionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestContentionError';
  }
}

/** Not the message's fault (store down, contention, a refusal): the caller retries later; never quarantined. */
function isRetryable(err: unknown): boolean {
  return err instanceof AppError || err instanceof IngestContentionError || (err as Error | null)?.name === 'StoreUnavailableError';
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

type Outcome = 'stored' | 'duplicate' | 'quarantined';

/** What the ingest of one message decided: its outcome, the writes that make it durable, what to run once they are. */
interface Decision {
  outcome: Outcome;
  ops: WriteOp[];
  /** Durable jobs (CRM writes…) committed with the ops (same transaction when embedded). */
  jobs?: JobSpec[];
  /** After the commit, in delivery order (effects callback, log line). */
  after?: () => void;
  /** Raw bytes the ops carry (bounds a group). */
  bytes: number;
}

/** The reads a decision makes: the store itself, or the store as a group's uncommitted writes leave it. */
interface Reader {
  get<T>(key: string): Promise<T | undefined>;
  getMany<T>(keys: string[]): Promise<(T | undefined)[]>;
  indexRange(index: string, opts: IndexRangeOptions): Promise<IndexEntry[]>;
}

interface DecisionContext {
  r: Reader;
  settings(): Promise<Settings>;
}

/** A group's uncommitted writes cannot answer this read (an index the group changed): commit the group first. */
class GroupBarrier extends Error {
  constructor(index: string) {
    super(`index ${index} has uncommitted changes`);
    this.name = 'GroupBarrier';
  }
}

/** A delivery in the ordered queue. */
interface Waiting {
  message: FetchedMessage;
  resolve(outcome: Outcome): void;
  reject(err: unknown): void;
  /** The parse, kept when the message is decided again (alone, after its group could not commit). */
  parsed?: Promise<InboundMail>;
}

/**
 * Decisions waiting for one commit. Later decisions of the group read the documents its earlier ones wrote (as the
 * store would return them after the commit); an index read on an index the group changed asks for a commit first.
 */
class PendingGroup implements Reader {
  readonly ops: WriteOp[] = [];
  readonly jobs: JobSpec[] = [];
  readonly members: { waiting: Waiting; decision: Decision }[] = [];
  bytes = 0;
  private settingsRead: Promise<Settings> | undefined;
  private readonly docs = new Map<string, { value: unknown }>();
  private readonly indexes = new Set<string>();

  constructor(private readonly store: Store) {}

  /** Settings are read once per group (the group spans milliseconds). */
  settings(read: () => Promise<Settings>): Promise<Settings> {
    if (!this.settingsRead) {
      const p = read();
      this.settingsRead = p;
      p.catch(() => {
        if (this.settingsRead === p) this.settingsRead = undefined;
      });
    }
    return this.settingsRead;
  }

  add(waiting: Waiting, decision: Decision): void {
    const writtenBefore = new Set(this.docs.keys());
    for (const op of decision.ops) {
      // The decision read this document from the group's own earlier write: its check holds by construction, and
      // the group's first check on the key (against the store) guards the whole chain.
      if (op.op === 'check' && writtenBefore.has(op.key)) continue;
      this.ops.push(op);
      if (op.op === 'put') this.docs.set(op.key, { value: op.value });
      else if (op.op === 'del') this.docs.set(op.key, { value: undefined });
      else if (op.op === 'index' || op.op === 'unindex') this.indexes.add(op.index);
    }
    if (decision.jobs) this.jobs.push(...decision.jobs);
    this.members.push({ waiting, decision });
    this.bytes += decision.bytes;
  }

  /** A copy as the store would return it (JSON), so a decision sees exactly what it would see after the commit. */
  private pending<T>(key: string): { value: T | undefined } | undefined {
    const d = this.docs.get(key);
    if (!d) return undefined;
    return { value: d.value === undefined ? undefined : (JSON.parse(JSON.stringify(d.value)) as T) };
  }

  async get<T>(key: string): Promise<T | undefined> {
    const d = this.pending<T>(key);
    return d ? d.value : this.store.get<T>(key);
  }

  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    const missing = keys.filter((k) => !this.docs.has(k));
    const read = missing.length > 0 ? await this.store.getMany<T>(missing) : [];
    const fromStore = new Map(missing.map((k, i) => [k, read[i]]));
    return keys.map((k) => {
      const d = this.pending<T>(k);
      return d ? d.value : fromStore.get(k);
    });
  }

  async indexRange(index: string, opts: IndexRangeOptions): Promise<IndexEntry[]> {
    if (this.indexes.has(index)) throw new GroupBarrier(index);
    return this.store.indexRange(index, opts);
  }
}

/** Most deliveries committed together, and most raw bytes in one group commit (a larger message commits alone). */
const DEFAULT_GROUP = { maxMessages: 32, maxBytes: 4 * 1024 * 1024 };

export class IngestService implements MailboxSink {
  private readonly direct: DecisionContext;
  private readonly hash: (text: string) => string | Promise<string>;
  private readonly maxGroupMessages: number;
  private readonly maxGroupBytes: number;
  /** Deliveries not decided yet, in call order. */
  private readonly waiting: Waiting[] = [];
  private group: PendingGroup | null = null;
  private pumping = false;

  constructor(private readonly deps: IngestDeps) {
    this.direct = { r: deps.store, settings: () => deps.settings() };
    this.hash = deps.sha256Hex ?? sha256Hex;
    this.maxGroupMessages = Math.max(1, Math.floor(deps.group?.maxMessages ?? DEFAULT_GROUP.maxMessages));
    this.maxGroupBytes = Math.max(0, deps.group?.maxBytes ?? DEFAULT_GROUP.maxBytes);
  }

  /**
   * Stores one message (MailboxSink). Concurrent calls are decided one at a time in call order, each seeing the ones
   * before it, and those waiting at the same time are committed together (one durable write for the group); every
   * call resolves only after the commit holding its effects. When one fails, the later waiting calls of the same
   * account are rejected unstored, so a mailbox's messages are never stored out of order.
   */
  deliver(message: FetchedMessage): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.waiting.push({ message, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        const next = this.waiting.shift();
        if (next) {
          await this.take(next);
          const g = this.group;
          if (g && (this.waiting.length === 0 || g.members.length >= this.maxGroupMessages || g.bytes >= this.maxGroupBytes)) await this.flushGroup();
        } else if (this.group && this.group.members.length > 0) {
          await this.flushGroup();
        } else {
          break;
        }
      }
    } catch (err) {
      // Not expected (every step settles its own deliveries); never leave a caller waiting.
      this.deps.logger.error({ err: (err as Error).message }, 'ingest queue failed');
      for (const m of this.group?.members ?? []) m.waiting.reject(err);
      this.group = null;
      for (const w of this.waiting.splice(0)) w.reject(err);
    } finally {
      this.pumping = false;
    }
  }

  /** Decides one delivery into the current group; anything unusual is handled alone, exactly as without grouping. */
  private async take(w: Waiting): Promise<void> {
    // A message whose bytes would take the group over its bound starts a new one.
    if (this.group && this.group.members.length > 0 && this.group.bytes + w.message.raw.byteLength > this.maxGroupBytes) await this.flushGroup();
    const group = (this.group ??= new PendingGroup(this.deps.store));
    let decision: Decision;
    try {
      decision = await this.decide(w.message, { r: group, settings: () => group.settings(this.deps.settings) }, () => this.parseOnce(w));
    } catch {
      // A barrier, a conflict, an unavailable store...: commit what the group holds, then this message alone with
      // its retries (or its error). It stays first in line meanwhile: if an earlier message of its mailbox fails in
      // that commit, it is rejected with the others.
      this.waiting.unshift(w);
      await this.flushGroup();
      const at = this.waiting.indexOf(w);
      if (at < 0) return;
      this.waiting.splice(at, 1);
      await this.alone(w);
      return;
    }
    group.add(w, decision);
  }

  private parseOnce(w: Waiting): Promise<InboundMail> {
    w.parsed ??= this.deps.parse(w.message.raw);
    return w.parsed;
  }

  /** Commits the current group, then settles its deliveries in order. If it cannot commit, each is done alone. */
  private async flushGroup(): Promise<void> {
    const group = this.group;
    this.group = null;
    if (!group || group.members.length === 0) return;
    if (group.ops.length > 0) {
      try {
        await this.deps.store.commit(group.ops, group.jobs);
      } catch (err) {
        // Nothing of the group was written: decide and commit each message alone, in order (a conflict retries, a bad
        // message is quarantined, an unavailable store fails it and the later ones of its mailbox).
        if (group.members.length > 1) this.deps.logger.debug({ err: (err as Error).message, messages: group.members.length }, 'group commit failed; ingesting its messages one by one');
        const failed = new Set<string>();
        for (const { waiting } of group.members) {
          if (failed.has(waiting.message.accountId)) waiting.reject(new Error(`not ingested: an earlier message of account ${waiting.message.accountId} failed`));
          else if (!(await this.alone(waiting))) failed.add(waiting.message.accountId);
        }
        return;
      }
    }
    for (const { waiting, decision } of group.members) {
      this.runAfter(decision);
      this.deps.onOutcome?.(decision.outcome, waiting.message);
      waiting.resolve(decision.outcome);
    }
  }

  /** One delivery decided and committed on its own (the path without grouping). False when it failed. */
  private async alone(w: Waiting): Promise<boolean> {
    try {
      const outcome = await this.deliverInner(w.message, () => this.parseOnce(w));
      this.deps.onOutcome?.(outcome, w.message);
      w.resolve(outcome);
      return true;
    } catch (err) {
      w.reject(err);
      // Later messages of the same mailbox wait for this one: they are not stored before it (the worker retries).
      const account = w.message.accountId;
      for (let i = 0; i < this.waiting.length; ) {
        const later = this.waiting[i] as Waiting;
        if (later.message.accountId !== account) i++;
        else {
          this.waiting.splice(i, 1);
          later.reject(new Error(`not ingested: an earlier message of account ${account} (UID ${w.message.uid}) failed`));
        }
      }
      return false;
    }
  }

  private runAfter(decision: Decision): void {
    try {
      decision.after?.();
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'after-commit callback failed');
    }
  }

  /** Decides and commits one message on its own, retrying on concurrent change. */
  private async deliverInner(message: FetchedMessage, parse?: () => Promise<InboundMail>): Promise<Outcome> {
    let parsed: Promise<InboundMail> | undefined;
    const parseOnce = parse ?? (() => (parsed ??= this.deps.parse(message.raw)));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        const decision = await this.decide(message, this.direct, parseOnce);
        if (decision.ops.length > 0) {
          try {
            await this.deps.store.commit(decision.ops, decision.jobs);
          } catch (err) {
            if (err instanceof CommitConflictError || decision.outcome === 'quarantined' || isRetryable(err)) throw err;
            // A write this message's content makes impossible must not stall the mailbox (R-REL-3).
            this.deps.logger.error({ err: (err as Error).message, accountId: message.accountId, uid: message.uid }, 'ingest failed; quarantining');
            return await this.commitAlone(await this.decideQuarantine(message, 'processing_error', (err as Error).message, true, this.direct));
          }
        }
        this.runAfter(decision);
        return decision.outcome;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        // Another writer changed a document this decision read (or quarantined the same message): decide again.
        this.deps.logger.debug({ key: err.key, attempt }, 'concurrent change while ingesting; deciding again');
        await pause(Math.random() * Math.min(200, 5 * 2 ** attempt));
      }
    }
    throw new IngestContentionError(`message ${message.accountId}:${message.uid} kept conflicting with concurrent changes after ${MAX_ATTEMPTS} attempts`);
  }

  /** Commits a quarantine decision (a conflict means it is already quarantined). */
  private async commitAlone(decision: Decision): Promise<Outcome> {
    if (decision.ops.length > 0) {
      try {
        await this.deps.store.commit(decision.ops);
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        return decision.outcome;
      }
    }
    this.runAfter(decision);
    return decision.outcome;
  }

  /** Parse → dedupe → thread → route → transition, or quarantine: the writes of one message, not committed yet. */
  private async decide(message: FetchedMessage, ctx: DecisionContext, parse: () => Promise<InboundMail>): Promise<Decision> {
    if (message.tooLarge || message.raw.byteLength === 0) {
      return this.decideQuarantine(message, 'too_large', `message of ${message.size} bytes is over the size limit; it was left in the mailbox`, false, ctx);
    }
    let mail: InboundMail;
    try {
      mail = await parse();
    } catch (err) {
      return this.decideQuarantine(message, 'unparseable', (err as Error).message, true, ctx);
    }
    try {
      return await this.decideStore(message, mail, ctx);
    } catch (err) {
      if (isRetryable(err) || err instanceof CommitConflictError || err instanceof GroupBarrier) throw err;
      // A bug or an unexpected shape in this one message must not stall the mailbox (R-REL-3).
      this.deps.logger.error({ err: (err as Error).message, accountId: message.accountId, uid: message.uid }, 'ingest failed; quarantining');
      return this.decideQuarantine(message, 'processing_error', (err as Error).message, true, ctx);
    }
  }

  /** Stores a parsed mail on its own (quarantine retry); retried on concurrent change. */
  private async store(message: FetchedMessage, mail: InboundMail): Promise<'stored' | 'duplicate'> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        const decision = await this.decideStore(message, mail, this.direct);
        if (decision.ops.length > 0) await this.deps.store.commit(decision.ops, decision.jobs);
        this.runAfter(decision);
        return decision.outcome === 'stored' ? 'stored' : 'duplicate';
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        this.deps.logger.debug({ key: err.key, attempt }, 'concurrent change while ingesting; deciding again');
        await pause(Math.random() * Math.min(200, 5 * 2 ** attempt));
      }
    }
    throw new IngestContentionError(`message ${mail.messageId ?? '(no Message-ID)'} kept conflicting with concurrent changes after ${MAX_ATTEMPTS} attempts`);
  }

  private async decideStore(message: FetchedMessage, mail: InboundMail, ctx: DecisionContext): Promise<Decision> {
    const contentHash = await contentFingerprint(mail, this.hash);
    const identity = mail.messageId ?? `content:${contentHash}`;
    const keys = threadKeys({ messageId: mail.messageId, inReplyTo: mail.inReplyTo, references: mail.references, subject: mail.subject, from: mail.from?.address ?? '' });
    const threadIds = keys.messageIds.slice(0, 100);
    // The claim of this message and those of the messages it refers to, in one read.
    const [claim, ...threadClaims] = await ctx.r.getMany<MessageIdClaim>([messageIdKey(identity), ...threadIds.map((m) => messageIdKey(m.id))]);
    let claimKey = messageIdKey(identity);
    const flags: MessageFlag[] = [];
    if (!mail.messageId) flags.push('no_message_id');
    if (message.imported) flags.push('imported');
    if (claim) {
      // Same Message-ID and same content (re-upload, second mailbox, replay): the same mail. Transport
      // headers may differ between copies, so the content fingerprint leaves them out. Another mail
      // that reuses the Message-ID (broken senders, bounce generators) is kept under its own key.
      if (claim.outbound || claim.contentHash === contentHash || !mail.messageId) return { outcome: 'duplicate', ops: [], bytes: 0 };
      const distinct = messageIdKey(`${identity}#${contentHash.slice(0, 16)}`);
      if (await ctx.r.get(distinct)) return { outcome: 'duplicate', ops: [], bytes: 0 };
      claimKey = distinct;
      flags.push('duplicate_message_id');
    }
    const settings = await ctx.settings();
    const now = this.deps.clock.now();
    // A delivery report for mail we sent is filed with that mail (issue 9b): no session, no auto-reply.
    const bounce = this.deps.bounces?.parse(message.raw, mail);
    if (bounce) {
      const decided = await this.decideBounce(message, mail, bounce, identity, claimKey, flags, contentHash, now, ctx.r);
      if (decided) return decided;
    }
    const match = await this.findThread(keys, threadIds, threadClaims, settings, now, ctx.r);
    return this.decideNew(message, mail, identity, claimKey, flags, contentHash, settings, now, match, ctx.r);
  }

  private async decideNew(
    message: FetchedMessage,
    mail: InboundMail,
    identity: string,
    claimKey: string,
    flags: MessageFlag[],
    contentHash: string,
    settings: Settings,
    now: number,
    match: ThreadMatch | null,
    r: Reader,
  ): Promise<Decision> {
    let prev: StoredSession | null = null;
    let session: Session;
    let effects: SessionEffect[];
    const from: MailAddress = mail.from ?? { address: '' };
    // The message's internal id is derived from its identity and session, so a replay rewrites the same keys.
    const build = async (sessionId: string) => `msg_${(await this.hash(`${claimKey}|${sessionId}`)).slice(0, 24)}`;

    let linkedFrom: string | null = null;
    if (match) {
      prev = (await r.get<StoredSession>(sessionKey(match.sessionId))) ?? null;
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
    // Raw bytes in the same commit when the blob store allows it; otherwise first (same key on replay): an orphan
    // blob after a crash is harmless, a missing one is not.
    const rawOps = await this.rawBytes(rawKey, message.raw);

    const stored: StoredMessage = { ...inboundMessage(message, mail, internalId, session.id, rawKey, flags, now), kind: 'customer' };
    const { ops: sessionOps } = saveSessionOps(prev, session);
    // Assignment bookkeeping (assignment-load.ts): assignees' active counts + durable auto-assign intent (R-ASG-2/3).
    const assignOps = [...(await agentLoadOps(r, prev, session)).ops, ...autoAssignIntentOps(session, effects, now)];
    const claim: MessageIdClaim = { sessionId: session.id, messageInternalId: internalId, contentHash, rev: 1 };
    const ops: WriteOp[] = [
      ...rawOps,
      { op: 'check', key: claimKey, rev: null },
      { op: 'put', key: claimKey, value: claim },
      { op: 'put', key: messageKey(internalId), value: stored },
      // Scored by arrival order within the session (messageCount after this message).
      { op: 'index', index: idxSessionMessages(session.id), member: internalId, score: session.messageCount },
      retentionIndexOp(internalId, now),
      ...sessionOps,
      ...assignOps,
    ];
    const onEffects = this.deps.onEffects;
    const jobs = this.deps.jobsFor
      ? await this.deps.jobsFor({
          prev,
          next: session,
          message: { internalId, direction: 'inbound', kind: 'customer' },
          effects,
          mail,
          arrival: { internalDate: message.internalDate, imported: message.imported, now },
        })
      : [];
    const extra = this.deps.messageWrites?.(internalId, now);
    if (extra) {
      ops.push(...extra.ops);
      jobs.push(...extra.jobs);
    }
    return {
      outcome: 'stored',
      ops,
      jobs,
      bytes: rawOps.length > 0 ? message.raw.byteLength : 0,
      ...(onEffects ? { after: () => onEffects(session, effects, stored) } : {}),
    };
  }

  /**
   * Files a bounce of one of our outbound messages: stored as a `bounce` message of that session, the outbound
   * message marked bounced (permanent failures), a `delivery_failed` interaction, the CRM told. Null when the report
   * names no message we sent (it is then ingested as ordinary mail, and the loop guard keeps it from an auto-reply).
   */
  private async decideBounce(
    message: FetchedMessage,
    mail: InboundMail,
    bounce: BounceInfo,
    identity: string,
    claimKey: string,
    flags: MessageFlag[],
    contentHash: string,
    now: number,
    r: Reader,
  ): Promise<Decision | null> {
    const ids = bounce.ourMessageIds.slice(0, 20);
    if (ids.length === 0) return null;
    const claims = await r.getMany<MessageIdClaim>(ids.map(messageIdKey));
    const hit = claims.find((c): c is MessageIdClaim => !!c && c.outbound === true);
    if (!hit) return null;
    const [prev, original] = await Promise.all([r.get<StoredSession>(sessionKey(hit.sessionId)), r.get<StoredMessage>(messageKey(hit.messageInternalId))]);
    if (!prev || !original) return null;
    const internalId = `msg_${(await this.hash(`${claimKey}|${prev.id}`)).slice(0, 24)}`;
    const rawKey = rawBlobKey(internalId);
    const rawOps = await this.rawBytes(rawKey, message.raw);
    const outcome = bounce.permanent ? 'bounced' : 'delayed';
    const reason = bounce.reason.slice(0, 500);
    const next: Session = {
      ...prev,
      updatedAt: now,
      messageCount: prev.messageCount + 1,
      interactions: [
        ...prev.interactions,
        { type: 'delivery_failed', at: now, actor: 'system', data: { messageId: original.messageId, internalId: original.id, outcome, reason, report: internalId } },
      ],
    };
    const stored: StoredMessage = { ...inboundMessage(message, mail, internalId, prev.id, rawKey, [...flags, 'bounce'], now), kind: 'bounce', bounceOf: original.id };
    const ops: WriteOp[] = [
      ...rawOps,
      { op: 'check', key: claimKey, rev: null },
      { op: 'put', key: claimKey, value: { sessionId: prev.id, messageInternalId: internalId, contentHash, rev: 1 } satisfies MessageIdClaim },
      { op: 'put', key: messageKey(internalId), value: stored },
      { op: 'index', index: idxSessionMessages(prev.id), member: internalId, score: next.messageCount },
      retentionIndexOp(internalId, now),
      ...saveSessionOps(prev, next).ops,
    ];
    if (bounce.permanent && original.delivery && original.delivery.state !== 'bounced') {
      // Revision-checked: a send, archive or Sent-folder write in between makes the group decide again.
      ops.push(...messageWriteOps(original, { ...original, delivery: { ...original.delivery, state: 'bounced', failedAt: new Date(now).toISOString(), lastError: reason } }));
    }
    const extra = this.deps.messageWrites?.(internalId, now);
    if (extra) ops.push(...extra.ops);
    const jobs = [...(bounce.permanent && this.deps.bounces ? await this.deps.bounces.jobs(prev.id, original.id, reason) : []), ...(extra?.jobs ?? [])];
    const { logger } = this.deps;
    return {
      outcome: 'stored',
      ops,
      jobs,
      bytes: rawOps.length > 0 ? message.raw.byteLength : 0,
      after: () => logger.warn({ sessionId: prev.id, messageId: original.messageId, outcome, reason, identity }, 'delivery report for our mail'),
    };
  }

  /** The raw bytes' writes for the caller's commit, or [] after writing them through the blob store. */
  private async rawBytes(key: string, raw: Uint8Array): Promise<WriteOp[]> {
    const meta = { contentType: 'message/rfc822' };
    if (this.deps.blobOps) return this.deps.blobOps(key, raw, meta);
    await this.deps.blobs.put(key, raw, meta);
    return [];
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

  /** R-SES-2 lookups: every Message-ID of In-Reply-To/References (claims read by the caller), our ids, the subject token, the optional window. */
  private async findThread(
    keys: ThreadKeys,
    ids: ThreadKeys['messageIds'],
    claims: (MessageIdClaim | undefined)[],
    settings: Settings,
    now: number,
    r: Reader,
  ): Promise<ThreadMatch | null> {
    const sessionByMessageId = new Map<string, string>();
    ids.forEach((m, i) => {
      const c = claims[i];
      if (c) sessionByMessageId.set(m.id, c.sessionId);
    });
    const candidates = [...keys.ourSessionIds, ...(keys.subjectToken ? [keys.subjectToken] : [])];
    const existing = candidates.length > 0 ? await r.getMany<StoredSession>(candidates.map(sessionKey)) : [];
    const existingSessions = new Set(candidates.filter((_, i) => existing[i] !== undefined));
    let subjectWindowMatch: string | null = null;
    const windowMin = settings.threading.subjectWindowMinutes;
    if (windowMin > 0 && keys.sender && keys.normalizedSubject) {
      const recent = await r.indexRange(idxSessionsByCustomer(keys.sender), { min: now - windowMin * 60_000, reverse: true, limit: 20 });
      const docs = await r.getMany<StoredSession>(recent.map((e) => sessionKey(e.member)));
      subjectWindowMatch = docs.find((d) => d && normalizeSubject(d.subject) === keys.normalizedSubject)?.id ?? null;
    }
    return decideThread(keys, { sessionByMessageId, existingSessions, subjectWindowMatch });
  }

  private async decideQuarantine(message: FetchedMessage, reason: QuarantineReason, detail: string, keepRaw: boolean, ctx: DecisionContext): Promise<Decision> {
    const { clock, logger } = this.deps;
    const sourceKey = quarantineSourceKey(message.accountId, message.uidValidity, message.uid);
    const existing = await ctx.r.get<{ id: string }>(sourceKey);
    if (existing) return { outcome: 'quarantined', ops: [], bytes: 0 };
    const id = `qua_${(await this.hash(sourceKey)).slice(0, 20)}`;
    const rawKey = keepRaw && message.raw.byteLength > 0 ? rawBlobKey(id) : null;
    const rawOps = rawKey ? await this.rawBytes(rawKey, message.raw) : [];
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
    return {
      outcome: 'quarantined',
      ops: [
        ...rawOps,
        { op: 'check', key: sourceKey, rev: null },
        { op: 'put', key: sourceKey, value: { id, rev: 1 } },
        { op: 'put', key: quarantineKey(id), value: entry },
        { op: 'index', index: IDX_QUARANTINE, member: id, score: now },
      ],
      bytes: rawOps.length > 0 ? message.raw.byteLength : 0,
      after: () => logger.warn({ accountId: message.accountId, uid: message.uid, reason, detail: entry.detail }, 'message quarantined'),
    };
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
    const claim = await this.deps.store.get<MessageIdClaim>(messageIdKey(mail.messageId ?? `content:${await contentFingerprint(mail, this.hash)}`));
    const released: QuarantineEntry = { ...entry, state: 'released', releasedAt: new Date(this.deps.clock.now()).toISOString(), sessionId: claim?.sessionId ?? null, rev: entry.rev + 1 };
    await this.deps.store.commit([
      { op: 'check', key: quarantineKey(id), rev: entry.rev },
      { op: 'put', key: quarantineKey(id), value: released },
    ]);
    return released;
  }
}

// Outbound mail (R-AGT-2..4, R-GLB-2/3, R-SIG-1..4, R-ARP-1..6, R-ACC-3): agent replies, new outbound sessions,
// auto-replies and CRM replies share one path. A mail is composed once when it is accepted, its exact bytes and
// an `outbound.send` job are committed with the session change (durable outbox), and the job sends those bytes:
// a restart between accept and send sends it once, a failure is recorded on the message and the session.
import { AppError, conflict, notFound, validationError, type FieldError } from '../core/errors.js';
import { newId, newSessionId } from '../core/ids.js';
import type { Account } from '../core/account.js';
import type { Agent } from '../core/agent.js';
import type { CrmChange } from '../core/crm-policy.js';
import type { MailAddress } from '../core/mail/inbound.js';
import { autoReplySubject, headerUnsafe, replySubject, threadingHeaders } from '../core/outbound/compose.js';
import { envelopeOf, queuedDelivery, validAddress, type Delivery, type OutgoingAttachment, type OutgoingMail } from '../core/outbound/outgoing.js';
import { checkAttachments, type CandidateFile } from '../core/policies/attachments.js';
import { AUTO_REPLY_HEADERS, DEFAULT_RATE_LIMIT, rateKey, shouldAutoReply, withinRate, type RateLimitPolicy } from '../core/policies/loop-guard.js';
import type { InboundMail } from '../core/mail/inbound.js';
import {
  CommitConflictError,
  PermanentJobError,
  RetryLaterError,
  type BlobStore,
  type Clock,
  type JobQueue,
  type JobRecord,
  type JobSpec,
  type Logger,
  type Store,
  type WriteOp,
} from '../core/ports.js';
import type { Interaction, Session } from '../core/session/model.js';
import { idxSessionMessages, messageIdKey, messageKey, rawBlobKey, retentionIndexOp, saveSessionOps, sessionKey, type StoredSession } from '../core/session/store-layout.js';
import { newOutboundSession, transition, type SessionEffect } from '../core/session/transition.js';
import { autoReplyValues, escapeHtml, firstName, renderTags } from '../core/templates/tags.js';
import { makeMessageId, normalizeMessageId } from '../core/threading/match.js';
import type { Settings } from '../config/settings.js';
import { agentLoadOps, autoAssignIntentOps } from './assignment-load.js';
import type { MessageIdClaim, StoredMessage } from './ingest-message.js';
import type { Queue } from './queues-service.js';
import type { AccountForUse } from './accounts-service.js';
import type { CrmEvent } from '../core/crm.js';
import { patchMessage } from './message-writes.js';

/** Rich-HTML helpers (adapter): sanitizing, data: images → CID parts, text alternative. */
export interface RichHtml {
  sanitize(html: string): string;
  inlineImages(
    html: string,
    opts: { maxImageBytes: number; maxImages: number; maxTotalBytes: number; cidDomain: string; imageLabel?: string },
  ): { html: string; images: { cid: string; filename: string; contentType: string; content: Uint8Array }[] } | { error: { index: number; message: string } };
  toText(html: string): string;
}

export interface SmtpAccount {
  id: string;
  address: string;
  smtp: Account['smtp'];
  username: string;
  password: string;
  displayName?: string;
}

/** The mail adapters the outbox drives. */
export interface OutboundMailPort {
  /** RFC 5322 bytes (Bcc left out); throws for anything that could inject a header. */
  compose(mail: OutgoingMail, date: Date): Promise<Uint8Array>;
  sendRaw(account: SmtpAccount, envelope: { to: string[] }, raw: Uint8Array, messageId: string): Promise<{ accepted: string[]; rejected: string[] }>;
  /** Appends to the account's Sent folder; null when the server has none. */
  appendSent(account: Account, password: string, raw: Uint8Array): Promise<{ folder: string } | null>;
}

export interface OutboundDeps {
  store: Store;
  blobs: BlobStore;
  /** Blob writes inside a commit (when the blob store lives in the same Store). */
  blobOps?: (key: string, data: Uint8Array, meta: { contentType?: string }) => WriteOp[];
  clock: Clock;
  logger: Logger;
  settings(): Promise<Settings>;
  queue(id: string): Promise<Queue | null>;
  agent(id: string): Promise<Agent | undefined>;
  agentByEmail(email: string): Promise<Agent | undefined>;
  accountForUse(id: string): Promise<AccountForUse | null>;
  /** Every address and alias of our accounts (never a recipient of reply-all, never auto-replied to). */
  ourAddresses(): Promise<string[]>;
  upload(id: string): Promise<{ filename: string; contentType: string; bytes: Uint8Array }>;
  crmJobsFor(change: CrmChange): Promise<JobSpec[]>;
  crmDeliveryFailed(sessionId: string, messageInternalId: string, outcome: 'failed' | 'bounced', reason: string): Promise<JobSpec[]>;
  mail: OutboundMailPort;
  html: RichHtml;
  /** Outbound host guard (SMTP host at send time). */
  guardHost(host: string, field: string): Promise<void>;
  /** Auto-assignment and other effects, after a commit. */
  onEffects?(session: Session, effects: SessionEffect[]): void;
  /** Further writes and durable jobs for each accepted message (the archive copy), committed with it. */
  messageWrites?(messageInternalId: string, now: number): { ops: WriteOp[]; jobs: JobSpec[] };
  /** Auto-replies per sender per window (default 3 per hour). */
  autoReplyRate?: RateLimitPolicy;
  newSessionId?: () => string;
}

export interface ComposeInput {
  text?: string | undefined;
  html?: string | undefined;
  subject?: string | undefined;
  to?: MailAddress[] | undefined;
  cc?: MailAddress[] | undefined;
  bcc?: MailAddress[] | undefined;
  attachments?: string[] | undefined;
}

export interface ReplyInput extends ComposeInput {
  /** Keep the customer's Cc (and other recipients of their last mail) when `cc` is not given (default true). */
  replyAll?: boolean | undefined;
}

export interface NewSessionInput extends ComposeInput {
  queueId: string;
  to: MailAddress[];
  subject: string;
}

export interface Accepted {
  session: StoredSession;
  message: StoredMessage;
}

/**
 * Sends: attempts before a mail is marked failed. The job backoff doubles from 1 s to a 15 min cap, and SMTP's own
 * delays (1–15 min) come on top as deferrals: about a day of trying in all.
 */
const SEND_ATTEMPTS = 100;
/** Queued outbound mail, scored by when the outbox last looked at it (reconcileOutbox). */
export const IDX_OUTBOX = 'outbox:queued';
const MAX_THREAD = 1000;
/** R-SIG-4: a signature image may be at most this large; all of a signature's images together at most SIGNATURE_TOTAL. */
export const SIGNATURE_IMAGE_MAX = 512 * 1024;
const SIGNATURE_TOTAL = 2 * 1024 * 1024;
/** R-ARP-2 for inline images of a body: 10 images, 25 MB combined. */
const BODY_INLINE = { maxImages: 10, maxImageBytes: 25 * 1024 * 1024, maxTotalBytes: 25 * 1024 * 1024 };

/** Image limits of rich HTML by use: a signature's images are small (R-SIG-4); bodies and auto-replies follow R-ARP-2. */
export function inlineLimits(use: 'signature' | 'body') {
  return use === 'signature' ? { maxImages: 10, maxImageBytes: SIGNATURE_IMAGE_MAX, maxTotalBytes: SIGNATURE_TOTAL, imageLabel: 'a signature image' } : { ...BODY_INLINE };
}

const SEND_PURPOSE = 'outbound.send';
const SENT_FOLDER_PURPOSE = 'outbound.append_sent';
export const AUTO_REPLY_PURPOSE = 'outbound.auto_reply';
export const CRM_REPLY_PURPOSE = 'outbound.crm_reply';

const iso = (ms: number) => new Date(ms).toISOString();
const bracket = (id: string) => (id.startsWith('<') ? id : `<${id}>`);
const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1) || 'localhost';

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function textToHtml(text: string): string {
  return text
    .split(/\r?\n\r?\n/)
    .map((p) => `<p>${escapeHtml(p).replace(/\r?\n/g, '<br>')}</p>`)
    .join('\n');
}

/** Job that sends one accepted outbound message; `requeue` > 0 for a job the outbox queued again (reconcileOutbox). */
function sendJob(internalId: string, accountId: string, requeue = 0): JobSpec {
  return { id: sendJobId(internalId, requeue), purpose: SEND_PURPOSE, target: `smtp:${accountId}`, payload: { messageId: internalId }, maxAttempts: SEND_ATTEMPTS };
}
const sendJobId = (internalId: string, requeue: number) => `outbound:send:${internalId}${requeue > 0 ? `:r${requeue}` : ''}`;

/** Message-IDs usable in In-Reply-To/References (a malformed one in the thread must not block replies). */
const usableId = (id: string | null): id is string => !!id && /^[^\s<>@]+@[^\s<>@]+$/.test(id);

/** The auto-reply job an inbound message causes (committed with the message by the ingest). */
export function autoReplyJob(sessionId: string, inboundInternalId: string, trigger: string): JobSpec {
  return { id: `outbound:auto:${inboundInternalId}`, purpose: AUTO_REPLY_PURPOSE, target: 'outbound', payload: { sessionId, inboundMessageId: inboundInternalId, trigger } };
}

interface Built {
  mail: OutgoingMail;
  stored: Omit<StoredMessage, 'sessionId' | 'id' | 'rawKey' | 'size' | 'sha256'>;
}

export class OutboundService {
  /** Whether a queue's auto-reply is on, cached a few seconds (read for every new thread; queue changes clear it). */
  private readonly autoReplyOn = new Map<string, { at: number; on: boolean }>();

  constructor(private readonly deps: OutboundDeps) {}

  onQueuesChanged(): void {
    this.autoReplyOn.clear();
  }

  /**
   * The auto-reply job an ingested message causes, committed with it (R-ARP-3/6): when the transition asks for one,
   * the session's queue has auto-reply on, and the loop guard lets it (automatic, imported or old mail never). The
   * job checks the queue and the rate limit again when it runs.
   */
  async autoReplyJobsFor(change: {
    next: Session;
    message: { internalId: string };
    effects: SessionEffect[];
    mail: InboundMail;
    arrival: { internalDate: number | null; imported: boolean; now: number };
  }): Promise<JobSpec[]> {
    const trigger = change.effects.find((e): e is Extract<SessionEffect, { type: 'auto_reply' }> => e.type === 'auto_reply');
    if (!trigger || !change.next.queueId || !(await this.queueAutoReplyOn(change.next.queueId))) return [];
    const decision = shouldAutoReply({
      mail: change.mail,
      imported: change.arrival.imported,
      internalDate: change.arrival.internalDate,
      now: change.arrival.now,
      ourAddresses: await this.deps.ourAddresses(),
    });
    if (!decision.ok) {
      this.deps.logger.info({ sessionId: change.next.id, reason: decision.reason }, 'no auto-reply: automatic or old mail');
      return [];
    }
    return [autoReplyJob(change.next.id, change.message.internalId, trigger.trigger)];
  }

  private async queueAutoReplyOn(queueId: string): Promise<boolean> {
    const hit = this.autoReplyOn.get(queueId);
    const now = this.deps.clock.now();
    if (hit && now - hit.at < 5000) return hit.on;
    let on: boolean;
    try {
      on = (await this.deps.queue(queueId))?.autoReply.enabled === true;
    } catch {
      // Unknown now (store hiccup): queue the job anyway; it checks the queue when it runs.
      return true;
    }
    if (this.autoReplyOn.size > 10_000) this.autoReplyOn.clear();
    this.autoReplyOn.set(queueId, { at: now, on });
    return on;
  }

  register(jobs: { register(purpose: string, handler: (job: JobRecord) => Promise<void>): void }): void {
    jobs.register(SEND_PURPOSE, (job) => this.runSend(job));
    jobs.register(SENT_FOLDER_PURPOSE, (job) => this.runAppendSent(job));
    jobs.register(AUTO_REPLY_PURPOSE, (job) => this.runAutoReply(job));
    jobs.register(CRM_REPLY_PURPOSE, (job) => this.runCrmReply(job));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Agent replies (POST /api/sessions/:id/replies) and CRM replies

  async reply(
    sessionId: string,
    agentId: string | null,
    input: ReplyInput,
    opts: { idempotencyKey?: string; author?: { email: string }; /** CRM replies are accepted while the channel is off and sent once it is on. */ whileChannelOff?: boolean } = {},
  ): Promise<Accepted> {
    const agent = agentId ? await this.deps.agent(agentId) : undefined;
    if (agentId && (!agent || !agent.active)) throw validationError([{ path: 'agentId', message: agent ? 'this agent is deactivated' : `unknown agent ${agentId}` }]);
    const internalId = opts.idempotencyKey ? `out_${(await sha256Hex(`reply|${sessionId}|${opts.idempotencyKey}`)).slice(0, 24)}` : newId('out');
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.deps.store.get<StoredMessage>(messageKey(internalId));
      if (existing) return { message: existing, session: await this.session(existing.sessionId) };
      const prev = await this.session(sessionId);
      const settings = await this.deps.settings();
      if (!opts.whileChannelOff) assertChannelOn(settings);
      const now = this.deps.clock.now();
      const queue = prev.queueId ? await this.deps.queue(prev.queueId) : null;
      const thread = await this.thread(prev.id);
      const firstAgentReply = !prev.interactions.some((i) => i.type === 'agent_replied');
      const subject = replySubject({ sessionId: prev.id, sessionSubject: prev.subject, requested: input.subject, firstAgentReply, settings: settings.subject });
      if (!subject.ok) throw validationError([{ path: subject.field, message: subject.message }]);
      const account = await this.senderForReply(prev, queue, thread, settings);
      const ours = new Set((await this.deps.ourAddresses()).map((a) => a.toLowerCase()));
      const lastInbound = [...thread].reverse().find((m) => m.direction === 'inbound' && m.kind !== 'bounce');
      const lastInboundId = lastInbound && usableId(lastInbound.messageId) ? lastInbound.messageId : null;
      const to = input.to ?? [prev.customer];
      const cc = input.cc ?? (input.replyAll === false ? [] : replyAllCc(lastInbound, prev, ours, to));
      const actingId = agent?.id ?? `crm:${opts.author?.email ?? 'unknown'}`;

      // The transition decides whether the reply stays in this session or starts a linked one (R-SES-4).
      const result = transition(prev, { type: 'agent_reply', agentId: actingId, messageId: '' }, { now, timers: settings.timers });
      if (result.kind === 'illegal') throw conflict(result.message);
      let base: StoredSession | null = prev;
      let next: Session;
      let effects: SessionEffect[] = [];
      const refs = thread.filter((m) => m.kind !== 'bounce').map((m) => m.messageId).filter(usableId);
      const threadHeaders = threadingHeaders(refs.map(bracket), lastInboundId ? bracket(lastInboundId) : null);
      let mailSubject = subject.subject;
      let sid = prev.id;
      if (result.kind === 'start_new_session') {
        sid = (this.deps.newSessionId ?? newSessionId)();
        base = null;
        // The new session gets its own token on its first reply (R-GLB-2) but keeps threading to the old mail.
        const s2 = replySubject({ sessionId: sid, sessionSubject: prev.subject, requested: input.subject, firstAgentReply: true, settings: settings.subject });
        if (s2.ok) mailSubject = s2.subject;
      }
      const messageId = makeMessageId(sid, domainOf(account.account.address));
      const built = await this.build({
        kind: 'agent_reply',
        queue,
        settings,
        agent: agent ?? null,
        authorEmail: opts.author?.email ?? null,
        account: account.account,
        replyToAddress: null,
        to,
        cc,
        bcc: input.bcc ?? [],
        subject: mailSubject,
        input,
        messageId,
        inReplyTo: threadHeaders.inReplyTo,
        references: threadHeaders.references,
        headers: {},
        withSignature: true,
      });
      if (result.kind === 'start_new_session') {
        next = newOutboundSession({
          id: sid,
          queueId: prev.queueId,
          subject: prev.subject,
          customer: prev.customer,
          participants: prev.participants,
          agentId: actingId,
          messageId: normalizeMessageId(messageId) ?? messageId,
          linkedFrom: prev.id,
          now,
        });
        next = { ...next, origin: 'customer', assigneeId: agent ? agent.id : prev.assigneeId };
      } else if (result.kind === 'applied') {
        next = result.session;
        effects = result.effects;
        // Record the real Message-ID (the transition saw a placeholder) and an edited subject (R-GLB-3).
        next = {
          ...next,
          interactions: next.interactions.map((i) =>
            i.type === 'agent_replied' && i.at === now && i.data?.messageId === '' ? { ...i, data: { messageId: normalizeMessageId(messageId), ...(subject.edited ? { subject: subject.subject } : {}) } } : i,
          ),
          ...(subject.edited ? { subject: subject.subject } : {}),
        };
      } else {
        // noop cannot happen for a reply; treat as applied without a status change.
        next = { ...prev, updatedAt: now, lastActivityAt: now, messageCount: prev.messageCount + 1 };
      }
      try {
        const accepted = await this.commitOutbound({ prev: base, next, effects, internalId, built, accountId: account.account.id, kind: 'agent_reply', agentId: agent?.id ?? null });
        return accepted;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`session ${sessionId} changed concurrently; try again`);
  }

  /** POST /api/sessions: an agent writes first (R-AGT-2). */
  async startSession(agentId: string, input: NewSessionInput, opts: { idempotencyKey?: string } = {}): Promise<Accepted> {
    const agent = await this.deps.agent(agentId);
    if (!agent || !agent.active) throw validationError([{ path: 'agentId', message: agent ? 'this agent is deactivated' : `unknown agent ${agentId}` }]);
    const queue = await this.deps.queue(input.queueId);
    if (!queue) throw validationError([{ path: 'queueId', message: `unknown queue ${input.queueId}` }]);
    if (headerUnsafe(input.subject)) throw validationError([{ path: 'subject', message: 'must not contain line breaks or NUL' }]);
    if (input.subject.trim() === '') throw validationError([{ path: 'subject', message: 'must not be empty' }]);
    const internalId = opts.idempotencyKey ? `out_${(await sha256Hex(`new|${agentId}|${opts.idempotencyKey}`)).slice(0, 24)}` : newId('out');
    const existing = await this.deps.store.get<StoredMessage>(messageKey(internalId));
    if (existing) return { message: existing, session: await this.session(existing.sessionId) };
    const settings = await this.deps.settings();
    assertChannelOn(settings);
    if (!queue.email.enabled) throw conflict(`email is off for queue ${queue.name} (Queue › Email)`);
    const now = this.deps.clock.now();
    const accountId = queue.email.addresses[0];
    if (!accountId) throw conflict(`queue ${queue.name} has no email address to send from (Queue › Email › Addresses)`);
    const account = await this.deps.accountForUse(accountId);
    if (!account) throw conflict(`the queue's address account ${accountId} no longer exists`);
    if (account.account.outboundOnly) throw conflict(`the queue's default address ${account.account.address} is outbound-only: answers to it would never be read (R-ACC-3)`);
    const sid = (this.deps.newSessionId ?? newSessionId)();
    let subject = input.subject.trim();
    if (settings.subject.addSessionId) subject = replySubject({ sessionId: sid, sessionSubject: subject, requested: undefined, firstAgentReply: true, settings: settings.subject }).ok ? `${subject} [#${sid}]` : subject;
    const messageId = makeMessageId(sid, domainOf(account.account.address));
    const built = await this.build({
      kind: 'agent_reply',
      queue,
      settings,
      agent,
      authorEmail: null,
      account: account.account,
      replyToAddress: null,
      to: input.to,
      cc: input.cc ?? [],
      bcc: input.bcc ?? [],
      subject,
      input,
      messageId,
      inReplyTo: null,
      references: [],
      headers: {},
      withSignature: true,
    });
    const [customer, ...others] = input.to;
    const next = newOutboundSession({
      id: sid,
      queueId: queue.id,
      subject: input.subject.trim(),
      customer: customer as MailAddress,
      participants: [...others, ...(input.cc ?? [])],
      agentId: agent.id,
      messageId: normalizeMessageId(messageId) ?? messageId,
      now,
    });
    return this.commitOutbound({ prev: null, next, effects: [], internalId, built, accountId: account.account.id, kind: 'agent_reply', agentId: agent.id });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Building a mail

  private async build(a: {
    kind: 'agent_reply' | 'auto_reply';
    queue: Queue | null;
    settings: Settings;
    agent: Agent | null;
    authorEmail: string | null;
    account: Account;
    replyToAddress: string | null;
    to: MailAddress[];
    cc: MailAddress[];
    bcc: MailAddress[];
    subject: string;
    input: ComposeInput;
    messageId: string;
    inReplyTo: string | null;
    references: string[];
    headers: Record<string, string>;
    withSignature: boolean;
  }): Promise<Built> {
    const fields: FieldError[] = [];
    const checkList = (list: MailAddress[], path: string) =>
      list.forEach((addr, i) => {
        if (!validAddress(addr.address)) fields.push({ path: `${path}.${i}.address`, message: 'is not an email address' });
        if (addr.name !== undefined && headerUnsafe(addr.name)) fields.push({ path: `${path}.${i}.name`, message: 'must not contain line breaks or NUL' });
      });
    checkList(a.to, 'to');
    checkList(a.cc, 'cc');
    checkList(a.bcc, 'bcc');
    if (a.to.length === 0) fields.push({ path: 'to', message: 'needs at least one recipient' });
    if (a.to.length + a.cc.length + a.bcc.length > 100) fields.push({ path: 'to', message: 'at most 100 recipients in all' });
    if (headerUnsafe(a.subject)) fields.push({ path: 'subject', message: 'must not contain line breaks or NUL' });
    if (a.input.html === undefined && a.input.text === undefined) fields.push({ path: 'html', message: 'give html or text' });
    if (fields.length > 0) throw validationError(fields);

    const { html: h } = this.deps;
    const cidDomain = domainOf(a.account.address);
    // Body: the agent's HTML sanitized (or their text), its data: images inline by CID (R-ARP-2 limits).
    const bodyHtmlRaw = a.input.html !== undefined ? h.sanitize(a.input.html) : textToHtml(a.input.text ?? '');
    const body = h.inlineImages(bodyHtmlRaw, { ...inlineLimits('body'), cidDomain });
    if ('error' in body) throw validationError([{ path: 'html', message: body.error.message }]);
    let html = body.html;
    let text = a.input.text ?? h.toText(body.html);
    const images = [...body.images];
    // Signature of the session's queue (R-SIG-1..4), tags filled for the agent at send time.
    if (a.withSignature && a.queue?.signature.enabled && a.queue.signature.html.trim() !== '') {
      const values = {
        agent_name: a.agent?.name ?? '',
        agent: a.agent?.firstName ?? '',
        company: a.agent?.company || a.settings.company.name,
        alias: a.agent?.email ?? a.authorEmail ?? '',
      };
      const sig = h.inlineImages(h.sanitize(renderTags(a.queue.signature.html, values, { html: true })), { ...inlineLimits('signature'), cidDomain });
      if ('error' in sig) throw conflict(`the signature of queue ${a.queue.name} cannot be used: ${sig.error.message}`);
      html = `${html}\n<div class="signature">${sig.html}</div>`;
      text = `${text.trimEnd()}\n\n-- \n${h.toText(sig.html)}`;
      for (const img of sig.images) if (!images.some((i) => i.cid === img.cid)) images.push(img);
    }
    // Files (upload ids) under R-ARP-2: type by extension and content, counts and sizes.
    const files: { filename: string; contentType: string; bytes: Uint8Array }[] = [];
    for (const [i, id] of (a.input.attachments ?? []).entries()) {
      try {
        files.push(await this.deps.upload(id));
      } catch {
        fields.push({ path: `attachments.${i}`, message: `unknown or expired upload ${id}` });
      }
    }
    if (fields.length > 0) throw validationError(fields);
    const candidates: CandidateFile[] = [
      ...files.map((f) => ({ filename: f.filename, size: f.bytes.byteLength, head: f.bytes.subarray(0, 8192), inline: false })),
      ...images.map((img) => ({ filename: img.filename, size: img.content.byteLength, head: img.content.subarray(0, 8192), inline: true })),
    ];
    const refusals = checkAttachments(candidates);
    if (refusals.length > 0) {
      throw validationError(
        refusals.map((r) => ({ path: r.index < 0 ? 'attachments' : r.index < files.length ? `attachments.${r.index}` : 'html', message: r.message })),
      );
    }
    const attachments: OutgoingAttachment[] = [
      ...images.map((img) => ({ filename: img.filename, contentType: img.contentType, content: img.content, cid: img.cid })),
      ...files.map((f) => ({ filename: f.filename, contentType: f.contentType, content: f.bytes })),
    ];
    const fromName = a.settings.company.name || a.queue?.name || undefined;
    const mail: OutgoingMail = {
      from: { address: a.account.address, ...(fromName ? { name: fromName } : {}) },
      to: a.to,
      ...(a.cc.length ? { cc: a.cc } : {}),
      ...(a.bcc.length ? { bcc: a.bcc } : {}),
      ...(a.replyToAddress ? { replyTo: { address: a.replyToAddress } } : {}),
      subject: a.subject,
      text,
      html,
      messageId: a.messageId,
      ...(a.inReplyTo ? { inReplyTo: a.inReplyTo } : {}),
      ...(a.references.length ? { references: a.references } : {}),
      ...(Object.keys(a.headers).length ? { headers: a.headers } : {}),
      attachments,
    };
    const now = this.deps.clock.now();
    const attachmentsMeta = await Promise.all(
      attachments.map(async (att) => ({
        filename: att.filename,
        contentType: att.contentType,
        size: att.content.byteLength,
        ...(att.cid ? { contentId: att.cid } : {}),
        inline: !!att.cid,
        sha256: await sha256Hex(att.content),
      })),
    );
    return {
      mail,
      stored: {
        direction: 'outbound',
        messageId: normalizeMessageId(a.messageId),
        from: mail.from,
        to: a.to,
        cc: a.cc,
        bcc: a.bcc,
        subject: a.subject,
        date: iso(now),
        receivedAt: iso(now),
        arrivedAt: null,
        text,
        html,
        attachments: attachmentsMeta,
        headers: { ...(a.inReplyTo ? { 'in-reply-to': a.inReplyTo } : {}), ...Object.fromEntries(Object.entries(a.headers).map(([k, v]) => [k.toLowerCase(), v])) },
        accountId: a.account.id,
        source: null,
        flags: [],
        kind: a.kind,
        agentId: a.agent?.id ?? null,
        delivery: queuedDelivery(now),
      },
    };
  }

  /** Commits an accepted outbound mail: bytes, message, Message-ID claim, session, CRM jobs and the send job, at once. */
  private async commitOutbound(a: {
    prev: StoredSession | null;
    next: Session;
    effects: SessionEffect[];
    internalId: string;
    built: Built;
    accountId: string;
    kind: 'agent_reply' | 'auto_reply';
    agentId: string | null;
  }): Promise<Accepted> {
    const now = this.deps.clock.now();
    const raw = await this.deps.mail.compose(a.built.mail, new Date(now)).catch((err: unknown) => {
      // UnsafeMessageError names the field (CR/LF/NUL in a header value, a malformed address).
      throw validationError([{ path: (err as { field?: string }).field ?? 'message', message: (err as Error).message }], 'The mail cannot be composed');
    });
    const rawKey = rawBlobKey(a.internalId);
    const rawOps = this.deps.blobOps ? this.deps.blobOps(rawKey, raw, { contentType: 'message/rfc822' }) : [];
    if (!this.deps.blobOps) await this.deps.blobs.put(rawKey, raw, { contentType: 'message/rfc822' });
    const message: StoredMessage = { ...a.built.stored, id: a.internalId, sessionId: a.next.id, rawKey, size: raw.byteLength, sha256: await sha256Hex(raw), rev: 1 };
    const claimKey = messageIdKey(message.messageId as string);
    const claim: MessageIdClaim = { sessionId: a.next.id, messageInternalId: a.internalId, contentHash: 'outbound', outbound: true, rev: 1 };
    const { ops: sessionOps, stored } = saveSessionOps(a.prev, a.next);
    const load = await agentLoadOps(this.deps.store, a.prev, a.next);
    const ops: WriteOp[] = [
      ...rawOps,
      { op: 'check', key: messageKey(a.internalId), rev: null },
      { op: 'put', key: messageKey(a.internalId), value: message },
      { op: 'check', key: claimKey, rev: null },
      { op: 'put', key: claimKey, value: claim },
      { op: 'index', index: idxSessionMessages(a.next.id), member: a.internalId, score: a.next.messageCount },
      retentionIndexOp(a.internalId, now),
      { op: 'index', index: IDX_OUTBOX, member: a.internalId, score: now },
      ...sessionOps,
      ...load.ops,
      ...autoAssignIntentOps(a.next, a.effects, now),
    ];
    const crmJobs = await this.deps.crmJobsFor({ prev: a.prev, next: a.next, message: { internalId: a.internalId, direction: 'outbound', kind: a.kind } });
    const extra = this.deps.messageWrites?.(a.internalId, now);
    await this.deps.store.commit([...ops, ...(extra?.ops ?? [])], [...crmJobs, sendJob(a.internalId, a.accountId), ...(extra?.jobs ?? [])]);
    this.deps.logger.info({ sessionId: a.next.id, messageId: message.messageId, kind: a.kind, agentId: a.agentId }, 'outbound mail accepted');
    if (a.effects.length > 0) this.deps.onEffects?.(stored, a.effects);
    return { session: stored, message };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Sending (job outbound.send)

  private async runSend(job: JobRecord): Promise<void> {
    const { messageId: id } = job.payload as { messageId: string };
    const m = await this.deps.store.get<StoredMessage>(messageKey(id));
    if (!m) throw new PermanentJobError(`outbound message ${id} no longer exists`);
    if (m.delivery?.state !== 'queued') return;
    // R-GLB-1: while the channel is off nothing is sent; accepted mail waits (reconcileOutbox sends it once it is on).
    if (!(await this.deps.settings()).emailChannel.enabled) throw new RetryLaterError('the email channel is off; the mail waits until it is on', 5 * 60_000);
    const raw = m.rawKey ? await this.deps.blobs.get(m.rawKey) : undefined;
    if (!raw) return this.fail(m, 'the composed bytes of this mail are missing', true);
    const use = await this.deps.accountForUse(m.accountId);
    if (!use) return this.fail(m, `the sending account ${m.accountId} was deleted`, true);
    if (use.password === null) return this.fail(m, `the sending account ${use.account.address} has no password`, true);
    try {
      await this.deps.guardHost(use.account.smtp.host, 'smtp.host');
    } catch (err) {
      // A private address is a refusal; a DNS failure or timeout is retried like any network error.
      const dnsFailure = (err as AppError).fields?.some((f) => f.message === 'host does not resolve') ?? false;
      if (dnsFailure && job.attempts + 1 < job.maxAttempts) throw new Error(`SMTP host: ${(err as Error).message}`);
      return this.fail(m, `SMTP host refused: ${(err as Error).message}`, true);
    }
    const envelope = { to: envelopeOf({ to: m.to, cc: m.cc, bcc: m.bcc ?? [] }) };
    const account: SmtpAccount = { id: use.account.id, address: use.account.address, smtp: use.account.smtp, username: use.account.username, password: use.password };
    let result: { accepted: string[]; rejected: string[] };
    try {
      result = await this.deps.mail.sendRaw(account, envelope, raw, bracket(m.messageId ?? id));
    } catch (err) {
      const d = (err as { delivery?: { kind?: string; delayMs?: number; message?: string } }).delivery;
      const reason = d?.message ?? (err as Error).message;
      const last = job.attempts + 1 >= job.maxAttempts;
      if (d?.kind === 'permanent' || last) return this.fail(m, reason, false, job.attempts + 1);
      await patchMessage(this.deps.store, id, (cur) => (cur.delivery?.state === 'queued' ? { ...cur, delivery: { ...cur.delivery, attempts: job.attempts + 1, lastError: reason } } : null));
      if (d?.delayMs) throw new RetryLaterError(reason, d.delayMs);
      throw err;
    }
    const now = this.deps.clock.now();
    const jobs: JobSpec[] =
      use.account.imap && !use.account.outboundOnly
        ? [{ id: `outbound:sent-folder:${id}`, purpose: SENT_FOLDER_PURPOSE, target: `imap:${use.account.id}`, payload: { messageId: id }, maxAttempts: 8 }]
        : [];
    await patchMessage(
      this.deps.store,
      id,
      (cur) => ({
        ...cur,
        delivery: { ...(cur.delivery as Delivery), state: 'sent', sentAt: iso(now), attempts: job.attempts + 1, lastError: null, accepted: result.accepted, rejected: result.rejected },
      }),
      async () => ({ ops: [{ op: 'unindex', index: IDX_OUTBOX, member: id }], jobs }),
    );
  }

  /** Marks an outbound message failed: on the message, on its session (interaction) and in the CRM (a note). */
  private async fail(m: StoredMessage, reason: string, permanentFromUs: boolean, attempts?: number): Promise<never> {
    await this.markUndelivered(m.id, 'failed', reason, attempts);
    throw new PermanentJobError(permanentFromUs ? reason : `not delivered: ${reason}`);
  }

  /** failed (refused when sending) or bounced (a DSN came back later). Idempotent per message and outcome. */
  async markUndelivered(messageInternalId: string, outcome: 'failed' | 'bounced', reason: string, attempts?: number): Promise<void> {
    const now = this.deps.clock.now();
    const written = await patchMessage(
      this.deps.store,
      messageInternalId,
      (m) => (!m.delivery || m.delivery.state === outcome ? null : { ...m, delivery: { ...m.delivery, state: outcome, failedAt: iso(now), lastError: reason, ...(attempts !== undefined ? { attempts } : {}) } }),
      async (m) => {
        const ops: WriteOp[] = [{ op: 'unindex', index: IDX_OUTBOX, member: m.id }];
        const prev = await this.deps.store.get<StoredSession>(sessionKey(m.sessionId));
        if (!prev) return { ops };
        const interaction: Interaction = { type: 'delivery_failed', at: now, actor: 'system', data: { messageId: m.messageId, internalId: m.id, outcome, reason: reason.slice(0, 500) } };
        ops.push(...saveSessionOps(prev, { ...prev, updatedAt: now, interactions: [...prev.interactions, interaction] }).ops);
        return { ops, jobs: await this.deps.crmDeliveryFailed(m.sessionId, m.id, outcome, reason.slice(0, 500)) };
      },
    );
    if (written?.delivery?.state === outcome) this.deps.logger.warn({ sessionId: written.sessionId, messageId: written.messageId, outcome, reason }, 'outbound mail not delivered');
  }

  private async runAppendSent(job: JobRecord): Promise<void> {
    const { messageId: id } = job.payload as { messageId: string };
    const m = await this.deps.store.get<StoredMessage>(messageKey(id));
    if (!m || !m.rawKey || m.delivery?.sentFolder !== undefined) return;
    const raw = await this.deps.blobs.get(m.rawKey);
    const use = await this.deps.accountForUse(m.accountId);
    if (!raw || !use || use.password === null || !use.account.imap) return;
    await this.deps.guardHost(use.account.imap.host, 'imap.host');
    const result = await this.deps.mail.appendSent(use.account, use.password, raw);
    await patchMessage(this.deps.store, id, (cur) => ({ ...cur, delivery: { ...(cur.delivery as Delivery), sentFolder: result?.folder ?? null } }));
  }

  /**
   * The outbox's safety net: mail still queued whose send job is gone (failed after the channel stayed off for hours,
   * lost in a crash) gets a new send job, once the channel is on. Looks at up to `limit` entries not looked at for
   * `minAgeMs`, oldest first, and moves each to the back. Returns how many were queued again.
   */
  async reconcileOutbox(jobs: Pick<JobQueue, 'get'>, minAgeMs = 5 * 60_000, limit = 200): Promise<number> {
    if (!(await this.deps.settings()).emailChannel.enabled) return 0;
    const now = this.deps.clock.now();
    const due = await this.deps.store.indexRange(IDX_OUTBOX, { max: now - minAgeMs, limit });
    let requeued = 0;
    for (const entry of due) {
      const m = await this.deps.store.get<StoredMessage>(messageKey(entry.member));
      if (!m || m.delivery?.state !== 'queued') {
        await this.deps.store.indexRemove(IDX_OUTBOX, entry.member);
        continue;
      }
      const n = m.delivery.requeues ?? 0;
      const current = await jobs.get(sendJobId(m.id, n));
      if (current && (current.state === 'waiting' || current.state === 'delayed' || current.state === 'active')) {
        await this.deps.store.indexAdd(IDX_OUTBOX, m.id, now);
        continue;
      }
      const written = await patchMessage(
        this.deps.store,
        m.id,
        (cur) => (cur.delivery?.state === 'queued' && (cur.delivery.requeues ?? 0) === n ? { ...cur, delivery: { ...cur.delivery, requeues: n + 1 } } : null),
        async (cur) => ({ ops: [{ op: 'index', index: IDX_OUTBOX, member: cur.id, score: now }], jobs: [sendJob(cur.id, cur.accountId, n + 1)] }),
      );
      if (written?.delivery?.requeues === n + 1) requeued++;
    }
    if (requeued > 0) this.deps.logger.warn({ requeued }, 'outbox: queued mail without a live send job was queued again');
    return requeued;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Auto-replies (job outbound.auto_reply, queued by the ingest with the inbound message when the loop guard let it)

  private async runAutoReply(job: JobRecord): Promise<void> {
    const { sessionId, inboundMessageId, trigger } = job.payload as { sessionId: string; inboundMessageId: string; trigger: string };
    const internalId = `out_auto_${inboundMessageId.replace(/^msg_/, '')}`;
    if (await this.deps.store.get(messageKey(internalId))) return;
    const inbound = await this.deps.store.get<StoredMessage>(messageKey(inboundMessageId));
    const session = await this.deps.store.get<StoredSession>(sessionKey(sessionId));
    if (!inbound || !session) return;
    const queue = session.queueId ? await this.deps.queue(session.queueId) : null;
    if (!queue || !queue.autoReply.enabled || queue.autoReply.html.trim() === '') return;
    const recipient = inbound.from?.address ? inbound.from : session.customer;
    if (!recipient.address || !validAddress(recipient.address)) return this.withhold(session.id, inboundMessageId, 'no usable sender address');
    // Loop guard, second half: at most N auto-replies per sender per window (the first half ran at ingest).
    const policy = this.deps.autoReplyRate ?? DEFAULT_RATE_LIMIT;
    const now = this.deps.clock.now();
    // Counted once per inbound message: a replayed job reads the count instead of adding to it.
    const counter = rateKey(recipient.address, now, policy.windowMs);
    const first = await this.deps.store.putIfAbsent(`autoreply-counted:${inboundMessageId}`, counter, { ttlMs: policy.windowMs });
    const count = first ? await this.deps.store.incr(counter, 1, { ttlMs: policy.windowMs }) : ((await this.deps.store.get<number>(counter)) ?? 0);
    if (!withinRate(count, policy)) return this.withhold(session.id, inboundMessageId, `rate limit: more than ${policy.max} auto-replies to ${recipient.address} within ${Math.round(policy.windowMs / 60_000)} min`);
    const senderId = queue.autoReply.senderAccountId ?? queue.email.addresses[0];
    const defaultId = queue.email.addresses[0];
    if (!senderId) return this.withhold(session.id, inboundMessageId, `queue ${queue.name} has no address to send from`);
    const sender = await this.deps.accountForUse(senderId);
    if (!sender) return this.withhold(session.id, inboundMessageId, `sender account ${senderId} no longer exists`);
    // From an outbound-only account, replies must still reach a mailbox we read: Reply-To the queue's address (R-ACC-3).
    const replyTo = senderId !== defaultId && defaultId ? (await this.deps.accountForUse(defaultId))?.account.address ?? null : null;
    const settings = await this.deps.settings();
    const assignee = session.assigneeId ? await this.deps.agent(session.assigneeId) : undefined;
    const values = autoReplyValues({
      consumerFirstName: firstName(recipient.name) ?? firstName(session.customer.name),
      agentFirstName: assignee?.firstName ?? null,
      queueName: queue.name,
      companyName: settings.company.name,
      ticketId: session.ticketId,
      now,
      hours: queue.hours,
      language: queue.language,
    });
    const thread = await this.thread(session.id);
    const refs = thread.filter((m) => m.kind !== 'bounce').map((m) => m.messageId).filter(usableId);
    const headers = threadingHeaders(refs.map(bracket), usableId(inbound.messageId) ? bracket(inbound.messageId) : null);
    const messageId = makeMessageId(session.id, domainOf(sender.account.address));
    const built = await this.build({
      kind: 'auto_reply',
      queue,
      settings,
      agent: null,
      authorEmail: null,
      account: sender.account,
      replyToAddress: replyTo,
      to: [{ address: recipient.address, ...(recipient.name ? { name: recipient.name } : {}) }],
      cc: [],
      bcc: [],
      subject: autoReplySubject(inbound.subject),
      input: { html: renderTags(queue.autoReply.html, values, { html: true }), attachments: queue.autoReply.attachments },
      messageId,
      inReplyTo: headers.inReplyTo,
      references: headers.references,
      headers: { ...AUTO_REPLY_HEADERS },
      withSignature: false,
    }).catch((err: unknown) => {
      if (err instanceof AppError) throw new PermanentJobError(`auto-reply of queue ${queue.name} cannot be built: ${err.message}`);
      throw err;
    });
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await this.session(session.id);
      const at = this.deps.clock.now();
      const next: Session = {
        ...prev,
        updatedAt: at,
        messageCount: prev.messageCount + 1,
        interactions: [...prev.interactions, { type: 'auto_reply_sent', at, actor: 'system', data: { trigger, messageId: normalizeMessageId(messageId), to: recipient.address } }],
      };
      try {
        await this.commitOutbound({ prev, next, effects: [], internalId, built, accountId: sender.account.id, kind: 'auto_reply', agentId: null });
        return;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        if (await this.deps.store.get(messageKey(internalId))) return;
      }
    }
    throw new Error(`session ${session.id} kept changing; the auto-reply will be tried again`);
  }

  /** An auto-reply the guard withheld: a log line (sessions stay uncluttered; the reason is in the job list too). */
  private withhold(sessionId: string, inboundMessageId: string, reason: string): void {
    this.deps.logger.info({ sessionId, inboundMessageId, reason }, 'auto-reply withheld');
  }

  // ---------------------------------------------------------------------------------------------------------
  // CRM replies (R-AGT-4): an agent's public reply on the ticket goes out as the same mail as a workspace reply.

  private async runCrmReply(job: JobRecord): Promise<void> {
    const { sessionId, event } = job.payload as { sessionId: string; event: Extract<CrmEvent, { type: 'agent_reply' }> };
    const agent = await this.deps.agentByEmail(event.authorEmail);
    const input: ReplyInput = event.bodyHtml ? { html: event.bodyHtml } : { text: event.bodyText };
    try {
      await this.reply(sessionId, agent?.active ? agent.id : null, input, { idempotencyKey: `crm:${event.eventId}`, author: { email: event.authorEmail }, whileChannelOff: true });
    } catch (err) {
      if (err instanceof AppError && err.code !== 'conflict') throw new PermanentJobError(`the CRM reply cannot be sent: ${err.message}`);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------------------

  private async session(id: string): Promise<StoredSession> {
    const s = await this.deps.store.get<StoredSession>(sessionKey(id));
    if (!s) throw notFound('session', id);
    return s;
  }

  private async thread(sessionId: string): Promise<StoredMessage[]> {
    const entries = await this.deps.store.indexRange(idxSessionMessages(sessionId), { limit: MAX_THREAD });
    return (await this.deps.store.getMany<StoredMessage>(entries.map((e) => messageKey(e.member)))).filter((m): m is StoredMessage => !!m);
  }

  /** The address a reply goes out from: the queue's default address, else the mailbox the customer wrote to. */
  private async senderForReply(session: Session, queue: Queue | null, thread: StoredMessage[], settings: Settings): Promise<AccountForUse> {
    const candidates: string[] = [];
    if (queue?.email.addresses[0]) candidates.push(queue.email.addresses[0]);
    const lastInbound = [...thread].reverse().find((m) => m.direction === 'inbound');
    if (lastInbound) candidates.push(lastInbound.accountId);
    if (!queue && settings.routing.defaultQueueId) {
      const q = await this.deps.queue(settings.routing.defaultQueueId);
      if (q?.email.addresses[0]) candidates.push(q.email.addresses[0]);
    }
    for (const id of candidates) {
      const use = await this.deps.accountForUse(id);
      // An outbound-only account is never read: the customer's answer would be lost (R-ACC-3).
      if (use && !use.account.outboundOnly) return use;
    }
    throw conflict(`session ${session.id} has no address to reply from: give its queue an email address (Queue › Email › Addresses)`);
  }
}

/** R-GLB-1: while the email channel is off, nothing is sent. */
function assertChannelOn(settings: Settings): void {
  if (!settings.emailChannel.enabled) throw conflict('the email channel is off (Settings › Email); nothing is sent while it is off');
}

/** Reply-all (R-AGT-2): the other recipients of the customer's last mail stay in Cc, never our own addresses. */
export function replyAllCc(lastInbound: StoredMessage | undefined, session: Session, ours: Set<string>, to: MailAddress[]): MailAddress[] {
  if (!lastInbound) return [];
  const skip = new Set([...ours, ...to.map((a) => a.address.toLowerCase()), session.customer.address.toLowerCase()]);
  const out: MailAddress[] = [];
  for (const a of [...(lastInbound.from ? [lastInbound.from] : []), ...lastInbound.to, ...lastInbound.cc]) {
    const key = a.address.toLowerCase();
    if (!key || skip.has(key) || !validAddress(key)) continue;
    skip.add(key);
    out.push(a);
  }
  return out;
}

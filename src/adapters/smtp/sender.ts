// SMTP sending adapter (R-AGT-3, R-REL-4): header-safe MIME built once with MailComposer, sent over one pooled nodemailer transport per account.
import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { ServerEndpoint } from '../../core/account.js';
import { headerUnsafe } from '../../core/outbound/compose.js';
import type { MailAddress } from '../../core/mail/inbound.js';
import { envelopeOf, type OutgoingMail } from '../../core/outbound/outgoing.js';
import { systemClock, type Clock, type Logger } from '../../core/ports.js';
import { classifyDeliveryError, type DeliveryErrorClass } from './delivery-error.js';

// The message shape is the core's (the outbound use case builds it); re-exported under the adapter's names.
export type { MailAddress } from '../../core/mail/inbound.js';
export type { OutgoingAttachment } from '../../core/outbound/outgoing.js';
export type OutgoingMessage = OutgoingMail;

export interface SenderAccount {
  id: string;
  /** The mailbox address: the SMTP envelope sender (bounces come back here). */
  address: string;
  smtp: ServerEndpoint;
  username: string;
  password: string;
  displayName?: string;
}

export interface SendResult {
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** The exact bytes sent: append them to the Sent folder and archive them. */
  raw: Uint8Array;
}

export interface MailSender {
  send(account: SenderAccount, message: OutgoingMessage): Promise<SendResult>;
  /**
   * Sends bytes composed earlier (`composeRaw`), unchanged: the durable outbox stores them at accept time, so a
   * retry sends exactly the same message (same Message-ID, same Date).
   */
  sendRaw(account: SenderAccount, envelope: { to: string[] }, raw: Uint8Array, messageId: string): Promise<SendResult>;
  close(): Promise<void>;
}

export interface MailSenderTimeouts {
  /** TCP/TLS connect (default 10 s, at most 30 s). */
  connectionMs?: number;
  /** Server greeting (default 10 s, at most 30 s). */
  greetingMs?: number;
  /** Socket inactivity (default 30 s, at most 30 s). */
  socketMs?: number;
}

export interface MailSenderOptions {
  logger: Logger;
  timeouts?: MailSenderTimeouts;
  /** A transport unused this long is closed (default 5 min). */
  idleTransportMs?: number;
  /** Parallel SMTP connections per account (default 2). */
  maxConnections?: number;
  clock?: Clock;
}

/** A message that would inject headers (CR/LF/NUL) or is malformed: refused before any network. */
export class UnsafeMessageError extends Error {
  readonly code = 'EUNSAFEHEADER';
  readonly delivery: DeliveryErrorClass;
  constructor(
    readonly field: string,
    why: string,
  ) {
    super(`refused to send: ${field} ${why}`);
    this.name = 'UnsafeMessageError';
    this.delivery = { kind: 'permanent', reason: 'invalid', message: this.message };
  }
}

/** A failed send, with what it means for the next attempt. */
export class MailSendError extends Error {
  readonly code: string | undefined;
  readonly responseCode: number | undefined;
  readonly response: string | undefined;
  readonly delivery: DeliveryErrorClass;
  constructor(cause: unknown) {
    const delivery = classifyDeliveryError(cause);
    super(delivery.message, { cause });
    this.name = 'MailSendError';
    const c = (typeof cause === 'object' && cause !== null ? cause : {}) as { code?: unknown; responseCode?: unknown; response?: unknown };
    this.code = typeof c.code === 'string' ? c.code : undefined;
    this.responseCode = typeof c.responseCode === 'number' ? c.responseCode : undefined;
    this.response = typeof c.response === 'string' ? c.response : undefined;
    this.delivery = delivery;
  }
}

/** Headers the composer writes itself; `headers` may not set them again. */
const RESERVED_HEADERS = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'in-reply-to',
  'references',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-id',
]);
/** RFC 5322 field name: printable ASCII except ':'. */
const FIELD_NAME = /^[!-9;-~]+$/;
/** A plain addr-spec: no spaces, separators or brackets that could add recipients or headers. */
const ADDRESS = /^[^\s<>,;:"()\\[\]@]+@[^\s<>,;:"()\\[\]@]+$/;
const MSG_ID = /^<[^\s<>]+@[^\s<>]+>$/;
const CID = /^[^\s<>]+$/;

function checkText(field: string, value: string | undefined): void {
  if (value !== undefined && headerUnsafe(value)) throw new UnsafeMessageError(field, 'contains CR, LF or NUL');
}

function checkAddress(field: string, a: MailAddress | undefined): void {
  if (!a) return;
  checkText(`${field}.address`, a.address);
  checkText(`${field}.name`, a.name);
  if (!ADDRESS.test(a.address)) throw new UnsafeMessageError(`${field}.address`, 'is not a plain email address');
}

function checkMsgId(field: string, id: string | undefined): void {
  if (id === undefined) return;
  checkText(field, id);
  if (!MSG_ID.test(id)) throw new UnsafeMessageError(field, 'is not a <local@domain> message id');
}

/** Pure: throws `UnsafeMessageError` for anything that could inject a header or is malformed. */
export function assertMessageSafe(message: OutgoingMessage, account?: Pick<SenderAccount, 'address' | 'displayName'>): void {
  if (account) {
    checkAddress('account', { address: account.address, ...(account.displayName !== undefined ? { name: account.displayName } : {}) });
  }
  checkText('subject', message.subject);
  checkAddress('from', message.from);
  checkAddress('replyTo', message.replyTo);
  for (const [list, field] of [
    [message.to, 'to'],
    [message.cc ?? [], 'cc'],
    [message.bcc ?? [], 'bcc'],
  ] as const) {
    list.forEach((a, i) => checkAddress(`${field}[${i}]`, a));
  }
  if (message.to.length + (message.cc?.length ?? 0) + (message.bcc?.length ?? 0) === 0) throw new UnsafeMessageError('to', 'has no recipient');
  checkMsgId('messageId', message.messageId);
  checkMsgId('inReplyTo', message.inReplyTo);
  (message.references ?? []).forEach((r, i) => checkMsgId(`references[${i}]`, r));
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    checkText(`headers.${name}`, name);
    if (!FIELD_NAME.test(name)) throw new UnsafeMessageError(`headers.${name}`, 'is not a valid header name');
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new UnsafeMessageError(`headers.${name}`, 'is set by the composer');
    checkText(`headers.${name}`, value);
  }
  (message.attachments ?? []).forEach((a, i) => {
    checkText(`attachments[${i}].filename`, a.filename);
    checkText(`attachments[${i}].contentType`, a.contentType);
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(a.contentType)) throw new UnsafeMessageError(`attachments[${i}].contentType`, 'is not a type/subtype');
    if (a.cid !== undefined) {
      checkText(`attachments[${i}].cid`, a.cid);
      if (!CID.test(a.cid)) throw new UnsafeMessageError(`attachments[${i}].cid`, 'is not a valid Content-ID');
    }
  });
}

const fmt = (a: MailAddress) => (a.name ? { name: a.name, address: a.address } : a.address);

/** Builds the RFC 5322 message once (Bcc left out: envelope only). Checks safety first. */
export async function composeRaw(message: OutgoingMessage, date: Date = new Date()): Promise<Buffer> {
  assertMessageSafe(message);
  const composer = new MailComposer({
    from: fmt(message.from),
    to: message.to.map(fmt),
    ...(message.cc?.length ? { cc: message.cc.map(fmt) } : {}),
    ...(message.replyTo ? { replyTo: fmt(message.replyTo) } : {}),
    subject: message.subject,
    messageId: message.messageId,
    ...(message.inReplyTo ? { inReplyTo: message.inReplyTo } : {}),
    ...(message.references?.length ? { references: message.references.join(' ') } : {}),
    date,
    text: message.text,
    ...(message.html !== undefined ? { html: message.html } : {}),
    ...(message.headers ? { headers: { ...message.headers } } : {}),
    attachments: (message.attachments ?? []).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
      ...(a.cid !== undefined ? { cid: a.cid, contentDisposition: 'inline' } : {}),
    })),
    // Nothing is ever fetched from a path or URL given in the message.
    disableFileAccess: true,
    disableUrlAccess: true,
    xMailer: false,
  });
  return composer.compile().build();
}

/** Envelope recipients: To + Cc + Bcc, each once (case-insensitive). */
export const envelopeRecipients = (message: OutgoingMessage): string[] => envelopeOf(message);

/** Changes whenever the server or the credentials change, so a new password gets a new transport. */
export function transportFingerprint(account: Pick<SenderAccount, 'smtp' | 'username' | 'password'>): string {
  const { host, port, secure, starttls } = account.smtp;
  return createHash('sha256').update(JSON.stringify([host.toLowerCase(), port, secure, starttls, account.username, account.password])).digest('hex').slice(0, 32);
}

/** nodemailer: `requireTLS` when STARTTLS is required, `ignoreTLS` when off; with `secure`, TLS from the first byte. */
function tlsOptions(endpoint: ServerEndpoint): { secure: boolean; requireTLS?: boolean; ignoreTLS?: boolean } {
  if (endpoint.secure) return { secure: true };
  if (endpoint.starttls === 'required') return { secure: false, requireTLS: true };
  if (endpoint.starttls === 'off') return { secure: false, ignoreTLS: true };
  return { secure: false };
}

type Transport = ReturnType<typeof nodemailer.createTransport>;

interface PoolEntry {
  fingerprint: string;
  transport: Transport;
  lastUsed: number;
  inFlight: number;
}

const cap = (v: number | undefined, dflt: number) => Math.min(Math.max(v ?? dflt, 100), 30_000);

export function createMailSender(opts: MailSenderOptions): MailSender {
  const log = opts.logger.child({ component: 'smtp-sender' });
  const clock = opts.clock ?? systemClock;
  const connectionMs = cap(opts.timeouts?.connectionMs, 10_000);
  const greetingMs = cap(opts.timeouts?.greetingMs, 10_000);
  const socketMs = cap(opts.timeouts?.socketMs, 30_000);
  const idleTransportMs = Math.max(opts.idleTransportMs ?? 5 * 60_000, 1_000);
  const maxConnections = Math.max(1, opts.maxConnections ?? 2);
  const pools = new Map<string, PoolEntry>();
  let closed = false;

  const closeEntry = (accountId: string, entry: PoolEntry, why: string) => {
    if (pools.get(accountId) === entry) pools.delete(accountId);
    log.debug({ accountId, why }, 'closing smtp transport');
    try {
      entry.transport.close();
    } catch {
      // already closed
    }
  };

  const sweep = setInterval(
    () => {
      const now = clock.now();
      for (const [id, entry] of pools) {
        if (entry.inFlight === 0 && now - entry.lastUsed >= idleTransportMs) closeEntry(id, entry, 'idle');
      }
    },
    Math.min(idleTransportMs, 60_000),
  );
  sweep.unref();

  const transportFor = (account: SenderAccount): PoolEntry => {
    const fingerprint = transportFingerprint(account);
    const existing = pools.get(account.id);
    if (existing && existing.fingerprint === fingerprint) return existing;
    // Server or credentials changed: the old pool finishes what it is sending, then closes.
    if (existing) closeEntry(account.id, existing, 'settings changed');
    const transport = nodemailer.createTransport({
      pool: true,
      maxConnections,
      maxMessages: 100,
      idleTimeout: Math.min(idleTransportMs, 60_000),
      host: account.smtp.host,
      port: account.smtp.port,
      ...tlsOptions(account.smtp),
      auth: { user: account.username, pass: account.password },
      connectionTimeout: connectionMs,
      greetingTimeout: greetingMs,
      socketTimeout: socketMs,
      dnsTimeout: connectionMs,
      logger: false,
      debug: false,
    });
    // A pool-level error without a listener would crash the process.
    transport.on('error', (err: unknown) => log.warn({ accountId: account.id, err: classifyDeliveryError(err).message }, 'smtp transport error'));
    const entry: PoolEntry = { fingerprint, transport, lastUsed: clock.now(), inFlight: 0 };
    pools.set(account.id, entry);
    return entry;
  };

  const api: MailSender = {
    async send(account, message) {
      if (closed) throw new Error('mail sender is closed');
      assertMessageSafe(message, account);
      const raw = await composeRaw(message, new Date(clock.now()));
      return api.sendRaw(account, { to: envelopeRecipients(message) }, raw, message.messageId);
    },

    async sendRaw(account, envelope, raw, messageId) {
      if (closed) throw new Error('mail sender is closed');
      checkAddress('account', { address: account.address, ...(account.displayName !== undefined ? { name: account.displayName } : {}) });
      envelope.to.forEach((a, i) => checkAddress(`to[${i}]`, { address: a }));
      if (envelope.to.length === 0) throw new UnsafeMessageError('to', 'has no recipient');
      const entry = transportFor(account);
      entry.inFlight += 1;
      entry.lastUsed = clock.now();
      try {
        const info = (await entry.transport.sendMail({ envelope: { from: account.address, to: envelope.to }, raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) })) as {
          accepted?: unknown[];
          rejected?: unknown[];
        };
        const addr = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'object' && v !== null && 'address' in v ? String((v as { address: unknown }).address) : String(v));
        const result: SendResult = { messageId, accepted: (info.accepted ?? []).map(addr), rejected: (info.rejected ?? []).map(addr), raw };
        log.info({ accountId: account.id, messageId, accepted: result.accepted.length, rejected: result.rejected.length }, 'mail sent');
        return result;
      } catch (err) {
        const failure = new MailSendError(err);
        log.warn({ accountId: account.id, messageId, kind: failure.delivery.kind, reason: failure.delivery.reason, error: failure.message }, 'mail not sent');
        // Refused credentials or a dead connection: start the next attempt from a fresh pool.
        if (failure.delivery.kind === 'auth' || failure.delivery.reason === 'network' || failure.delivery.reason === 'timeout') {
          if (entry.inFlight <= 1) closeEntry(account.id, entry, failure.delivery.reason);
        }
        throw failure;
      } finally {
        entry.inFlight -= 1;
        entry.lastUsed = clock.now();
      }
    },

    async close() {
      closed = true;
      clearInterval(sweep);
      for (const [id, entry] of [...pools]) closeEntry(id, entry, 'sender closed');
    },
  };
  return api;
}

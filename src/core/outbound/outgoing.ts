// What the outbound path hands to the mail adapter, and the delivery state an outbound message carries
// (R-AGT-3, R-REL-4): the durable outbox stores both with the message.
import type { MailAddress } from '../mail/inbound.js';

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  content: Uint8Array;
  /** Content-ID (without `<>`) of an inline image referenced as `cid:` from the HTML. */
  cid?: string;
}

/** One mail to compose: structurally the SMTP adapter's OutgoingMessage. */
export interface OutgoingMail {
  from: MailAddress;
  to: MailAddress[];
  cc?: MailAddress[];
  /** Envelope only: never written into the headers. */
  bcc?: MailAddress[];
  replyTo?: MailAddress;
  subject: string;
  text: string;
  html?: string;
  /** `<local@domain>`, angle brackets included. */
  messageId: string;
  inReplyTo?: string;
  references?: string[];
  headers?: Record<string, string>;
  attachments?: OutgoingAttachment[];
}

export type DeliveryState = 'queued' | 'sent' | 'failed' | 'bounced';

/** Where an outbound message stands. `failed`/`bounced` carry the reason in the server's own words. */
export interface Delivery {
  state: DeliveryState;
  queuedAt: string;
  sentAt: string | null;
  failedAt: string | null;
  /** Send attempts so far. */
  attempts: number;
  lastError: string | null;
  accepted: string[];
  rejected: string[];
  /** Sent-folder copy: the folder's name, null when the server has none, undefined while pending/not applicable. */
  sentFolder?: string | null;
  /** Times the outbox queued a new send job because the previous one was gone (channel off for hours, a crash). */
  requeues?: number;
}

export function queuedDelivery(now: number): Delivery {
  return { state: 'queued', queuedAt: new Date(now).toISOString(), sentAt: null, failedAt: null, attempts: 0, lastError: null, accepted: [], rejected: [] };
}

/** Envelope recipients: To + Cc + Bcc, each once (case-insensitive). */
export function envelopeOf(mail: Pick<OutgoingMail, 'to' | 'cc' | 'bcc'>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const a of [...mail.to, ...(mail.cc ?? []), ...(mail.bcc ?? [])]) {
    const key = a.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(a.address);
  }
  return out;
}

const ADDRESS = /^[^\s@<>(),;:"\\[\]]+@[^\s@<>(),;:"\\[\]]+\.[^\s@<>(),;:"\\[\]]+$/;

/** A plain, deliverable-looking address (no display name, no injection). */
export function validAddress(address: string): boolean {
  return address.length <= 320 && ADDRESS.test(address) && !/[\r\n\0]/.test(address);
}

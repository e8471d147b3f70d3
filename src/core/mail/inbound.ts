// A parsed inbound email as the core sees it (the parse adapter builds it from mailparser's output).

export interface MailAddress {
  /** Lowercased address; empty when the header held only a display name or garbage. */
  address: string;
  name?: string;
}

export interface MailAttachmentMeta {
  filename: string;
  contentType: string;
  size: number;
  /** Content-ID without brackets, for inline images. */
  contentId?: string;
  inline: boolean;
  sha256: string;
}

export interface InboundMail {
  /** Normalized Message-ID (no brackets), or null when missing/invalid. */
  messageId: string | null;
  inReplyTo: string[];
  references: string[];
  subject: string;
  from: MailAddress | null;
  replyTo: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  /** Delivered-To / X-Original-To values, lowercased. */
  deliveredTo: string[];
  /** Date header (epoch ms), or null when missing or unparseable. */
  date: number | null;
  /**
   * Headers the policies read (lowercased names, first value, unfolded): auto-submitted, precedence,
   * list-id, list-unsubscribe, x-autoreply, x-autorespond, x-auto-response-suppress, return-path,
   * content-type, x-failed-recipients, and similar.
   */
  headers: Record<string, string>;
  /** Plain-text body (from text/plain, or derived from HTML). */
  text: string;
  /** Sanitized HTML body, or null when the mail had none. */
  html: string | null;
  attachments: MailAttachmentMeta[];
  /** Size of the raw message in bytes. */
  size: number;
  /** SHA-256 of the raw bytes (hex): identity when the Message-ID is missing. */
  sha256: string;
}

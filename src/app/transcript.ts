// The session thread as a self-contained, print-friendly HTML document (pure) and as a PDF (R-CRM-3, R-REL-4).
import { AppError } from '../core/errors.js';
import type { BlobStore, Clock, Logger, Store } from '../core/ports.js';
import { messageKey } from '../core/session/store-layout.js';
import type { StoredMessage } from './ingest-message.js';
import type { SessionDetail } from './sessions-service.js';

/** Turns one self-contained HTML document into PDF bytes. The adapter fetches nothing from the network. */
export interface PdfRenderer {
  render(html: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** The part of a session detail the transcript shows. */
export type TranscriptSession = Pick<
  SessionDetail,
  'id' | 'subject' | 'customer' | 'queueId' | 'status' | 'createdAt' | 'updatedAt' | 'lastActivityAt' | 'ticketId' | 'messages'
>;

export interface TranscriptOptions {
  companyName: string;
  /** When the transcript was made (epoch ms or ISO). */
  generatedAt: number | string;
  /** IANA zone for the dates shown (default UTC; an unknown zone falls back to UTC). */
  timeZone?: string;
  /** Shown beside the queue id. */
  queueName?: string;
  /**
   * Inline images of the mail itself, by message id then Content-ID (no brackets): `data:image/…;base64,…` URLs.
   * A `cid:` image without an entry here becomes a placeholder box; nothing else is ever loaded.
   */
  inlineImages?: Record<string, Record<string, string>>;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ENTITIES[ch] ?? ch);
}

const unescapeBasic = (text: string): string =>
  text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_m, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"' })[name as 'amp'] ?? "'");

/** Only raster images in base64 are accepted as inline image URLs (no SVG: it can carry references). */
const DATA_IMAGE = /^data:image\/(?:png|jpeg|jpg|gif|webp|bmp);base64,[A-Za-z0-9+/=\s]*$/i;

function formatDate(value: number | string | null | undefined, timeZone: string): string {
  if (value === null || value === undefined || value === '') return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return typeof value === 'string' ? value : '';
  const parts = (zone: string) =>
    new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      year: 'numeric',
      month: 'short',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    }).format(d);
  try {
    return parts(timeZone);
  } catch {
    return parts('UTC');
  }
}

const address = (a: { address: string; name?: string } | null | undefined): string => {
  if (!a) return '';
  if (a.name && a.address) return `${a.name} <${a.address}>`;
  return a.name || a.address;
};
const addresses = (list: { address: string; name?: string }[]): string => list.map(address).join(', ');

function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/**
 * Makes already-sanitized mail HTML fit for the document: `cid:` images become the data URL the caller resolved or a
 * placeholder box, and any image that is neither (the sanitizer keeps none, but this does not rely on it) is dropped.
 */
function withInlineImages(html: string, images: Record<string, string>): string {
  return html.replace(/<img\b[^>]*>/gi, (tag) => {
    const src = /\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(tag);
    const raw = (src?.[1] ?? src?.[2] ?? src?.[3] ?? '').replace(/&amp;/g, '&').trim();
    const alt = /\salt\s*=\s*(?:"([^"]*)"|'([^']*)')/i.exec(tag);
    const label = escapeHtml(unescapeBasic(alt?.[1] ?? alt?.[2] ?? ''));
    if (/^cid:/i.test(raw)) {
      let cid = raw.slice(4);
      try {
        cid = decodeURIComponent(cid);
      } catch {
        /* keep it as written */
      }
      cid = cid.replace(/^<|>$/g, '');
      const url = images[cid];
      if (url && DATA_IMAGE.test(url)) return `<img src="${escapeHtml(url.replace(/\s+/g, ''))}" alt="${label}" class="inline-image">`;
      return `<span class="image-placeholder">[inline image${label ? `: ${label}` : ''}]</span>`;
    }
    if (DATA_IMAGE.test(raw)) return tag;
    return `<span class="image-placeholder">[image not loaded${label ? `: ${label}` : ''}]</span>`;
  });
}

const STYLE = `
@page { size: A4; margin: 15mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; font-size: 10.5pt; color: #111; margin: 0; line-height: 1.4; }
header.transcript { border-bottom: 2px solid #333; padding-bottom: 6pt; margin-bottom: 10pt; }
header.transcript h1 { font-size: 15pt; margin: 0 0 4pt; }
header.transcript .company { font-size: 9pt; color: #555; text-transform: uppercase; letter-spacing: 0.05em; }
table.meta { border-collapse: collapse; font-size: 9pt; }
table.meta th { text-align: left; color: #555; font-weight: normal; padding: 1pt 10pt 1pt 0; vertical-align: top; white-space: nowrap; }
table.meta td { padding: 1pt 0; word-break: break-word; }
article.message { border: 1px solid #ccc; border-radius: 3pt; margin: 0 0 10pt; page-break-inside: auto; }
article.message > header { background: #f2f2f2; padding: 5pt 7pt; border-bottom: 1px solid #ccc; }
article.message.outbound > header { background: #eaf1fb; }
.direction { font-weight: bold; font-size: 9pt; margin-bottom: 2pt; }
.body { padding: 7pt; overflow-wrap: anywhere; }
.body img { max-width: 100%; height: auto; }
pre.text { white-space: pre-wrap; font-family: inherit; margin: 0; }
.image-placeholder { display: inline-block; border: 1px dashed #999; color: #666; font-size: 8.5pt; padding: 2pt 4pt; }
.attachments { border-top: 1px dashed #ccc; padding: 4pt 7pt; font-size: 9pt; }
.attachments ul { margin: 2pt 0 0; padding-left: 14pt; }
footer.transcript { color: #777; font-size: 8pt; margin-top: 8pt; }
`;

/** The whole thread as one HTML document: inline CSS, no script, nothing to fetch (CSP says so too). */
export function transcriptHtml(session: TranscriptSession, opts: TranscriptOptions): string {
  const zone = opts.timeZone || 'UTC';
  const e = escapeHtml;
  const row = (label: string, value: string) => (value ? `<tr><th>${e(label)}</th><td>${e(value)}</td></tr>` : '');
  const queue = session.queueId ? (opts.queueName ? `${opts.queueName} (${session.queueId})` : session.queueId) : '';
  const head = [
    row('Session', session.id),
    row('Subject', session.subject || '(no subject)'),
    row('Customer', address(session.customer)),
    row('Queue', queue),
    row('Status', session.status),
    row('CRM record', session.ticketId ?? ''),
    row('Started', formatDate(session.createdAt, zone)),
    row('Last activity', formatDate(session.lastActivityAt, zone)),
    row('Messages', String(session.messages.length)),
  ].join('');

  const messages = session.messages
    .map((m, i) => {
      const body =
        m.html !== null && m.html.trim() !== ''
          ? withInlineImages(m.html, opts.inlineImages?.[m.id] ?? {})
          : `<pre class="text">${e(m.text ?? '')}</pre>`;
      const attachments = m.attachments.length
        ? `<div class="attachments">Attachments (${m.attachments.length})<ul>${m.attachments
            .map((a) => `<li>${e(a.filename || '(unnamed)')} — ${e(a.contentType)}, ${e(formatSize(a.size))}${a.inline ? ' (inline)' : ''}</li>`)
            .join('')}</ul></div>`
        : '';
      const direction = m.direction === 'inbound' ? 'Received' : 'Sent';
      return `<article class="message ${m.direction}" id="m${i + 1}"><header><div class="direction">${i + 1}. ${direction}</div><table class="meta">${[
        row('From', address(m.from)),
        row('To', addresses(m.to)),
        row('Cc', addresses(m.cc)),
        row('Date', formatDate(m.date ?? m.receivedAt, zone)),
        row('Subject', m.subject),
      ].join('')}</table></header><div class="body">${body}</div>${attachments}</article>`;
    })
    .join('\n');

  const title = `${opts.companyName ? `${opts.companyName} — ` : ''}${session.subject || session.id}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head><body>
<header class="transcript">${opts.companyName ? `<div class="company">${e(opts.companyName)}</div>` : ''}<h1>Email transcript</h1><table class="meta">${head}</table></header>
${messages}
<footer class="transcript">Generated ${e(formatDate(opts.generatedAt, zone))} · session ${e(session.id)}</footer>
</body></html>
`;
}

/** Reads the inline images (cid → bytes) out of one raw message; an adapter (mailparser) implements it. */
export type InlineImageReader = (raw: Uint8Array) => Promise<{ contentId: string; contentType: string; data: Uint8Array }[]>;

export interface TranscriptDeps {
  sessions: { detail(id: string): Promise<SessionDetail> };
  renderer: PdfRenderer;
  clock: Clock;
  logger: Logger;
  companyName(): Promise<string>;
  queueName?(id: string): Promise<string | undefined>;
  timeZone?: string;
  /** With these three, `cid:` images are shown from the stored raw message; without, they become placeholders. */
  store?: Store;
  blobs?: BlobStore;
  inlineImages?: InlineImageReader;
  /** Inline image bytes taken per transcript (default 10 MB); beyond it, placeholders. */
  maxInlineBytes?: number;
}

export interface TranscriptService {
  pdf(sessionId: string): Promise<Uint8Array>;
}

function base64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 0x8000) out += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(out);
}

/** Renders the thread as it stands (GET /api/sessions/:id/transcript.pdf, and the CRM PDF attachment). */
export class SessionTranscripts implements TranscriptService {
  constructor(private readonly deps: TranscriptDeps) {}

  /** The thread as it stands, or up to (and including) one message (for "after each reply" PDFs). */
  async html(sessionId: string, uptoMessageId?: string): Promise<string> {
    const whole = await this.deps.sessions.detail(sessionId);
    const cut = uptoMessageId ? whole.messages.findIndex((m) => m.id === uptoMessageId) : -1;
    const session = cut >= 0 ? { ...whole, messages: whole.messages.slice(0, cut + 1) } : whole;
    const [companyName, queueName, inlineImages] = await Promise.all([
      this.deps.companyName(),
      session.queueId && this.deps.queueName ? this.deps.queueName(session.queueId).catch(() => undefined) : Promise.resolve(undefined),
      this.resolveInlineImages(session),
    ]);
    return transcriptHtml(session, {
      companyName,
      generatedAt: this.deps.clock.now(),
      ...(this.deps.timeZone ? { timeZone: this.deps.timeZone } : {}),
      ...(queueName ? { queueName } : {}),
      inlineImages,
    });
  }

  async pdf(sessionId: string, uptoMessageId?: string): Promise<Uint8Array> {
    return this.deps.renderer.render(await this.html(sessionId, uptoMessageId));
  }

  /** cid → data URL for the messages whose HTML refers to inline images, within a byte budget. */
  private async resolveInlineImages(session: SessionDetail): Promise<Record<string, Record<string, string>>> {
    const { store, blobs, inlineImages } = this.deps;
    const out: Record<string, Record<string, string>> = {};
    if (!store || !blobs || !inlineImages) return out;
    let budget = this.deps.maxInlineBytes ?? 10 * 1024 * 1024;
    for (const m of session.messages) {
      if (budget <= 0) break;
      if (!m.html || !/src\s*=\s*["']?cid:/i.test(m.html)) continue;
      try {
        const stored = await store.get<StoredMessage>(messageKey(m.id));
        const raw = stored?.rawKey ? await blobs.get(stored.rawKey) : undefined;
        if (!raw) continue;
        const images: Record<string, string> = {};
        for (const img of await inlineImages(raw)) {
          if (img.data.byteLength > budget || !/^image\/(?:png|jpeg|jpg|gif|webp|bmp)$/i.test(img.contentType)) continue;
          budget -= img.data.byteLength;
          images[img.contentId] = `data:${img.contentType.toLowerCase()};base64,${base64(img.data)}`;
        }
        out[m.id] = images;
      } catch (err) {
        // A message whose images cannot be read still renders, with placeholders.
        this.deps.logger.warn({ sessionId: session.id, messageId: m.id, err: (err as Error).message }, 'inline images could not be read');
      }
    }
    return out;
  }
}

/** Where no browser exists (Cloudflare Workers): the route answers 503. */
export const unavailableTranscripts: TranscriptService = {
  pdf: () => Promise.reject(new AppError('dependency_unavailable', 'PDF transcripts need a browser; they are made by the Node service')),
};

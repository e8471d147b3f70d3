// Bounce / delivery-status-notification parsing (RFC 3464 and common non-standard bounces): which of
// our outbound messages a DSN is about, for whom it failed, and whether the failure is permanent.
// Pure: works on raw bytes with a small bounded MIME walker; never throws, returns null when the
// message is not a bounce.
import { normalizeMessageId, sessionIdFromMessageId, splitMessageIds } from '../threading/match.js';
import { robotLocalPart } from '../policies/loop-guard.js';
import type { InboundMail } from './inbound.js';

export interface BounceRecipient {
  /** Lowercased address (Original-Recipient when given, else Final-Recipient, else from the text). */
  address: string;
  /** DSN Action (`failed`, `delayed`, `delivered`, `relayed`, `expanded`), lowercased, or null. */
  action: string | null;
  /** Enhanced status code such as `5.1.1`, or null. */
  status: string | null;
  /** Diagnostic text without its type prefix (`smtp; `), one line, or null. */
  diagnostic: string | null;
}

export interface BounceReport {
  /** Message-IDs of the returned original message(s), normalized (no `<>`). */
  originalMessageIds: string[];
  /** Message-IDs we issued (`s.<sessionId>.<random>@domain`) found anywhere in the DSN. */
  ourMessageIds: { messageId: string; sessionId: string }[];
  recipients: BounceRecipient[];
  /** True for a permanent failure (5.x.x or Action failed); false for delays (4.x.x) and success DSNs. */
  permanent: boolean;
  /** One human-readable line, e.g. `550 5.1.1 <x@y>: user unknown`. */
  reason: string;
}

/** Only this much of the raw message is read. */
export const BOUNCE_MAX_BYTES = 2 * 1024 * 1024;
const MAX_DEPTH = 8;
const MAX_PARTS = 200;
const MAX_HEADERS = 500;
const MAX_RECIPIENTS = 100;
const MAX_IDS = 50;
const MAX_REASON = 300;

interface Field {
  /** Lowercased name. */
  name: string;
  /** Unfolded raw value (binary string: one char per byte). */
  value: string;
}

interface Entity {
  fields: Field[];
  body: string;
}

interface ContentType {
  type: string;
  params: Record<string, string>;
}

interface Walk {
  parts: number;
  dsnBlocks: string[];
  /** Header blocks of returned originals (message/rfc822, text/rfc822-headers). */
  originals: Field[][];
  /** Decoded human text of the bounce's own text parts. */
  texts: string[];
  /** Decoded text of returned originals (for the token scan only). */
  returned: string[];
  feedbackReport: boolean;
}

/** Parses a DSN / bounce for a message we sent; null when the message is not a bounce. */
/**
 * `opts.latin1`: a native byte → binary-string decoder (Node's `Buffer#toString('latin1')`), much faster than the
 * portable one used otherwise; it must map each byte to the code point of the same value.
 */
export function parseBounce(raw: Uint8Array, opts: { latin1?: (bytes: Uint8Array) => string } = {}): BounceReport | null {
  try {
    return parse(raw, opts.latin1 ?? bytesToBinary);
  } catch {
    return null;
  }
}

function parse(raw: Uint8Array, latin1: (bytes: Uint8Array) => string): BounceReport | null {
  if (!(raw instanceof Uint8Array) || raw.length === 0) return null;
  const input = latin1(raw.subarray(0, BOUNCE_MAX_BYTES)).replace(/\r\n?/g, '\n');
  const top = splitEntity(input);
  if (top.fields.length === 0) return null;

  const walk: Walk = { parts: 0, dsnBlocks: [], originals: [], texts: [], returned: [], feedbackReport: false };
  walkEntity(top, 0, walk);

  const topType = parseContentType(header(top.fields, 'content-type'));
  const reportType = (topType.params['report-type'] ?? '').toLowerCase();
  const isDsn = walk.dsnBlocks.length > 0 || (topType.type === 'multipart/report' && reportType === 'delivery-status');
  if (!isDsn && (walk.feedbackReport || reportType === 'feedback-report')) return null;

  const subject = decodeHeaderText(header(top.fields, 'subject') ?? '');
  const explanation = walk.texts.map(explanationOf).join('\n');
  if (!isDsn && !looksLikeBounce(top.fields, subject, walk, explanation)) return null;

  // Recipients: the DSN fields first, then what the text says.
  let recipients: BounceRecipient[] = [];
  for (const block of walk.dsnBlocks) recipients.push(...parseDsnFields(block));
  if (recipients.length === 0) {
    for (const t of walk.texts) {
      if (/^(?:final|original)-recipient[ \t]*:/im.test(t)) recipients.push(...parseDsnFields(t));
    }
  }
  if (recipients.length === 0) {
    recipients = textRecipients(top.fields, walk, explanation);
    // One recipient and no detail: the bounce's first error line is about it.
    const only = recipients.length === 1 ? recipients[0] : undefined;
    if (only && !only.diagnostic) {
      only.diagnostic = failureLine(explanation);
      only.status ??= statusCode(only.diagnostic);
    }
  }
  recipients = dedupeRecipients(recipients).slice(0, MAX_RECIPIENTS);

  // Original Message-IDs: headers of returned parts, then Message-ID lines quoted in the text.
  const ownId = normalizeMessageId(header(top.fields, 'message-id'));
  const originalMessageIds: string[] = [];
  const addId = (id: string | null): void => {
    if (id && id !== ownId && !originalMessageIds.includes(id) && originalMessageIds.length < MAX_IDS) originalMessageIds.push(id);
  };
  for (const fields of walk.originals) addId(normalizeMessageId(firstMessageId(header(fields, 'message-id'))));
  for (const t of walk.texts) for (const id of quotedMessageIds(t)) addId(id);
  // A returned message whose headers did not parse (e.g. a leading blank line): its quoted lines.
  if (originalMessageIds.length === 0) for (const t of walk.returned) for (const id of quotedMessageIds(t)) addId(id);
  // Some MTAs (Gmail) point at the original through In-Reply-To instead of returning it.
  if (originalMessageIds.length === 0) for (const id of splitMessageIds(header(top.fields, 'in-reply-to'))) addId(id);

  const ourMessageIds = findOurIds([
    ...originalMessageIds,
    ...splitMessageIds(header(top.fields, 'in-reply-to')),
    ...splitMessageIds(header(top.fields, 'references')),
    ...walk.texts.flatMap(ourIdTokens),
    ...walk.returned.flatMap(ourIdTokens),
    ...ourIdTokens(input),
  ]);

  const permanent = isPermanent(recipients, subject, explanation);
  const reason = reasonLine(recipients, permanent, explanation, subject);
  return { originalMessageIds, ourMessageIds, recipients, permanent, reason };
}

// ---------------------------------------------------------------------------------------------
// Bytes and encodings

function bytesToBinary(bytes: Uint8Array): string {
  let out = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return out;
}

function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Decodes a binary string in `charset`; unknown or missing charsets try UTF-8, then windows-1252. */
function decodeText(binary: string, charset?: string): string {
  if (!/[\x80-\xff\x1b]/.test(binary)) return binary;
  const bytes = binaryToBytes(binary);
  const cs = (charset ?? '').trim().toLowerCase().replace(/^"|"$/g, '');
  if (cs && cs !== 'us-ascii' && cs !== 'ascii' && cs !== 'utf-8' && cs !== 'utf8') {
    try {
      return new TextDecoder(cs).decode(bytes);
    } catch {
      // unknown charset: fall through
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    try {
      return new TextDecoder('windows-1252').decode(bytes);
    } catch {
      return binary;
    }
  }
}

function decodeBase64(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9+/]/g, '');
  const usable = clean.slice(0, clean.length - (clean.length % 4 === 1 ? 1 : 0));
  const padded = usable + '='.repeat((4 - (usable.length % 4)) % 4);
  try {
    return atob(padded);
  } catch {
    return '';
  }
}

function decodeQuotedPrintable(s: string): string {
  return s.replace(/=[ \t]*\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function decodeTransfer(body: string, cte: string | undefined): string {
  const enc = (cte ?? '').trim().toLowerCase();
  // Only text-like parts are decoded, so line ends are normalized like the rest of the input.
  if (enc === 'base64') return decodeBase64(body).replace(/\r\n?/g, '\n');
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body).replace(/\r\n?/g, '\n');
  return body;
}

/** RFC 2047 encoded words, then raw 8-bit text as UTF-8 or windows-1252. */
function decodeHeaderText(value: string): string {
  const joined = value.replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?)/g, '$1');
  let count = 0;
  const decoded = joined.replace(/=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g, (whole, cs: string, enc: string, text: string) => {
    if (++count > 50) return whole;
    const bin = enc.toUpperCase() === 'B' ? decodeBase64(text) : decodeQuotedPrintable(text.replace(/_/g, ' '));
    return decodeText(bin, cs.split('*')[0]);
  });
  return decodeText(decoded);
}

// ---------------------------------------------------------------------------------------------
// A small MIME walker

const FIELD_LINE = /^([!-9;-~]+)[ \t]*:(.*)$/;

function parseFields(lines: string[]): Field[] {
  const fields: Field[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      const last = fields[fields.length - 1];
      if (last) last.value += ' ' + line.trim();
      continue;
    }
    const m = FIELD_LINE.exec(line);
    if (m && fields.length < MAX_HEADERS) fields.push({ name: (m[1] ?? '').toLowerCase(), value: (m[2] ?? '').trim() });
  }
  return fields;
}

/** Splits header block and body; text that does not start with a header line has no headers. */
function splitEntity(text: string): Entity {
  let start = 0;
  // Leading blank lines and an mbox `From ` line.
  while (text.startsWith('\n', start)) start++;
  if (text.startsWith('From ', start)) {
    const nl = text.indexOf('\n', start);
    start = nl < 0 ? text.length : nl + 1;
  }
  const lines: string[] = [];
  let pos = start;
  while (pos < text.length && lines.length < MAX_HEADERS * 4) {
    const nl = text.indexOf('\n', pos);
    const line = nl < 0 ? text.slice(pos) : text.slice(pos, nl);
    const next = nl < 0 ? text.length : nl + 1;
    if (line.trim() === '') {
      pos = next;
      break;
    }
    if (!(FIELD_LINE.test(line) || (lines.length > 0 && /^[ \t]/.test(line)))) break;
    lines.push(line);
    pos = next;
  }
  if (lines.length === 0) return { fields: [], body: text.slice(start) };
  return { fields: parseFields(lines), body: text.slice(pos) };
}

function header(fields: Field[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

function parseContentType(value: string | undefined): ContentType {
  const params: Record<string, string> = {};
  if (!value) return { type: '', params };
  value = value.slice(0, 4000);
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const rest = semi < 0 ? '' : value.slice(semi + 1);
  const re = /([A-Za-z0-9_.*-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  let m: RegExpExecArray | null;
  let n = 0;
  while ((m = re.exec(rest)) && n++ < 50) {
    const name = (m[1] ?? '').toLowerCase();
    if (!(name in params)) params[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  }
  return { type, params };
}

/** The parts of a multipart body, or null when no delimiter line is found. */
function splitMultipart(body: string, boundary: string): string[] | null {
  const delim = '--' + boundary;
  const parts: string[] = [];
  let current: string[] | null = null;
  let found = false;
  let pos = 0;
  while (pos <= body.length) {
    const nl = body.indexOf('\n', pos);
    const line = nl < 0 ? body.slice(pos) : body.slice(pos, nl);
    pos = nl < 0 ? body.length + 1 : nl + 1;
    if (line.startsWith(delim)) {
      const rest = line.slice(delim.length).trim();
      if (rest === '' || rest === '--') {
        found = true;
        if (current) parts.push(current.join('\n'));
        if (rest === '--' || parts.length >= MAX_PARTS) {
          current = null;
          break;
        }
        current = [];
        continue;
      }
    }
    if (current) current.push(line);
  }
  if (current && current.length > 0) parts.push(current.join('\n'));
  return found ? parts : null;
}

function walkEntity(entity: Entity, depth: number, walk: Walk): void {
  if (++walk.parts > MAX_PARTS || depth > MAX_DEPTH) return;
  const ct = parseContentType(header(entity.fields, 'content-type'));
  const type = ct.type || 'text/plain';
  const cte = header(entity.fields, 'content-transfer-encoding');

  if (type.startsWith('multipart/')) {
    const boundary = ct.params['boundary'];
    const parts = boundary ? splitMultipart(entity.body, boundary) : null;
    if (parts) {
      const childDefault = type === 'multipart/digest' ? 'message/rfc822' : null;
      for (const p of parts) {
        const child = splitEntity(p);
        if (childDefault && !header(child.fields, 'content-type')) child.fields.push({ name: 'content-type', value: childDefault });
        walkEntity(child, depth + 1, walk);
      }
      return;
    }
    walk.texts.push(decodeText(entity.body, ct.params['charset']));
    return;
  }

  const body = decodeTransfer(entity.body, cte);
  switch (type) {
    case 'message/delivery-status':
    case 'message/global-delivery-status':
      walk.dsnBlocks.push(decodeText(body, 'utf-8'));
      return;
    case 'message/feedback-report':
      walk.feedbackReport = true;
      return;
    case 'message/rfc822':
    case 'message/global':
    case 'message/partial': {
      const inner = splitEntity(body);
      if (inner.fields.length > 0) walk.originals.push(inner.fields);
      walk.returned.push(decodeText(body));
      return;
    }
    case 'text/rfc822-headers':
    case 'message/global-headers':
    case 'message/rfc822-headers': {
      const inner = splitEntity(body);
      if (inner.fields.length > 0) walk.originals.push(inner.fields);
      walk.returned.push(decodeText(body));
      return;
    }
    default:
      break;
  }
  if (type.startsWith('text/')) {
    const text = decodeText(body, ct.params['charset']);
    walk.texts.push(type === 'text/html' ? htmlToPlain(text) : text);
  }
}

function htmlToPlain(html: string): string {
  return html
    .replace(/<br\s*\/?>|<\/(?:p|div|tr|li|h\d|table|blockquote)>/gi, '\n')
    .replace(/<[^<>]*>/g, '')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#39;|&apos;/gi, "'")
    .replace(/&nbsp;/gi, ' ')
    .replace(/&amp;/gi, '&');
}

// ---------------------------------------------------------------------------------------------
// Recognizing non-standard bounces

const STRONG_BODY_MARKERS: RegExp[] = [
  /This is the qmail-send program/i,
  /This message was created automatically by mail delivery software/i,
  /This is the mail system at host/i,
  /This is the (?:DragonFly Mail Agent|Postfix program)/i,
  /I'm afraid I wasn't able to deliver your message/i,
  /The original message was received at .*\n[\s\S]{0,400}(?:Transcript of session follows|could not be delivered|User unknown)/i,
  /Transcript of session follows/i,
  /Delivery has failed to these recipients or (?:groups|distribution lists)/i,
  /Your message did not reach some or all of the intended recipients/i,
  /Delivery to the following recipients? (?:failed|has been delayed)/i,
  /The following addresses had permanent fatal errors/i,
  /could not be delivered to (?:one or more|the following|all) (?:of its )?recipients?/i,
  /Sorry, we were unable to deliver your message/i,
  /Unable to deliver (?:your )?message to the following (?:address|recipient)/i,
  /has not yet been delivered to one or more of its\s+recipients/i,
  /Your message (?:wasn't|was not|couldn't be|could not be) delivered/i,
  /"notificationType"\s*:\s*"Bounce"/,
];

const BOUNCE_SUBJECT =
  /^\s*(?:undeliver(?:ed|able)\b|undelivered mail|delivery status notification|mail delivery (?:failed|failure|system|subsystem)|returned mail\b|failure notice|delivery fail|delivery notification|non[- ]?deliver|nondeliverable|message delivery fail|mail system error|warning: could not send|delayed mail|could not send message|message status - undeliverable|mail could not be delivered|notice of delivery failure|delivery (?:report|problem|error|delayed)|mail error|mail failure|returned to sender|unzustellbar|non remis|non recapitabile|no se puede entregar|не доставлено|ваше сообщение не доставлено|メールエラー|配信(?:エラー|不能|失敗))/i;
const BOUNCE_SUBJECT_ANYWHERE = /undelivered mail returned to sender|delivery status notification \((?:failure|delay)\)|mail delivery failed|returned mail:|undeliverable:|failure notice|could not be delivered|не доставлено/i;

const FAILURE_TEXT =
  /\b[45]\d\d[ -]?(?:[ -][45]\.\d{1,3}\.\d{1,3}\b|[^\n]{0,80}(?:user|mailbox|recipient|address|domain|host|relay|rejected|refused|denied|unknown))|\b[45]\.\d{1,3}\.\d{1,3}\b|user unknown|unknown user|no such (?:user|mailbox|recipient)|mailbox (?:unavailable|full|is full|not found)|does not exist|recipient address rejected|host or domain name not found|unrouteable|over ?quota|quota exceeded|could not be delivered|couldn't be delivered|delivery (?:has )?failed|permanent(?:ly)? (?:error|failure|fail)|giving up|given up|undeliverable|remote host said|delivery to the following/i;

function looksLikeBounce(fields: Field[], subject: string, walk: Walk, explanation: string): boolean {
  if (header(fields, 'x-failed-recipients')) return true;
  const allText = walk.texts.join('\n').slice(0, 200_000);
  if (STRONG_BODY_MARKERS.some((re) => re.test(allText))) return true;

  const from = decodeHeaderText(header(fields, 'from') ?? '');
  const daemonSender =
    /(?:^|[<\s"(])(?:mailer-daemon|mailerdaemon|mail-daemon|post_?master|mdaemon)(?:@|[>\s")]|$)/i.test(from) ||
    /mail delivery (?:subsystem|system|service)|mailer[- ]daemon/i.test(from);
  const returnPath = (header(fields, 'return-path') ?? '').trim();
  const nullSender = returnPath === '<>' || returnPath === '' && fields.some((f) => f.name === 'return-path') || /^<?mailer-daemon(?:@[^>]*)?>?$/i.test(returnPath);
  const autoSubmitted = /^(?!no\b)\S/i.test((header(fields, 'auto-submitted') ?? '').trim());
  const subjectBounce = BOUNCE_SUBJECT.test(subject) || BOUNCE_SUBJECT_ANYWHERE.test(subject);
  const failureText = FAILURE_TEXT.test(explanation) || walk.originals.length > 0;

  if (daemonSender && (subjectBounce || failureText)) return true;
  if (subjectBounce && (nullSender || autoSubmitted) ) return true;
  if (subjectBounce && FAILURE_TEXT.test(explanation) && walk.originals.length > 0) return true;
  return false;
}

/** The bounce's own words: a text part up to where the copy of the original message starts. */
function explanationOf(text: string): string {
  const t = text.slice(0, 100_000);
  const marker =
    /^[ \t*=-]*(?:Below this line is a copy of the message|This is a copy of the message|Original message (?:follows|headers)|original message headers|Included is a copy of the message|The original message (?:was|is) (?:included|attached)|Original message[ \t]*-{2,}|Message headers follow|Undelivered message headers|Returned message|The text you sent follows)/im.exec(t);
  const quotedHeaders = /^(?:return-path|received|message-id|dkim-signature|mime-version)[ \t]*:/im.exec(t);
  let end = t.length;
  if (marker) end = Math.min(end, marker.index);
  if (quotedHeaders) end = Math.min(end, quotedHeaders.index);
  return t.slice(0, end);
}

// ---------------------------------------------------------------------------------------------
// Recipients

/** Per-recipient fields of a message/delivery-status body (blank-line separated, fields may be folded). */
function parseDsnFields(text: string): BounceRecipient[] {
  const out: BounceRecipient[] = [];
  const lines = text.split('\n').slice(0, 5000);
  let group: Field[] = [];
  const flush = (): void => {
    if (group.length > 0) {
      const r = recipientFromGroup(group);
      if (r && out.length < MAX_RECIPIENTS) out.push(r);
    }
    group = [];
  };
  for (const line of lines) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (/^[ \t]/.test(line)) {
      const last = group[group.length - 1];
      if (last) last.value += ' ' + line.trim();
      continue;
    }
    const m = FIELD_LINE.exec(line);
    if (!m) continue;
    const name = (m[1] ?? '').toLowerCase();
    const value = (m[2] ?? '').trim();
    // Recipient blocks missing their blank-line separator: a repeated recipient field starts a new
    // one (taking along an Original-Recipient that came just before a repeated Final-Recipient).
    if ((name === 'final-recipient' || name === 'original-recipient') && group.some((f) => f.name === name)) {
      const last = group[group.length - 1];
      const carry = name === 'final-recipient' && last?.name === 'original-recipient' ? group.pop() : undefined;
      flush();
      if (carry) group.push(carry);
    }
    group.push({ name, value });
  }
  flush();
  return out;
}

function recipientFromGroup(group: Field[]): BounceRecipient | null {
  const get = (n: string): string | undefined => group.find((f) => f.name === n)?.value;
  const address =
    cleanAddress(get('original-recipient')) ?? cleanAddress(get('final-recipient')) ?? cleanAddress(get('x-actual-recipient'));
  if (!address) return null;
  const actionRaw = get('action');
  const action = actionRaw ? (actionRaw.trim().split(/[\s(;]/)[0] ?? '').toLowerCase() || null : null;
  const diagnostic = cleanDiagnostic(get('diagnostic-code'));
  const status = statusCode(get('status')) ?? statusCode(diagnostic);
  return { address, action, status, diagnostic };
}

function cleanAddress(value: string | undefined): string | null {
  if (!value) return null;
  let v = decodeText(value).trim().replace(/^[A-Za-z0-9/_.-]+[ \t]*;[ \t]*/, '');
  const angled = /<([^<>\s]+@[^<>\s]+)>/.exec(v);
  if (angled?.[1]) v = angled[1];
  v = v.replace(/^<|>$/g, '').replace(/^["']|["']$/g, '').trim().toLowerCase();
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(v) || v.length > 320) return null;
  return v;
}

function cleanDiagnostic(value: string | undefined): string | null {
  if (!value) return null;
  const v = oneLine(decodeText(value).replace(/^[A-Za-z0-9/_.-]+[ \t]*;[ \t]*/, ''));
  return v === '' ? null : v.slice(0, 1000);
}

function statusCode(value: string | null | undefined): string | null {
  if (!value) return null;
  return /(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.]\d)/.exec(value)?.[1] ?? null;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

const LOCAL_CHAR = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]/;
const DOMAIN_CHAR = /[A-Za-z0-9.-]/;

/** The first plausible address in a line, found around each `@` (linear, no backtracking). */
function addressIn(line: string): string | null {
  let at = line.indexOf('@');
  for (let tries = 0; at >= 0 && tries < 20; tries++) {
    let a = at;
    while (a > 0 && LOCAL_CHAR.test(line[a - 1] ?? '')) a--;
    let b = at + 1;
    while (b < line.length && DOMAIN_CHAR.test(line[b] ?? '')) b++;
    const candidate = line.slice(a, b).replace(/[.-]+$/, '');
    if (a < at && /@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/.test(candidate)) return candidate;
    at = line.indexOf('@', at + 1);
  }
  return null;
}

/** Recipients of a non-standard bounce: X-Failed-Recipients, then the usual MTA text layouts. */
function textRecipients(fields: Field[], walk: Walk, explanation: string): BounceRecipient[] {
  const out: BounceRecipient[] = [];
  const add = (addr: string | undefined, diagnostic: string | null): void => {
    const address = cleanAddress(addr);
    if (!address || out.length >= MAX_RECIPIENTS) return;
    const existing = out.find((r) => r.address === address);
    if (existing) {
      if (!existing.diagnostic && diagnostic) {
        existing.diagnostic = diagnostic;
        existing.status = statusCode(diagnostic);
      }
      return;
    }
    out.push({ address, action: null, status: statusCode(diagnostic), diagnostic });
  };

  // Lines are clipped so per-line patterns stay cheap on hostile input.
  const lines = explanation.split('\n').slice(0, 5000).map((l) => l.slice(0, 2000));
  const following = (i: number): string | null => {
    const parts: string[] = [];
    for (let j = i + 1; j < lines.length && j <= i + 8; j++) {
      const l = lines[j] ?? '';
      if (l.trim() === '' || /^[ \t]*<[^<>\s@]+@[^<>\s]+>/.test(l)) break;
      parts.push(l.trim());
    }
    const d = oneLine(parts.join(' '));
    return d === '' ? null : d.slice(0, 1000);
  };

  for (let i = 0; i < lines.length && out.length < MAX_RECIPIENTS; i++) {
    const line = lines[i] ?? '';
    // qmail / Postfix: `<user@host>:` or `<user@host> (expanded from <x>): host ... said: ...`
    let m = /^[ \t]*<([^<>\s@]+@[^<>\s]+)>(?:[ \t]*\([^)]*\))?[ \t]*:[ \t]*(.*)$/.exec(line);
    if (m) {
      const rest = oneLine(m[2] ?? '');
      const more = following(i);
      add(m[1], oneLine([rest, more ?? ''].join(' ')) || null);
      continue;
    }
    // sendmail: `<user@host>... User unknown`
    m = /^[ \t]*<?([^<>\s@]+@[^<>\s]+?)>?\.\.\.[ \t]*(.*)$/.exec(line);
    if (m) {
      add(m[1], oneLine(m[2] ?? '') || null);
      continue;
    }
    // Exim / Exchange: an indented address (or one alone on a line) after "... failed:".
    if (/(?:address(?:\(es\)|es)?|recipient(?:s|\(s\))?(?: or groups)?)(?: failed)?[ \t]*:[ \t]*$/i.test(line)) {
      for (let j = i + 1; j < lines.length && j <= i + 6; j++) {
        const l = lines[j] ?? '';
        if (l.trim() === '') continue;
        const a = /^[ \t]*<?([^<>\s@]+@[^<>\s]+?)>?(?:<mailto:[^>]*>)?(?:[ \t]+on[ \t].*)?[ \t]*$/.exec(l);
        if (a) add(a[1], following(j));
        break;
      }
    }
  }

  if (out.length === 0) {
    const failed = header(fields, 'x-failed-recipients');
    if (failed) for (const a of failed.split(/[,\s]+/).slice(0, MAX_RECIPIENTS)) add(a, null);
  }

  // Amazon SES notifications (JSON).
  if (out.length === 0) {
    const json = walk.texts.join('\n');
    const re = /"emailAddress"\s*:\s*"([^"]+)"(?:\s*,\s*"action"\s*:\s*"([^"]*)")?(?:\s*,\s*"status"\s*:\s*"([^"]*)")?(?:\s*,\s*"diagnosticCode"\s*:\s*"((?:[^"\\]|\\.)*)")?/g;
    let m: RegExpExecArray | null;
    let n = 0;
    while ((m = re.exec(json)) && n++ < MAX_RECIPIENTS) {
      const address = cleanAddress(m[1]);
      if (!address) continue;
      const diagnostic = cleanDiagnostic(m[4]);
      out.push({ address, action: m[2]?.toLowerCase() || null, status: statusCode(m[3]) ?? statusCode(diagnostic), diagnostic });
    }
  }

  // "There was an error delivering your mail to <x@y>."
  if (out.length === 0) {
    const m = /(?:error|fail\w*|unable|could not|couldn't)\b[^\n]{0,60}\b(?:deliver|send)\w*\b[^\n]{0,60}?\bto:?[ \t]*<([^<>\s@]+@[^<>\s]+)>/i.exec(explanation);
    if (m) add(m[1], null);
  }

  // Last resort: an address on a line that also carries an SMTP error.
  if (out.length === 0) {
    const own = new Set(['from', 'to', 'return-path'].map((n) => cleanAddress(header(fields, n))).filter((a): a is string => !!a));
    for (const line of lines) {
      if (!FAILURE_TEXT.test(line)) continue;
      const address = cleanAddress(addressIn(line) ?? undefined);
      if (address && !own.has(address)) {
        add(address, oneLine(line).slice(0, 1000));
        break;
      }
    }
  }
  return out;
}

function dedupeRecipients(list: BounceRecipient[]): BounceRecipient[] {
  const out: BounceRecipient[] = [];
  for (const r of list) {
    const existing = out.find((o) => o.address === r.address);
    if (!existing) out.push(r);
    else {
      existing.action ??= r.action;
      existing.status ??= r.status;
      existing.diagnostic ??= r.diagnostic;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Message-IDs

function firstMessageId(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return /<[^<>\s]+>/.exec(value)?.[0] ?? value.trim().split(/\s+/)[0];
}

/** `Message-ID: <…>` lines quoted in a text (original headers pasted into the bounce). */
function quotedMessageIds(text: string): string[] {
  const out: string[] = [];
  const re = /^[ \t>]*(?:message-id|original-message-id|x-original-message-id)[ \t]*:[ \t]*(?:\n[ \t]+)?(<[^<>\s&@]+@[^<>\s&]+>|[^\s<>&;"@]+@[A-Za-z0-9.-]*[A-Za-z0-9](?=[\s;,)]|$))/gim;
  const scanned = text.slice(0, 1_000_000);
  let m: RegExpExecArray | null;
  let n = 0;
  while ((m = re.exec(scanned)) && n++ < MAX_IDS) {
    const id = normalizeMessageId(m[1]);
    if (id && !out.includes(id)) out.push(id);
  }
  return out;
}

// Linear on hostile input: one character class for the domain, trimmed and checked afterwards; a
// token cut by a quoted-printable soft line break (`=` at the end of a line) is skipped.
const OUR_TOKEN = /(?<![A-Za-z0-9._%+-])s\.S[0-9A-HJKMNP-TV-Z]{8,10}\.[0-9A-Za-z]{1,64}@[A-Za-z0-9.-]{1,253}(=\n)?/g;

function ourIdTokens(text: string): string[] {
  const out: string[] = [];
  let n = 0;
  for (const m of text.matchAll(OUR_TOKEN)) {
    if (++n > MAX_IDS * 4) break;
    if (m[1]) continue;
    const token = m[0].replace(/[.-]+$/, '');
    if (/@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(token)) out.push(token);
    if (out.length >= MAX_IDS) break;
  }
  return out;
}

function findOurIds(candidates: string[]): BounceReport['ourMessageIds'] {
  const out: BounceReport['ourMessageIds'] = [];
  for (const c of candidates) {
    const id = normalizeMessageId(c);
    if (!id) continue;
    const sessionId = sessionIdFromMessageId(id);
    if (!sessionId) continue;
    // Same id, different case of the domain → one entry.
    if (out.some((o) => o.messageId.toLowerCase() === id.toLowerCase())) continue;
    out.push({ messageId: id, sessionId });
    if (out.length >= MAX_IDS) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Permanence and reason

type Kind = 'permanent' | 'temporary' | null;

function recipientKind(r: BounceRecipient): Kind {
  if (r.status?.startsWith('5') || r.action === 'failed') return 'permanent';
  if (r.status?.startsWith('4') || r.action === 'delayed') return 'temporary';
  if (r.action === 'delivered' || r.action === 'relayed' || r.action === 'expanded' || r.status?.startsWith('2')) return 'temporary';
  const smtp = /^\s*([45])\d\d\b/.exec(r.diagnostic ?? '')?.[1];
  if (smtp === '5') return 'permanent';
  if (smtp === '4') return 'temporary';
  return null;
}

function isPermanent(recipients: BounceRecipient[], subject: string, explanation: string): boolean {
  const kinds = recipients.map(recipientKind);
  if (kinds.includes('permanent')) return true;
  if (kinds.includes('temporary')) return false;
  const text = subject + '\n' + explanation;
  if (/permanent(?:ly)?\b|fatal error|given up|giving up|not going to try again|failed permanently/i.test(text)) return true;
  if (/\(delay\)|delayed|temporar|warning only|will (?:continue to )?(?:be )?retr|still (?:trying|being retried)|not yet been delivered|deferred/i.test(text)) return false;
  return true;
}

function reasonLine(recipients: BounceRecipient[], permanent: boolean, explanation: string, subject: string): string {
  const pick =
    recipients.find((r) => recipientKind(r) === (permanent ? 'permanent' : 'temporary') && informative(r.diagnostic)) ??
    recipients.find((r) => informative(r.diagnostic)) ??
    null;
  if (pick?.diagnostic) return clip(pick.diagnostic);
  const withStatus = recipients.find((r) => r.status || r.action);
  if (withStatus) return clip(`${withStatus.address}: ${[withStatus.status, withStatus.action].filter(Boolean).join(' ')}`);
  const line = failureLine(explanation);
  if (line) return clip(line);
  const s = oneLine(subject);
  return s ? clip(s) : permanent ? 'Delivery failed' : 'Delivery delayed';
}

/** The first line of the bounce's text that states an error: SMTP replies first, then error phrases. */
function failureLine(explanation: string): string | null {
  const lines = explanation.split('\n').slice(0, 2000).map((l) => l.slice(0, 2000));
  const smtp = /\b[45]\d\d[ -:]+(?:[45]\.\d{1,3}\.\d{1,3}\b)?[^\n]*[A-Za-z]{3}|\b[45]\.\d{1,3}\.\d{1,3}\b/;
  for (const re of [smtp, FAILURE_TEXT]) {
    for (const line of lines) {
      if (!re.test(line)) continue;
      const l = oneLine(line.replace(/^\s*remote host said:\s*/i, ''));
      if (l) return l.slice(0, 1000);
    }
  }
  return null;
}

/** A diagnostic worth showing (not a bare exit code such as `X-Unix; 77`). */
function informative(d: string | null): boolean {
  return !!d && /[A-Za-z]{3}/.test(d);
}

function clip(s: string): string {
  return s.length > MAX_REASON ? s.slice(0, MAX_REASON - 1) + '…' : s;
}

/**
 * Whether a mail comes from the mail system rather than a person, so its bounce-like text may be trusted: a
 * delivery/feedback report structure, an empty Return-Path, `X-Failed-Recipients`, `Auto-Submitted`, or a
 * mailer-daemon/postmaster-like sender. A person quoting a bounce in a reply is none of these (their reply threads
 * normally instead of being filed as a bounce).
 */
export function fromMailSystem(mail: Pick<InboundMail, 'headers' | 'from'>): boolean {
  const h = mail.headers;
  const type = (h['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/report')) return true;
  const returnPath = h['return-path'];
  if (returnPath !== undefined && /^\s*<?\s*>?\s*$/.test(returnPath)) return true;
  if (h['x-failed-recipients']) return true;
  const auto = (h['auto-submitted'] ?? '').trim().toLowerCase();
  if (auto && auto !== 'no') return true;
  const robot = mail.from?.address ? robotLocalPart(mail.from.address) : null;
  return robot === 'mailer-daemon' || robot === 'postmaster' || robot === 'bounce';
}

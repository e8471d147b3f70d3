// Threading (R-SES-2): which session an inbound mail belongs to. Order: In-Reply-To, then every id
// of References (newest first), then our session id inside a Message-ID we issued, then the subject
// token `[#<sessionId>]`, then (optional) sender + normalized subject within a short window.
import { randomBase32 } from '../ids.js';

export interface ThreadHeaders {
  messageId: string | null;
  inReplyTo: string[];
  references: string[];
  subject: string;
  from: string;
}

export type ThreadVia = 'in_reply_to' | 'references' | 'our_message_id' | 'subject_token' | 'subject_window';

export interface ThreadKeys {
  /** Message-IDs to look up, in order of trust (In-Reply-To first, then References newest first). */
  messageIds: { id: string; via: 'in_reply_to' | 'references' }[];
  /** Session ids decoded from Message-IDs we issued (`<s.<sessionId>.<random>@domain>`), in the same order. */
  ourSessionIds: string[];
  /** Session id from a `[#S…]` token in the subject. */
  subjectToken: string | null;
  /** Subject without reply/forward prefixes and our token, lowercased, for the optional window match. */
  normalizedSubject: string;
  sender: string;
}

const TOKEN = /\[#(S[0-9A-HJKMNP-TV-Z]{8,10})\]/;
const OUR_ID = /^s\.(S[0-9A-HJKMNP-TV-Z]{8,10})\.[0-9A-Za-z]+@/;
// Reply/forward prefixes in common mail clients' languages (Re, Fwd, AW, WG, SV, VS, TR, RIF, Antw, Odp, …).
const PREFIX = /^\s*(?:re|fw|fwd|aw|wg|sv|vs|tr|rif|r|antw|odp|ynt|ref|réf|res|enc|doorst|vl|fs)\s*(?:\[\d+\])?\s*[:：]\s*/i;

/** `<abc@host>` or ` abc@host ` → `abc@host`; empty or absurd ids → null. */
export function normalizeMessageId(raw: string | null | undefined): string | null {
  if (!raw) return null;
  const trimmed = raw.trim().replace(/^<+/, '').replace(/>+$/, '').trim();
  if (trimmed.length === 0 || trimmed.length > 998 || /\s/.test(trimmed)) return null;
  return trimmed;
}

/** Splits a References / In-Reply-To header value into ids (mail clients put several, or garbage). */
export function splitMessageIds(value: string | string[] | null | undefined): string[] {
  if (!value) return [];
  const text = Array.isArray(value) ? value.join(' ') : value;
  const bracketed = text.match(/<[^<>\s]+>/g);
  const parts = bracketed ?? text.split(/[\s,]+/);
  const out: string[] = [];
  for (const p of parts.slice(0, 200)) {
    const id = normalizeMessageId(p);
    if (id && !out.includes(id)) out.push(id);
  }
  return out;
}

export function normalizeSubject(subject: string): string {
  let s = subject.replace(TOKEN, ' ');
  for (let i = 0; i < 10 && PREFIX.test(s); i++) s = s.replace(PREFIX, '');
  return s.replace(/\s+/g, ' ').trim().toLowerCase();
}

export function subjectToken(subject: string): string | null {
  return TOKEN.exec(subject)?.[1] ?? null;
}

/** The session id encoded in one of our Message-IDs, if it is one. */
export function sessionIdFromMessageId(id: string): string | null {
  return OUR_ID.exec(id)?.[1] ?? null;
}

/** A Message-ID for mail we send in a session: replies thread even when the subject was edited. */
export function makeMessageId(sessionId: string, domain: string, random = randomBase32(16).toLowerCase()): string {
  return `<s.${sessionId}.${random}@${domain}>`;
}

/** Adds the `[#<sessionId>]` token to a subject once (R-GLB-2). */
export function withSubjectToken(subject: string, sessionId: string): string {
  return subjectToken(subject) === sessionId ? subject : `${subject.trim()} [#${sessionId}]`.trim();
}

export function threadKeys(h: ThreadHeaders): ThreadKeys {
  const messageIds: ThreadKeys['messageIds'] = [];
  const self = normalizeMessageId(h.messageId);
  for (const id of h.inReplyTo) if (id !== self && !messageIds.some((m) => m.id === id)) messageIds.push({ id, via: 'in_reply_to' });
  for (const id of [...h.references].reverse()) if (id !== self && !messageIds.some((m) => m.id === id)) messageIds.push({ id, via: 'references' });
  const ourSessionIds: string[] = [];
  for (const { id } of messageIds) {
    const sid = sessionIdFromMessageId(id);
    if (sid && !ourSessionIds.includes(sid)) ourSessionIds.push(sid);
  }
  return {
    messageIds,
    ourSessionIds,
    subjectToken: subjectToken(h.subject),
    normalizedSubject: normalizeSubject(h.subject),
    sender: h.from.trim().toLowerCase(),
  };
}

export interface ThreadLookups {
  /** Session owning each Message-ID the service has seen or issued. */
  sessionByMessageId: ReadonlyMap<string, string>;
  /** Session ids that exist (to trust a token or an id we decoded). */
  existingSessions: ReadonlySet<string>;
  /** Optional: a session of the same sender with the same normalized subject within the window. */
  subjectWindowMatch?: string | null;
}

export interface ThreadMatch {
  sessionId: string;
  via: ThreadVia;
}

/** Picks the session from the lookups, in the order of R-SES-2; null → a new session. */
export function decideThread(keys: ThreadKeys, found: ThreadLookups): ThreadMatch | null {
  for (const { id, via } of keys.messageIds) {
    const sid = found.sessionByMessageId.get(id);
    if (sid) return { sessionId: sid, via };
  }
  for (const sid of keys.ourSessionIds) if (found.existingSessions.has(sid)) return { sessionId: sid, via: 'our_message_id' };
  if (keys.subjectToken && found.existingSessions.has(keys.subjectToken)) return { sessionId: keys.subjectToken, via: 'subject_token' };
  if (found.subjectWindowMatch) return { sessionId: found.subjectWindowMatch, via: 'subject_window' };
  return null;
}

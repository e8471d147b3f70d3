// Outbound composition rules (R-GLB-2, R-GLB-3, R-ARP-4, R-AGT-3, R-REL-4): subjects, threading headers,
// and header safety. Pure: the send-reply use case applies them, nodemailer writes the MIME.
import { subjectToken, withSubjectToken } from '../threading/match.js';

/** CR, LF or NUL in a subject, name or address would let a caller inject headers: refused, never sent. */
export function headerUnsafe(value: string): boolean {
  return /[\r\n\0]/.test(value);
}

export type SubjectDecision = { ok: true; subject: string; edited: boolean } | { ok: false; field: 'subject'; message: string };

/**
 * The subject of an agent reply.
 * - `agentsCanEdit` off: a subject different from the session's is refused (R-GLB-3).
 * - `addSessionId` on: the first agent reply carries `[#<sessionId>]` (R-GLB-2); later replies keep the
 *   session's subject as it is.
 * The session id never changes, whatever the subject (replies thread by our Message-IDs anyway).
 */
export function replySubject(input: {
  sessionId: string;
  sessionSubject: string;
  requested: string | undefined;
  firstAgentReply: boolean;
  settings: { addSessionId: boolean; agentsCanEdit: boolean };
}): SubjectDecision {
  const base = input.sessionSubject.trim();
  const requested = input.requested?.trim();
  if (requested !== undefined && headerUnsafe(input.requested ?? '')) return { ok: false, field: 'subject', message: 'must not contain line breaks or NUL' };
  const edited = requested !== undefined && requested !== '' && requested !== base && requested !== replyPrefix(base);
  if (edited && !input.settings.agentsCanEdit) return { ok: false, field: 'subject', message: 'agents may not edit the subject (Settings › Email › Allow agents to edit the subject)' };
  let subject = edited ? (requested as string) : replyPrefix(base);
  if (input.settings.addSessionId && input.firstAgentReply && subjectToken(subject) !== input.sessionId) subject = withSubjectToken(subject, input.sessionId);
  if (subject.length > 998) subject = subject.slice(0, 998);
  return { ok: true, subject, edited };
}

/** `Re: ` once in front of a subject (no `Re: Re: Re:` chains). */
export function replyPrefix(subject: string): string {
  const s = subject.trim();
  return /^re\s*:/i.test(s) ? s : `Re: ${s}`;
}

/** R-ARP-4: an auto-reply's subject is always `RE: ` + the original subject. */
export function autoReplySubject(original: string): string {
  return `RE: ${original.replace(/[\r\n\0]+/g, ' ').trim()}`.slice(0, 998);
}

/**
 * Threading headers for a reply (R-AGT-3): In-Reply-To = the message replied to; References = the
 * thread's ids, oldest first, bounded (the first id plus the most recent ones, as RFC 5322 suggests).
 */
export function threadingHeaders(threadMessageIds: string[], replyTo: string | null, max = 20): { inReplyTo: string | null; references: string[] } {
  const ids = threadMessageIds.filter((id, i) => id && threadMessageIds.indexOf(id) === i);
  const refs = ids.length <= max ? ids : [ids[0] as string, ...ids.slice(-(max - 1))];
  return { inReplyTo: replyTo ?? ids.at(-1) ?? null, references: refs };
}

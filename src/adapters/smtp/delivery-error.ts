// Pure classifier of SMTP/network send errors into retry / permanent / auth (idea from emailengine's lib/delivery-error.js).

export type DeliveryErrorKind = 'retry' | 'permanent' | 'auth';

/** Why, in a word: lets logs and the outbound status say more than the kind. */
export type DeliveryErrorReason = 'network' | 'timeout' | 'tls' | 'auth' | 'rate_limit' | 'mailbox' | 'policy' | 'rejected' | 'temporary' | 'invalid' | 'unknown';

export interface DeliveryErrorClass {
  kind: DeliveryErrorKind;
  /** Suggested wait before the next attempt (retry only). */
  delayMs?: number;
  reason: DeliveryErrorReason;
  /** SMTP reply code, when the server answered. */
  responseCode?: number;
  /** RFC 3463 enhanced status code ("5.7.8"), when the reply had one. */
  enhancedCode?: string;
  /** One-line human text (the server's own words when there are some). */
  message: string;
}

/** Fields nodemailer, smtp-connection and Node's socket layer set on errors. */
interface ErrorLike {
  message?: unknown;
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
  command?: unknown;
  cause?: unknown;
  /** Our own errors carry their class already. */
  delivery?: unknown;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export const DELAYS = Object.freeze({
  network: 60_000,
  timeout: 2 * 60_000,
  tls: 15 * 60_000,
  serviceUnavailable: 5 * 60_000,
  rateLimit: 10 * 60_000,
  mailboxFull: 30 * 60_000,
  temporary: 5 * 60_000,
  authTemporary: 5 * 60_000,
});

const NETWORK_CODES = new Set([
  'ECONNECTION',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ESOCKET',
  'EDNS',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ECONNABORTED',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ETIMEOUT', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'SOCKET_TIMEOUT', 'ESOCKETTIMEDOUT']);
const TLS_CODES = new Set(['ETLS', 'EREQUIRETLS', 'EPROTO', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'HOSTNAME_MISMATCH']);
/** Errors in what we asked to send (bad address, unsafe header, nothing to send): no retry can fix them. */
const INVALID_CODES = new Set(['EENVELOPE_INVALID', 'EUNSAFEHEADER', 'EMESSAGE_INVALID', 'EMAXLIMIT']);
/** SMTP replies that mean "these credentials were refused" (RFC 4954); 454 is the temporary one. */
const AUTH_REPLIES = new Set([530, 534, 535, 538]);

function oneLine(text: string): string {
  const t = text.replace(/[\r\n\0]+/g, ' ').replace(/\s+/g, ' ').trim() || 'unknown error';
  return t.length > 500 ? `${t.slice(0, 497)}...` : t;
}

/** The SMTP reply code: `responseCode`, else the first three digits of `response`. */
function replyCodeOf(e: ErrorLike): number | undefined {
  if (typeof e.responseCode === 'number' && e.responseCode >= 200 && e.responseCode < 600) return e.responseCode;
  const m = /^([2-5]\d\d)[\s-]/.exec(str(e.response));
  return m ? Number(m[1]) : undefined;
}

function enhancedOf(text: string): string | undefined {
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(text);
  return m ? m[1] : undefined;
}

function isClass(v: unknown): v is DeliveryErrorClass {
  if (typeof v !== 'object' || v === null) return false;
  const k = (v as { kind?: unknown }).kind;
  return k === 'retry' || k === 'permanent' || k === 'auth';
}

/**
 * Pure: what a failed send means for the next attempt.
 * - credentials refused (EAUTH, 530/534/535/538, x.7.8) → `auth` (retrying with the same password is pointless);
 * - 4xx replies, connection errors and timeouts → `retry` with a suggested delay;
 * - other 5xx replies and invalid input → `permanent`.
 */
export function classifyDeliveryError(err: unknown): DeliveryErrorClass {
  if (typeof err !== 'object' || err === null) return { kind: 'retry', delayMs: DELAYS.temporary, reason: 'unknown', message: oneLine(String(err ?? 'unknown error')) };
  const e = err as ErrorLike;
  if (isClass(e.delivery)) return e.delivery;
  const cause = typeof e.cause === 'object' && e.cause !== null ? (e.cause as ErrorLike) : undefined;
  const codes = [str(e.code), str(cause?.code)].filter(Boolean);
  const response = str(e.response) || str(cause?.response);
  const message = oneLine(response && !str(e.message).includes(response) ? `${str(e.message)}: ${response}` : str(e.message) || response);
  const responseCode = replyCodeOf(e) ?? (cause ? replyCodeOf(cause) : undefined);
  const enhancedCode = enhancedOf(response || message);
  const base = { message, ...(responseCode !== undefined ? { responseCode } : {}), ...(enhancedCode ? { enhancedCode } : {}) };
  const lower = message.toLowerCase();

  if (codes.some((c) => INVALID_CODES.has(c))) return { kind: 'permanent', reason: 'invalid', ...base };

  // Authentication first: a 535 is never "unreachable".
  if (responseCode === 454 || (enhancedCode === '4.7.0' && /auth/.test(lower))) {
    if (codes.includes('EAUTH') || /auth/.test(lower)) return { kind: 'retry', delayMs: DELAYS.authTemporary, reason: 'auth', ...base };
  }
  const authReply = responseCode !== undefined && AUTH_REPLIES.has(responseCode);
  if (authReply || enhancedCode === '5.7.8' || enhancedCode === '5.7.9' || (codes.includes('EAUTH') && (responseCode === undefined || responseCode >= 500))) {
    return { kind: 'auth', reason: 'auth', ...base };
  }
  if (codes.includes('ENOAUTH') || (codes.includes('EAUTH') && /missing credentials|no auth/.test(lower))) return { kind: 'auth', reason: 'auth', ...base };

  if (responseCode !== undefined && responseCode >= 400 && responseCode < 500) {
    if (responseCode === 421) return { kind: 'retry', delayMs: DELAYS.serviceUnavailable, reason: 'temporary', ...base };
    if (responseCode === 452 || enhancedCode === '4.2.2') return { kind: 'retry', delayMs: DELAYS.mailboxFull, reason: 'mailbox', ...base };
    if (enhancedCode?.startsWith('4.7.') || /rate|too many|throttl|limit/.test(lower)) return { kind: 'retry', delayMs: DELAYS.rateLimit, reason: 'rate_limit', ...base };
    return { kind: 'retry', delayMs: DELAYS.temporary, reason: 'temporary', ...base };
  }
  if (responseCode !== undefined && responseCode >= 500) {
    const reason: DeliveryErrorReason = enhancedCode?.startsWith('5.1.') || enhancedCode?.startsWith('5.2.') ? 'mailbox' : enhancedCode?.startsWith('5.7.') ? 'policy' : 'rejected';
    return { kind: 'permanent', reason, ...base };
  }

  if (codes.some((c) => TIMEOUT_CODES.has(c)) || /\btimed? ?out\b|\btimeout\b/.test(lower)) return { kind: 'retry', delayMs: DELAYS.timeout, reason: 'timeout', ...base };
  // A broken certificate needs an admin; retry slowly rather than give the message up.
  if (codes.some((c) => TLS_CODES.has(c) || c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_') || c.includes('CERT')) || /\b(?:ssl|tls|certificate|self[- ]signed)\b/.test(lower)) {
    return { kind: 'retry', delayMs: DELAYS.tls, reason: 'tls', ...base };
  }
  if (codes.some((c) => NETWORK_CODES.has(c)) || /\b(?:econnrefused|econnreset|enotfound|ehostunreach|enetunreach|eai_again|socket hang up|connection closed)\b/.test(lower)) {
    return { kind: 'retry', delayMs: DELAYS.network, reason: 'network', ...base };
  }
  // Unknown failure (protocol oddity, bug in between): retry, bounded by the job's attempts.
  return { kind: 'retry', delayMs: DELAYS.temporary, reason: 'unknown', ...base };
}

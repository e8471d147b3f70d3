// Pure classification of Zendesk API answers (status, body, headers) into ConnectorErrors, incl. Retry-After.
import { ConnectorError } from '../contract.js';

/** Wait used when Zendesk answers 429 without a usable Retry-After (its limits are per minute). */
export const DEFAULT_RETRY_AFTER_MS = 60_000;

/** Zendesk's wording for any update to a closed ticket (422 RecordInvalid, details.status[].description). */
const CLOSED_TICKET_TEXT = 'closed prevents ticket update';

/** Headers as a plain record (any case) or a fetch-style Headers object. */
export type HeaderSource = Record<string, string | undefined> | { get(name: string): string | null };

export function headerValue(headers: HeaderSource | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers as Record<string, string | undefined>)) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

/**
 * A ConnectorError with what the service needs to react to Zendesk-specific outcomes: `followUpNeeded`
 * when the ticket is closed for good (create a follow-up with `createRecord({ followUpOf })`).
 */
export class ZendeskConnectorError extends ConnectorError {
  constructor(
    kind: ConnectorError['kind'],
    message: string,
    opts: { retryAfterMs?: number; status?: number; followUpNeeded?: boolean; closedRecordId?: string } = {},
  ) {
    super(kind, message, opts.retryAfterMs, opts.status);
    this.followUpNeeded = opts.followUpNeeded ?? false;
    this.closedRecordId = opts.closedRecordId;
  }

  /** The ticket is closed (terminal): updates are refused; create a follow-up ticket instead. */
  readonly followUpNeeded: boolean;
  /** The closed ticket, when the caller knew it (set by the connector, not by the classifier). */
  readonly closedRecordId: string | undefined;
}

/** True when the error means "this ticket is closed: make a follow-up". */
export function isFollowUpNeeded(err: unknown): err is ZendeskConnectorError {
  return err instanceof ZendeskConnectorError && err.followUpNeeded;
}

/**
 * Milliseconds to wait from a Retry-After value: delta-seconds (what Zendesk sends) or an HTTP-date
 * (relative to `now`). Undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined | null, now?: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  // An HTTP-date names its weekday and month (RFC 9110); anything else is not a Retry-After.
  if (now === undefined || !/^[A-Za-z]{3}, /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** `total=30; remaining=0; resets=412` (Zendesk-RateLimit-* endpoint headers) → its parts. */
export function parseEndpointRateLimit(value: string | undefined): { total?: number; remaining?: number; resetsMs?: number } {
  if (!value) return {};
  const out: { total?: number; remaining?: number; resetsMs?: number } = {};
  for (const part of value.split(';')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    const n = Number(v);
    if (!k || v === undefined || !Number.isFinite(n)) continue;
    if (k === 'total') out.total = n;
    else if (k === 'remaining') out.remaining = n;
    else if (k === 'resets') out.resetsMs = n * 1000;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every `description`/`error`/`type` string inside a Zendesk error body's `details`. */
function detailTexts(details: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (isRecord(v)) Object.values(v).forEach(visit);
  };
  visit(details);
  return out;
}

/** `{ error, description }` of a Zendesk error body, whatever its exact shape (string or object `error`). */
function describe(body: unknown): string {
  if (!isRecord(body)) return typeof body === 'string' && body.length > 0 ? body.slice(0, 200) : '';
  const parts: string[] = [];
  const err = body.error;
  if (typeof err === 'string') parts.push(err);
  else if (isRecord(err)) {
    if (typeof err.title === 'string') parts.push(err.title);
    if (typeof err.message === 'string') parts.push(err.message);
  }
  if (typeof body.description === 'string') parts.push(body.description);
  const details = detailTexts(body.details);
  if (details.length > 0) parts.push(details.slice(0, 5).join('; '));
  return parts.join(': ');
}

/** True for the 422 Zendesk gives to any update of a closed ticket. */
export function isClosedTicketBody(body: unknown): boolean {
  if (!isRecord(body)) return false;
  return detailTexts(body.details).some((t) => t.toLowerCase().includes(CLOSED_TICKET_TEXT) || t === 'ClosedTicket' || t === 'closed_prevents_ticket_update');
}

/**
 * The one mapping point from a Zendesk answer to a ConnectorError (DESIGN habit 4/5). Pure: same inputs,
 * same error. `now` is only needed for an HTTP-date Retry-After.
 *
 * 401/403 → auth · 404 → not_found · 409 (update collision) → transient · 422 on a closed ticket →
 * conflict + followUpNeeded · other 400/413/422 → permanent · 429 → rate_limited (Retry-After, else the
 * Zendesk-RateLimit-tickets-update `resets`, else 60 s) · 5xx → transient (with Retry-After when sent).
 */
export function classifyZendeskError(status: number, body: unknown, headers?: HeaderSource, now?: number): ZendeskConnectorError {
  const detail = describe(body);
  const msg = (what: string) => `zendesk: ${what} (HTTP ${status}${detail ? `: ${detail}` : ''})`;
  const retryAfterMs = parseRetryAfter(headerValue(headers, 'retry-after'), now);

  if (status === 401 || status === 403) {
    return new ZendeskConnectorError('auth', msg(status === 401 ? 'credentials refused' : 'permission denied'), { status });
  }
  if (status === 404) return new ZendeskConnectorError('not_found', msg('not found'), { status });
  if (status === 409) return new ZendeskConnectorError('transient', msg('update collision'), { status, retryAfterMs });
  if (status === 429) {
    const perTicket = parseEndpointRateLimit(headerValue(headers, 'zendesk-ratelimit-tickets-update'));
    const wait = retryAfterMs ?? perTicket.resetsMs ?? DEFAULT_RETRY_AFTER_MS;
    return new ZendeskConnectorError('rate_limited', msg('rate limited'), { status, retryAfterMs: wait });
  }
  if (status === 422 && isClosedTicketBody(body)) {
    return new ZendeskConnectorError('conflict', msg('ticket is closed; create a follow-up'), { status, followUpNeeded: true });
  }
  if (status >= 500) return new ZendeskConnectorError('transient', msg('server error'), { status, retryAfterMs });
  if (status >= 400) return new ZendeskConnectorError('permanent', msg('request refused'), { status });
  // A 1xx/2xx/3xx reaching the classifier is an answer the connector could not use.
  return new ZendeskConnectorError('transient', msg('unexpected answer'), { status });
}

/** Errors thrown by the transport (node-fetch FetchError, aborts, DNS, resets): always transient. */
export function classifyTransportError(err: unknown): ZendeskConnectorError {
  const e = isRecord(err) ? err : {};
  const type = typeof e.type === 'string' ? e.type : '';
  const code = typeof e.code === 'string' ? e.code : '';
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const what = type === 'request-timeout' || name === 'AbortError' || name === 'TimeoutError' ? 'timed out' : `network error${code ? ` ${code}` : ''}`;
  return new ZendeskConnectorError('transient', `zendesk: ${what} (${name})`);
}

// Salesforce error classification (R-CON-3): pure functions from an answer (status, body, headers) to a ConnectorError.
import { ConnectorError } from '../contract.js';

/** One element of a REST error body: Salesforce answers errors as `[{ message, errorCode, fields? }]`. */
export interface SalesforceApiError {
  message: string;
  errorCode: string;
  fields?: string[];
}

/** What the classifier looks at: an HTTP answer, or a failure before any answer (`status` absent). */
export interface SalesforceFailure {
  status?: number;
  /** Parsed JSON body (array of errors, an OAuth error object) or the raw text. */
  body?: unknown;
  /** Response headers, lower-cased names. */
  headers?: Record<string, string>;
  /** For failures without an answer: the error's name/code (FetchError, AbortError, ECONNRESET…). */
  errorName?: string;
  errorMessage?: string;
}

/** No Retry-After comes with REQUEST_LIMIT_EXCEEDED: the daily limit is a rolling 24 h window. */
export const DAILY_LIMIT_BACKOFF_MS = 15 * 60_000;
/** `ConcurrentPerOrgLongTxn Limit exceeded.`: too many long requests at once; clears in seconds. */
export const CONCURRENCY_LIMIT_BACKOFF_MS = 30_000;

/** Error codes that mean the org or the integration user cannot use the API at all (setup, not data). */
const ACCESS_CODES = new Set(['API_DISABLED_FOR_ORG', 'API_CURRENTLY_DISABLED', 'FUNCTIONALITY_NOT_ENABLED', 'INSUFFICIENT_ACCESS']);
/** Transient conditions Salesforce reports as 400/500 with a code. */
const TRANSIENT_CODES = new Set(['UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'QUERY_TIMEOUT', 'REQUEST_RUNNING_TOO_LONG']);
/** Login faults (SOAP faultcode / OAuth error) that mean the credentials are refused. */
const LOGIN_REFUSED = /INVALID_LOGIN|LOGIN_MUST_USE_SECURITY_TOKEN|PASSWORD_LOCKOUT|INVALID_OPERATION_WITH_EXPIRED_PASSWORD|INVALID_SESSION_ID|invalid_client|invalid_grant|unsupported_grant_type|inactive_user|inactive_org|password has expired/i;

/** The errors of a REST error body, whatever its exact shape (array, single object, composite sub-body). */
export function apiErrors(body: unknown): SalesforceApiError[] {
  const list = Array.isArray(body) ? body : body && typeof body === 'object' ? [body] : [];
  const out: SalesforceApiError[] = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const rec = item as Record<string, unknown>;
    if (typeof rec.errorCode !== 'string') continue;
    const fields = Array.isArray(rec.fields) ? rec.fields.filter((f): f is string => typeof f === 'string') : undefined;
    out.push({ errorCode: rec.errorCode, message: typeof rec.message === 'string' ? rec.message : rec.errorCode, ...(fields ? { fields } : {}) });
  }
  return out;
}

/** The first error code of a body, or undefined. */
export function firstErrorCode(body: unknown): string | undefined {
  return apiErrors(body)[0]?.errorCode;
}

/** `Retry-After` in ms (seconds or HTTP date), or undefined. */
export function retryAfterMs(headers: Record<string, string> | undefined, now: number): number | undefined {
  const raw = headers?.['retry-after'];
  if (!raw) return undefined;
  const secs = Number(raw);
  if (Number.isFinite(secs) && secs >= 0) return Math.round(secs * 1000);
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Usage parsed from `Sforce-Limit-Info: api-usage=n/m; per-app-api-usage=n/m(appName=…)`. */
export interface ApiUsage {
  used: number;
  limit: number;
  /** The per-connected-app quota when the org has one. */
  perApp?: { used: number; limit: number };
}

export function parseLimitInfo(header: string | undefined): ApiUsage | null {
  if (!header) return null;
  const org = /(?:^|[;\s])api-usage=(\d+)\/(\d+)/.exec(header);
  if (!org) return null;
  const usage: ApiUsage = { used: Number(org[1]), limit: Number(org[2]) };
  const app = /per-app-api-usage=(\d+)\/(\d+)/.exec(header);
  if (app) usage.perApp = { used: Number(app[1]), limit: Number(app[2]) };
  return usage;
}

/** The highest fraction of a daily quota used (org or per app), 0…1+. */
export function usageRatio(usage: ApiUsage): number {
  const ratio = (u: { used: number; limit: number }) => (u.limit > 0 ? u.used / u.limit : 0);
  return Math.max(ratio(usage), usage.perApp ? ratio(usage.perApp) : 0);
}

/**
 * How long to hold back before the next call, given the usage Salesforce reported: 0 below the threshold;
 * from 5 minutes at the threshold up to 60 minutes at 100 % (the limit is a rolling 24 h window, so usage
 * only drops as calls of the previous day age out). Keeps the remaining headroom for the org's other users.
 */
export function usageBackoffMs(usage: ApiUsage | null, thresholdPercent = 90): number {
  if (!usage) return 0;
  const pct = usageRatio(usage) * 100;
  if (pct < thresholdPercent) return 0;
  if (pct >= 100) return 60 * 60_000;
  const span = Math.max(1, 100 - thresholdPercent);
  return Math.round(5 * 60_000 + ((pct - thresholdPercent) / span) * 55 * 60_000);
}

/** 401 whose body says the session expired or is invalid: the caller re-authenticates once. */
export function isSessionExpired(failure: SalesforceFailure): boolean {
  if (failure.status !== 401) return false;
  const code = firstErrorCode(failure.body);
  return code === undefined || code === 'INVALID_SESSION_ID';
}

function describe(failure: SalesforceFailure): string {
  const errs = apiErrors(failure.body);
  if (errs.length > 0) return errs.map((e) => `${e.errorCode}: ${e.message}${e.fields?.length ? ` [${e.fields.join(', ')}]` : ''}`).join('; ');
  if (typeof failure.body === 'string' && failure.body.trim()) return failure.body.trim().slice(0, 300);
  if (failure.errorMessage) return failure.errorMessage;
  return failure.status ? `HTTP ${failure.status}` : 'no answer';
}

/** Classifies a REST answer (or a failure with no answer) into a ConnectorError. Pure. */
export function classifySalesforceError(failure: SalesforceFailure, now = 0): ConnectorError {
  const { status } = failure;
  const message = `Salesforce: ${describe(failure)}`;
  if (status === undefined) {
    // Network error, timeout, reset: the write may or may not have happened (ambiguous) — retryable.
    return new ConnectorError('transient', message);
  }
  const codes = apiErrors(failure.body).map((e) => e.errorCode);
  const has = (code: string) => codes.includes(code);
  const wait = retryAfterMs(failure.headers, now);

  if (has('REQUEST_LIMIT_EXCEEDED')) {
    const concurrent = /ConcurrentPerOrgLongTxn|Concurrent/i.test(describe(failure));
    return new ConnectorError('rate_limited', message, wait ?? (concurrent ? CONCURRENCY_LIMIT_BACKOFF_MS : DAILY_LIMIT_BACKOFF_MS), status);
  }
  if (status === 429 || status === 420) return new ConnectorError('rate_limited', message, wait ?? 60_000, status);
  if (codes.some((c) => TRANSIENT_CODES.has(c))) return new ConnectorError('transient', message, wait, status);
  if (status === 401) return new ConnectorError('auth', message, undefined, status);
  if (status === 403) {
    if (codes.length === 0 || codes.some((c) => ACCESS_CODES.has(c))) return new ConnectorError('auth', message, undefined, status);
    return new ConnectorError('permanent', message, undefined, status);
  }
  if (status === 404 || has('NOT_FOUND') || has('ENTITY_IS_DELETED')) return new ConnectorError('not_found', message, undefined, status);
  // A comment or file whose parent case does not exist (a bad OwnerId is a configuration problem: permanent).
  const parentMissing = apiErrors(failure.body).some(
    (e) => e.errorCode === 'INVALID_CROSS_REFERENCE_KEY' && (e.fields ?? []).some((f) => f === 'ParentId' || f === 'FirstPublishLocationId'),
  );
  if (parentMissing) return new ConnectorError('not_found', message, undefined, status);
  if (status === 300 || status === 409 || has('DUPLICATE_VALUE') || has('DUPLICATES_DETECTED')) {
    return new ConnectorError('conflict', message, undefined, status);
  }
  if (status >= 500) return new ConnectorError('transient', message, wait, status);
  if (status === 408) return new ConnectorError('transient', message, wait, status);
  return new ConnectorError('permanent', message, undefined, status);
}

/**
 * Classifies a login failure (OAuth token endpoint or SOAP login()). jsforce reports these as an Error
 * whose name is the OAuth `error` (invalid_client…) or whose message is the SOAP faultstring.
 */
export function classifyLoginError(err: { name?: string; message?: string }): ConnectorError {
  const text = `${err.name ?? ''} ${err.message ?? ''}`;
  if (/REQUEST_LIMIT_EXCEEDED/.test(text)) return new ConnectorError('rate_limited', `Salesforce login: ${err.message ?? err.name}`, DAILY_LIMIT_BACKOFF_MS);
  if (LOGIN_REFUSED.test(text)) return new ConnectorError('auth', `Salesforce login refused: ${err.message || err.name}`);
  const http = /ERROR_HTTP_(\d{3})/.exec(text);
  if (http && Number(http[1]) < 500) return new ConnectorError('auth', `Salesforce login refused: ${err.message || err.name}`, undefined, Number(http[1]));
  return new ConnectorError('transient', `Salesforce login failed: ${err.message || err.name || 'no answer'}`);
}

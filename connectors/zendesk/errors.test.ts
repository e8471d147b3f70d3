// Unit tests of the pure Zendesk error classifier and Retry-After parsing.
import { describe, expect, it } from 'vitest';
import { ConnectorError } from '../contract.js';
import { DEFAULT_RETRY_AFTER_MS, classifyTransportError, classifyZendeskError, isFollowUpNeeded, parseEndpointRateLimit, parseRetryAfter } from './errors.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta-seconds (what Zendesk sends) and HTTP-dates relative to now', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter('1.5')).toBe(1500);
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', NOW)).toBe(0);
  });

  it('is undefined when absent, unreadable, or a date without a clock', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-3', NOW)).toBeUndefined();
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT')).toBeUndefined();
  });

  it('reads the Zendesk-RateLimit-* endpoint header', () => {
    expect(parseEndpointRateLimit('total=30; remaining=0; resets=412')).toEqual({ total: 30, remaining: 0, resetsMs: 412_000 });
    expect(parseEndpointRateLimit(undefined)).toEqual({});
    expect(parseEndpointRateLimit('garbage')).toEqual({});
  });
});

describe('classifyZendeskError', () => {
  it("401 Couldn't authenticate you → auth; 403 → auth", () => {
    const e = classifyZendeskError(401, { error: "Couldn't authenticate you" });
    expect(e).toBeInstanceOf(ConnectorError);
    expect(e).toMatchObject({ kind: 'auth', status: 401, retryable: false });
    expect(e.message).toContain("Couldn't authenticate you");
    expect(classifyZendeskError(403, { error: 'Forbidden', description: 'You do not have access to this page' }).kind).toBe('auth');
  });

  it('404 RecordNotFound → not_found', () => {
    expect(classifyZendeskError(404, { error: 'RecordNotFound', description: 'Not found' })).toMatchObject({ kind: 'not_found', status: 404 });
  });

  it('422 on a closed ticket → conflict with followUpNeeded (whichever details key Zendesk uses)', () => {
    const closed = { error: 'RecordInvalid', description: 'Record validation errors', details: { status: [{ description: 'Status: closed prevents ticket update' }] } };
    const e = classifyZendeskError(422, closed);
    expect(e).toMatchObject({ kind: 'conflict', status: 422, followUpNeeded: true });
    expect(isFollowUpNeeded(e)).toBe(true);
    expect(classifyZendeskError(422, { error: 'RecordInvalid', details: { base: [{ description: 'Status: closed prevents ticket update' }] } }).followUpNeeded).toBe(true);
  });

  it('other 422 RecordInvalid, 400 and 413 → permanent, with the details in the message', () => {
    const e = classifyZendeskError(422, { error: 'RecordInvalid', description: 'Record validation errors', details: { assignee_id: [{ description: 'Assignee: is not an agent' }] } });
    expect(e).toMatchObject({ kind: 'permanent', followUpNeeded: false });
    expect(e.message).toContain('Assignee: is not an agent');
    expect(classifyZendeskError(400, { error: 'InvalidValue' }).kind).toBe('permanent');
    expect(classifyZendeskError(413, '<html>too large</html>').kind).toBe('permanent');
  });

  it('429 → rate_limited with Retry-After; else the per-ticket header resets; else 60 s', () => {
    expect(classifyZendeskError(429, {}, { 'Retry-After': '12' })).toMatchObject({ kind: 'rate_limited', retryAfterMs: 12_000, retryable: true });
    expect(classifyZendeskError(429, {}, { get: (n: string) => (n === 'retry-after' ? '3' : null) }).retryAfterMs).toBe(3000);
    expect(classifyZendeskError(429, {}, { 'zendesk-ratelimit-tickets-update': 'total=30; remaining=0; resets=90' }).retryAfterMs).toBe(90_000);
    expect(classifyZendeskError(429, {}).retryAfterMs).toBe(DEFAULT_RETRY_AFTER_MS);
  });

  it('409 collision and 5xx → transient (Retry-After kept when sent)', () => {
    expect(classifyZendeskError(409, { error: 'Conflict' })).toMatchObject({ kind: 'transient', retryable: true });
    expect(classifyZendeskError(500, {})).toMatchObject({ kind: 'transient', status: 500 });
    expect(classifyZendeskError(502, '<html>bad gateway</html>')).toMatchObject({ kind: 'transient', status: 502 });
    expect(classifyZendeskError(503, '', { 'Retry-After': '30' })).toMatchObject({ kind: 'transient', retryAfterMs: 30_000 });
  });

  it('is pure: the same inputs give equal errors', () => {
    const a = classifyZendeskError(429, { error: 'APIRateLimitExceeded' }, { 'Retry-After': '5' }, NOW);
    const b = classifyZendeskError(429, { error: 'APIRateLimitExceeded' }, { 'Retry-After': '5' }, NOW);
    expect([a.kind, a.message, a.retryAfterMs, a.status]).toEqual([b.kind, b.message, b.retryAfterMs, b.status]);
  });

  it('never echoes an Authorization header (it only reads the body)', () => {
    expect(classifyZendeskError(401, { error: "Couldn't authenticate you" }, { authorization: 'Basic c2VjcmV0' }).message).not.toContain('c2VjcmV0');
  });
});

describe('classifyTransportError', () => {
  it('timeouts, resets and aborts are transient', () => {
    expect(classifyTransportError({ name: 'FetchError', type: 'request-timeout' })).toMatchObject({ kind: 'transient', message: expect.stringContaining('timed out') });
    expect(classifyTransportError({ name: 'FetchError', type: 'system', code: 'ECONNRESET' }).message).toContain('ECONNRESET');
    expect(classifyTransportError(new DOMException('aborted', 'AbortError')).kind).toBe('transient');
    expect(classifyTransportError('weird').kind).toBe('transient');
  });
});

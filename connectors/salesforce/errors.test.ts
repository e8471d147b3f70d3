// The pure Salesforce error classifier and Sforce-Limit-Info back-off.
import { describe, expect, it } from 'vitest';
import {
  apiErrors,
  CONCURRENCY_LIMIT_BACKOFF_MS,
  classifyLoginError,
  classifySalesforceError,
  DAILY_LIMIT_BACKOFF_MS,
  isSessionExpired,
  parseLimitInfo,
  retryAfterMs,
  usageBackoffMs,
} from './errors.js';

const err = (errorCode: string, message = errorCode, fields?: string[]) => [{ message, errorCode, ...(fields ? { fields } : {}) }];
const kind = (status: number | undefined, body?: unknown, headers?: Record<string, string>) =>
  classifySalesforceError({ ...(status !== undefined ? { status } : {}), body, ...(headers ? { headers } : {}) }, 0);

describe('classifySalesforceError', () => {
  it.each([
    [401, err('INVALID_SESSION_ID', 'Session expired or invalid'), 'auth'],
    [404, err('NOT_FOUND', 'The requested resource does not exist'), 'not_found'],
    [400, err('ENTITY_IS_DELETED'), 'not_found'],
    [400, err('DUPLICATE_VALUE', 'duplicate value found: EmailChannel_Session_Id__c duplicates value on record with id: 5005g00000AAAAA'), 'conflict'],
    [300, ['/services/data/v60.0/sobjects/Case/500A', '/services/data/v60.0/sobjects/Case/500B'], 'conflict'],
    [400, err('INVALID_FIELD', "No such column 'X' on sobject of type Case"), 'permanent'],
    [400, err('MALFORMED_QUERY'), 'permanent'],
    [400, err('STRING_TOO_LONG', 'Subject: data value too large', ['Subject']), 'permanent'],
    [400, err('UNABLE_TO_LOCK_ROW', 'unable to obtain exclusive access to this record'), 'transient'],
    [400, err('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['ParentId']), 'not_found'],
    [400, err('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', ['OwnerId']), 'permanent'],
    [403, err('API_DISABLED_FOR_ORG', 'API is not enabled for this Organization or Partner'), 'auth'],
    [403, err('INSUFFICIENT_ACCESS_OR_READONLY'), 'permanent'],
    [500, err('UNKNOWN_EXCEPTION'), 'transient'],
    [502, '<html>Bad Gateway</html>', 'transient'],
    [503, err('SERVER_UNAVAILABLE'), 'transient'],
  ] as const)('%i %j → %s', (status, body, expected) => {
    expect(kind(status, body).kind).toBe(expected);
  });

  it('REQUEST_LIMIT_EXCEEDED (403, no Retry-After) is rate_limited with a back-off: long for the daily limit, short for concurrency', () => {
    const daily = kind(403, err('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'));
    expect(daily.kind).toBe('rate_limited');
    expect(daily.retryAfterMs).toBe(DAILY_LIMIT_BACKOFF_MS);
    expect(daily.retryable).toBe(true);
    const concurrent = kind(403, err('REQUEST_LIMIT_EXCEEDED', 'ConcurrentPerOrgLongTxn Limit exceeded.'));
    expect(concurrent.retryAfterMs).toBe(CONCURRENCY_LIMIT_BACKOFF_MS);
  });

  it('honours Retry-After when one comes (a proxy, a 429 in front of Salesforce)', () => {
    expect(kind(429, undefined, { 'retry-after': '7' }).retryAfterMs).toBe(7000);
    expect(kind(503, err('SERVER_UNAVAILABLE'), { 'retry-after': '3' }).retryAfterMs).toBe(3000);
    expect(retryAfterMs({ 'retry-after': new Date(60_000).toUTCString() }, 0)).toBe(60_000);
    expect(retryAfterMs({}, 0)).toBeUndefined();
  });

  it('no answer at all (reset, DNS, timeout) is transient, without a status', () => {
    const e = classifySalesforceError({ errorName: 'FetchError', errorMessage: 'request to … failed, reason: socket hang up' });
    expect(e.kind).toBe('transient');
    expect(e.status).toBeUndefined();
    expect(e.message).toContain('socket hang up');
  });

  it('keeps the status and names the codes in the message', () => {
    const e = kind(400, err('STRING_TOO_LONG', 'Subject: too large', ['Subject']));
    expect(e.status).toBe(400);
    expect(e.message).toBe('Salesforce: STRING_TOO_LONG: Subject: too large [Subject]');
  });

  it('isSessionExpired: 401 INVALID_SESSION_ID (or a bare 401), nothing else', () => {
    expect(isSessionExpired({ status: 401, body: err('INVALID_SESSION_ID') })).toBe(true);
    expect(isSessionExpired({ status: 401, body: '' })).toBe(true);
    expect(isSessionExpired({ status: 403, body: err('INVALID_SESSION_ID') })).toBe(false);
    expect(isSessionExpired({ status: 401, body: err('INVALID_AUTH_HEADER') })).toBe(false);
  });

  it('apiErrors reads arrays, single objects and ignores the rest', () => {
    expect(apiErrors(err('A'))).toEqual([{ errorCode: 'A', message: 'A' }]);
    expect(apiErrors({ errorCode: 'B', message: 'b', fields: ['X', 1] })).toEqual([{ errorCode: 'B', message: 'b', fields: ['X'] }]);
    expect(apiErrors('text')).toEqual([]);
    expect(apiErrors([{ error: 'invalid_client' }])).toEqual([]);
  });
});

describe('classifyLoginError', () => {
  it.each([
    [{ name: 'invalid_client', message: 'invalid client credentials' }, 'auth'],
    [{ name: 'invalid_client_id', message: 'client identifier invalid' }, 'auth'],
    [{ name: 'invalid_grant', message: 'request not supported on this domain' }, 'auth'],
    [{ name: 'Error', message: 'INVALID_LOGIN: Invalid username, password, security token; or user locked out.' }, 'auth'],
    [{ name: 'Error', message: 'Unable to login because the used password has expired.' }, 'auth'],
    [{ name: 'ERROR_HTTP_404', message: '<html>' }, 'auth'],
    [{ name: 'ERROR_HTTP_503', message: 'Service Unavailable' }, 'transient'],
    [{ name: 'FetchError', message: 'request failed, reason: ECONNRESET' }, 'transient'],
    [{ name: 'Error', message: 'REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.' }, 'rate_limited'],
  ] as const)('%j → %s', (e, expected) => {
    expect(classifyLoginError(e).kind).toBe(expected);
  });
});

describe('Sforce-Limit-Info back-off', () => {
  it('parses api-usage and per-app-api-usage', () => {
    expect(parseLimitInfo('api-usage=18/5000')).toEqual({ used: 18, limit: 5000 });
    expect(parseLimitInfo('api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)')).toEqual({ used: 25, limit: 5000, perApp: { used: 17, limit: 250 } });
    expect(parseLimitInfo(undefined)).toBeNull();
    expect(parseLimitInfo('garbage')).toBeNull();
  });

  it('no wait below the threshold; 5 min at it, rising to 60 min at the limit; the per-app quota counts too', () => {
    expect(usageBackoffMs({ used: 89_999, limit: 100_000 })).toBe(0);
    expect(usageBackoffMs({ used: 90_000, limit: 100_000 })).toBe(5 * 60_000);
    expect(usageBackoffMs({ used: 95_000, limit: 100_000 })).toBe(Math.round(5 * 60_000 + 0.5 * 55 * 60_000));
    expect(usageBackoffMs({ used: 100_000, limit: 100_000 })).toBe(60 * 60_000);
    expect(usageBackoffMs({ used: 110_018, limit: 100_000 })).toBe(60 * 60_000);
    expect(usageBackoffMs({ used: 10, limit: 5000, perApp: { used: 240, limit: 250 } })).toBeGreaterThan(0);
    expect(usageBackoffMs({ used: 96, limit: 100 }, 97)).toBe(0);
    expect(usageBackoffMs(null)).toBe(0);
  });
});

// Unit tests for the SMTP/network send error classifier.
import { describe, expect, it } from 'vitest';
import { classifyDeliveryError } from './delivery-error.js';

const smtp = (responseCode: number, response: string, code = 'EENVELOPE') => Object.assign(new Error(`Message failed: ${response}`), { code, responseCode, response });

describe('classifyDeliveryError', () => {
  it('classifies refused credentials as auth', () => {
    expect(classifyDeliveryError(smtp(535, '535 5.7.8 Error: authentication failed', 'EAUTH'))).toMatchObject({ kind: 'auth', responseCode: 535, enhancedCode: '5.7.8' });
    expect(classifyDeliveryError(smtp(530, '530 5.7.0 Authentication required', 'EENVELOPE')).kind).toBe('auth');
    expect(classifyDeliveryError(Object.assign(new Error('Invalid login'), { code: 'EAUTH' })).kind).toBe('auth');
    expect(classifyDeliveryError(Object.assign(new Error('Missing credentials for "PLAIN"'), { code: 'EAUTH' })).kind).toBe('auth');
  });

  it('treats a temporary auth failure (454) as retry', () => {
    const c = classifyDeliveryError(smtp(454, '454 4.7.0 Temporary authentication failure', 'EAUTH'));
    expect(c.kind).toBe('retry');
    expect(c.delayMs).toBeGreaterThan(0);
  });

  it('retries 4xx replies with a delay, longer for rate limits and full mailboxes', () => {
    const temp = classifyDeliveryError(smtp(451, '451 4.3.0 Local error in processing'));
    expect(temp).toMatchObject({ kind: 'retry', reason: 'temporary' });
    expect(classifyDeliveryError(smtp(421, '421 4.3.2 Service not available', 'ECONNECTION'))).toMatchObject({ kind: 'retry', responseCode: 421 });
    const rate = classifyDeliveryError(smtp(450, '450 4.7.1 Too many messages, slow down'));
    expect(rate).toMatchObject({ kind: 'retry', reason: 'rate_limit' });
    expect(rate.delayMs!).toBeGreaterThan(temp.delayMs!);
    expect(classifyDeliveryError(smtp(452, '452 4.2.2 Mailbox full'))).toMatchObject({ kind: 'retry', reason: 'mailbox' });
  });

  it('gives up on 5xx replies', () => {
    expect(classifyDeliveryError(smtp(550, '550 5.1.1 <nobody@example.com>: Recipient address rejected'))).toMatchObject({ kind: 'permanent', reason: 'mailbox', enhancedCode: '5.1.1' });
    expect(classifyDeliveryError(smtp(554, '554 5.7.1 Message rejected as spam'))).toMatchObject({ kind: 'permanent', reason: 'policy' });
    const size = classifyDeliveryError(smtp(552, '552 Message size exceeds fixed limit', 'EMESSAGE'));
    expect(size.kind).toBe('permanent');
    expect(size.delayMs).toBeUndefined();
    // The reply code only in the response text.
    expect(classifyDeliveryError(Object.assign(new Error('rejected'), { response: '553 sorry' })).kind).toBe('permanent');
  });

  it('retries connection errors and timeouts', () => {
    expect(classifyDeliveryError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ESOCKET' }))).toMatchObject({ kind: 'retry', reason: 'network' });
    expect(classifyDeliveryError(Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'EDNS' })).kind).toBe('retry');
    expect(classifyDeliveryError(Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' }))).toMatchObject({ kind: 'retry', reason: 'timeout' });
    expect(classifyDeliveryError(Object.assign(new Error('Greeting never received'), { code: 'ETIMEDOUT' })).kind).toBe('retry');
    expect(classifyDeliveryError(Object.assign(new Error('wrapped'), { cause: { code: 'ECONNRESET', message: 'read ECONNRESET' } })).kind).toBe('retry');
    expect(classifyDeliveryError(Object.assign(new Error('self-signed certificate'), { code: 'ESOCKET', cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' } }))).toMatchObject({
      kind: 'retry',
      reason: 'tls',
    });
  });

  it('gives up on invalid input and keeps a class already attached', () => {
    expect(classifyDeliveryError(Object.assign(new Error('bad header'), { code: 'EUNSAFEHEADER' })).kind).toBe('permanent');
    const attached = { kind: 'auth' as const, reason: 'auth' as const, message: 'x' };
    expect(classifyDeliveryError(Object.assign(new Error('x'), { delivery: attached }))).toBe(attached);
  });

  it('handles non-errors and keeps messages on one line', () => {
    expect(classifyDeliveryError('boom').kind).toBe('retry');
    expect(classifyDeliveryError(undefined).kind).toBe('retry');
    expect(classifyDeliveryError(smtp(550, '550-5.1.1 first\r\n550 5.1.1 second')).message).not.toMatch(/[\r\n]/);
  });
});

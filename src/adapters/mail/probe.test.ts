// Unit tests of the mail error classifier and the TLS option mapping of the account probe [R-ACC-1, R-ACC-4].
import { describe, expect, it } from 'vitest';
import { classifyMailError, createMailProbe, imapTlsOptions, smtpTlsOptions } from './probe.js';

const err = (message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), extra);

describe('classifyMailError', () => {
  it.each([
    ['imapflow AUTHENTICATIONFAILED', err('Command failed', { authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED', responseText: 'Authentication failed.' }), 'auth_failed', 'Authentication failed.'],
    ['IMAP response code without the flag', err('Command failed', { serverResponseCode: 'AUTHENTICATIONFAILED' }), 'auth_failed', 'Command failed'],
    ['nodemailer EAUTH 535', err('Invalid login: 535 5.7.8 Error: authentication failed', { code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Error: authentication failed' }), 'auth_failed', '535 5.7.8'],
    ['nodemailer EAUTH without a reply code', err('Invalid login', { code: 'EAUTH' }), 'auth_failed', 'Invalid login'],
    ['ECONNREFUSED (imapflow passes it through)', err('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }), 'unreachable', 'ECONNREFUSED'],
    ['nodemailer ESOCKET wrapping ECONNREFUSED', err('connect ECONNREFUSED 127.0.0.1:1', { code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), 'unreachable', 'ECONNREFUSED'],
    ['ENOTFOUND', err('getaddrinfo ENOTFOUND mail.nowhere.invalid', { code: 'ENOTFOUND' }), 'unreachable', 'ENOTFOUND'],
    ['EHOSTUNREACH', err('connect EHOSTUNREACH 10.9.9.9:993', { code: 'EHOSTUNREACH' }), 'unreachable', 'EHOSTUNREACH'],
    ['nodemailer EDNS', err('queryA ENOTFOUND smtp.nowhere.invalid', { code: 'EDNS' }), 'unreachable', 'smtp.nowhere.invalid'],
    ['ETIMEDOUT', err('Connection timeout', { code: 'ETIMEDOUT' }), 'timeout', 'Connection timeout'],
    ['imapflow CONNECT_TIMEOUT', err('Failed to establish connection in required time', { code: 'CONNECT_TIMEOUT' }), 'timeout', 'required time'],
    ['imapflow GREETING_TIMEOUT', err('Failed to receive greeting from server in required time', { code: 'GREETING_TIMEOUT' }), 'timeout', 'greeting'],
    ['a plain "timed out" message', err('Socket timed out'), 'timeout', 'timed out'],
    ['self-signed certificate', err('self-signed certificate', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'tls_error', 'self-signed'],
    ['TLS to a plain port', err('write EPROTO ... wrong version number', { code: 'ESOCKET', originalCode: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'tls_error', 'wrong version number'],
    ['nodemailer ETLS', err('Error initiating TLS - unable to verify the first certificate', { code: 'ETLS' }), 'tls_error', 'unable to verify'],
    ['imapflow required STARTTLS missing', err('Server does not support STARTTLS', { tlsFailed: true }), 'tls_error', 'STARTTLS'],
    ['altname mismatch', err("Hostname/IP does not match certificate's altnames", { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), 'tls_error', 'altnames'],
    ['unexpected reply', err('Invalid greeting. response=500 go away', { code: 'EPROTOCOL' }), 'protocol_error', 'Invalid greeting'],
    ['connection closed', err('Connection closed unexpectedly', { code: 'EConnectionClosed' }), 'protocol_error', 'closed'],
    ['SMTP AUTH not offered (502)', err('Invalid login: 502 5.5.1 command not implemented', { code: 'EAUTH', responseCode: 502 }), 'protocol_error', '502'],
  ])('%s', (_name, error, state, fragment) => {
    const result = classifyMailError(error);
    expect(result.state).toBe(state);
    expect(result.error).toContain(fragment);
  });

  it('answers protocol_error for non-errors and never throws', () => {
    expect(classifyMailError(undefined)).toEqual({ state: 'protocol_error', error: 'unknown error' });
    expect(classifyMailError('boom')).toEqual({ state: 'protocol_error', error: 'boom' });
    expect(classifyMailError({})).toEqual({ state: 'protocol_error', error: 'unknown error' });
  });

  it('keeps the message on one line and bounded', () => {
    const result = classifyMailError(err(`bad\r\nthing ${'x'.repeat(1000)}`, { code: 'EPROTOCOL' }));
    expect(result.error).not.toMatch(/[\r\n]/);
    expect(result.error!.length).toBeLessThanOrEqual(500);
  });
});

describe('TLS option mapping', () => {
  const ep = (secure: boolean, starttls: 'auto' | 'required' | 'off') => ({ host: 'mail.example.com', port: 1, secure, starttls });
  it('imapflow: secure wins, doSTARTTLS true/undefined/false', () => {
    expect(imapTlsOptions(ep(true, 'required'))).toEqual({ secure: true });
    expect(imapTlsOptions(ep(false, 'required'))).toEqual({ secure: false, doSTARTTLS: true });
    expect(imapTlsOptions(ep(false, 'auto'))).toEqual({ secure: false });
    expect(imapTlsOptions(ep(false, 'off'))).toEqual({ secure: false, doSTARTTLS: false });
  });
  it('nodemailer: requireTLS when required, ignoreTLS when off', () => {
    expect(smtpTlsOptions(ep(true, 'off'))).toEqual({ secure: true });
    expect(smtpTlsOptions(ep(false, 'required'))).toEqual({ secure: false, requireTLS: true });
    expect(smtpTlsOptions(ep(false, 'auto'))).toEqual({ secure: false });
    expect(smtpTlsOptions(ep(false, 'off'))).toEqual({ secure: false, ignoreTLS: true });
  });
});

describe('createMailProbe', () => {
  it('reports a closed port as unreachable instead of throwing', async () => {
    const probe = createMailProbe({ timeoutMs: 3000 });
    const endpoint = { host: '127.0.0.1', port: 1, secure: false, starttls: 'off' as const };
    await expect(probe.checkImap(endpoint, 'u', 'p')).resolves.toMatchObject({ state: 'unreachable' });
    await expect(probe.checkSmtp(endpoint, 'u', 'p')).resolves.toMatchObject({ state: 'unreachable' });
    await expect(probe.baseline(endpoint, 'u', 'p')).resolves.toBeNull();
  });
});

// The mail account most end-to-end tests start with: one private Dovecot mailbox read over IMAP and a private SMTP
// server to send through (plain loopback connections, no TLS).
import { expect } from 'vitest';
import type { DovecotHandle, DovecotUser } from './dovecot.js';
import type { SmtpServerHandle } from './smtp-server.js';
import type { TestService } from './service.js';

/** POST /api/accounts for `user` on the test servers; fails the test unless it is created (201). */
export async function addMailAccount(svc: TestService, dovecot: Pick<DovecotHandle, 'host' | 'port'>, smtp: Pick<SmtpServerHandle, 'host' | 'port'>, user: Pick<DovecotUser, 'user' | 'password'>) {
  const account = await svc.call('POST', '/api/accounts', {
    address: user.user,
    password: user.password,
    imap: { host: dovecot.host, port: dovecot.port, secure: false, starttls: 'off' },
    smtp: { host: smtp.host, port: smtp.port, secure: false, starttls: 'off' },
  });
  expect(account.status, JSON.stringify(account.body)).toBe(201);
  return account;
}

// Integration tests of the SMTP sender against a private SMTP server and the Sent-folder append against a private Dovecot.
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerEndpoint } from '../../core/account.js';
import { AUTO_REPLY_HEADERS } from '../../core/policies/loop-guard.js';
import { silentLogger, type Logger } from '../../core/ports.js';
import { makeMessageId } from '../../core/threading/match.js';
import { startDovecot, type DovecotHandle } from '../../../test/helpers/dovecot.js';
import { freePort } from '../../../test/helpers/ports.js';
import { startSmtpServer, type SmtpServerHandle } from '../../../test/helpers/smtp-server.js';
import { appendToSent } from '../imap/sent-folder.js';
import { createMailSender, MailSendError, transportFingerprint, UnsafeMessageError, type OutgoingMessage, type SenderAccount } from './sender.js';

const silent: Logger = silentLogger;
const USER = { user: 'support', password: 'secret-pw' };
const PNG = Uint8Array.from(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64'));

const endpoint = (port: number): ServerEndpoint => ({ host: '127.0.0.1', port, secure: false, starttls: 'off' });

function account(port: number, over: Partial<SenderAccount> = {}): SenderAccount {
  return { id: 'acc1', address: 'support@example.com', smtp: endpoint(port), username: USER.user, password: USER.password, displayName: 'Support', ...over };
}

function reply(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    from: { address: 'support@example.com', name: 'Support Team' },
    to: [{ address: 'customer@example.org', name: 'Jörg Müller' }],
    subject: 'Re: Lieferung verspätet – ärgerlich [#S123]',
    text: 'Hello, see the image below.',
    messageId: makeMessageId('S123', 'example.com'),
    ...over,
  };
}

describe('SMTP sender (private SMTP server)', () => {
  let smtp: SmtpServerHandle;
  beforeAll(async () => {
    smtp = await startSmtpServer({ users: [USER] });
  });
  afterAll(async () => {
    await smtp?.stop();
  });

  it('sends a threaded reply with Cc/Bcc, inline image, attachment and Auto-Submitted; headers parse back exactly', async () => {
    const sender = createMailSender({ logger: silent });
    try {
      const msg = reply({
        cc: [{ address: 'boss@example.org' }],
        bcc: [{ address: 'audit@example.net' }],
        replyTo: { address: 'support@example.com' },
        inReplyTo: '<orig-2@mail.example.org>',
        references: ['<orig-1@mail.example.org>', '<orig-2@mail.example.org>'],
        html: '<p>Hello</p><img src="cid:logo@ec">',
        headers: { ...AUTO_REPLY_HEADERS },
        attachments: [
          { filename: 'logo.png', contentType: 'image/png', content: PNG, cid: 'logo@ec' },
          { filename: 'rechnung.txt', contentType: 'text/plain', content: new TextEncoder().encode('Rechnung 42\n') },
        ],
      });
      const before = smtp.received.length;
      const res = await sender.send(account(smtp.port), msg);
      expect(res.messageId).toBe(msg.messageId);
      expect(res.accepted.sort()).toEqual(['audit@example.net', 'boss@example.org', 'customer@example.org']);
      expect(res.rejected).toEqual([]);

      expect(smtp.received.length).toBe(before + 1);
      const got = smtp.received.at(-1)!;
      expect(got.from).toBe('support@example.com');
      expect(got.to.sort()).toEqual(['audit@example.net', 'boss@example.org', 'customer@example.org']);
      // The server received exactly the bytes we return for the Sent folder and the archive.
      expect(Buffer.compare(got.raw, Buffer.from(res.raw))).toBe(0);

      const parsed = await simpleParser(got.raw);
      expect(parsed.messageId).toBe(msg.messageId);
      expect(parsed.inReplyTo).toBe('<orig-2@mail.example.org>');
      expect(parsed.references).toEqual(['<orig-1@mail.example.org>', '<orig-2@mail.example.org>']);
      expect(parsed.subject).toBe('Re: Lieferung verspätet – ärgerlich [#S123]');
      expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
      expect(parsed.headers.get('x-auto-response-suppress')).toBe('All');
      expect(parsed.headers.has('bcc')).toBe(false);
      expect(got.raw.toString('latin1')).not.toMatch(/audit@example\.net/);
      expect(parsed.cc && !Array.isArray(parsed.cc) ? parsed.cc.value[0]?.address : undefined).toBe('boss@example.org');
      expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0] : undefined).toMatchObject({ address: 'customer@example.org', name: 'Jörg Müller' });
      const inline = parsed.attachments.find((a) => a.cid === 'logo@ec');
      expect(inline?.contentType).toBe('image/png');
      expect(Buffer.compare(inline!.content, Buffer.from(PNG))).toBe(0);
      const file = parsed.attachments.find((a) => a.filename === 'rechnung.txt');
      expect(file?.content.toString('utf8')).toBe('Rechnung 42\n');
      // mailparser inlines cid: images as data URIs; the wire form is multipart/related with the Content-ID.
      expect(inline?.related).toBe(true);
      expect(got.raw.toString('latin1')).toMatch(/multipart\/related/i);
      expect(got.raw.toString('latin1')).toMatch(/Content-ID: <logo@ec>/i);
      expect(parsed.html).toContain('<img src="data:image/png;base64,');
      expect(parsed.text?.trim()).toBe('Hello, see the image below.');
    } finally {
      await sender.close();
    }
  });

  it('refuses header injection before any network', async () => {
    const sender = createMailSender({ logger: silent });
    // Port 1 would fail differently if anything were sent.
    const acc = account(1);
    const cases: Partial<OutgoingMessage>[] = [
      { subject: 'Hi\r\nBcc: victim@example.org' },
      { subject: 'Hi\nX: y' },
      { subject: 'Hi\0' },
      { from: { address: 'support@example.com', name: 'Eve\r\nBcc: x@example.org' } },
      { to: [{ address: 'a@example.org\r\nBcc: x@example.org' }] },
      { to: [{ address: 'a@example.org, x@example.org' }] },
      { headers: { 'Auto-Submitted': 'auto-replied\r\nBcc: x@example.org' } },
      { headers: { 'Bad Name': 'x' } },
      { headers: { Bcc: 'x@example.org' } },
      { inReplyTo: '<a@b>\r\nBcc: x@example.org' },
      { references: ['<a@b> <c@d>'] },
      { messageId: 'no-brackets@example.com' },
      { attachments: [{ filename: 'a\r\n.txt', contentType: 'text/plain', content: new Uint8Array(1) }] },
    ];
    try {
      for (const c of cases) {
        const err = await sender.send(acc, reply(c)).catch((e: unknown) => e);
        expect(err, JSON.stringify(c)).toBeInstanceOf(UnsafeMessageError);
        expect((err as UnsafeMessageError).delivery.kind).toBe('permanent');
      }
      const bad = await sender.send(account(1, { displayName: 'X\r\nY' }), reply()).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(UnsafeMessageError);
    } finally {
      await sender.close();
    }
  });

  it('classifies a wrong password as auth', async () => {
    const sender = createMailSender({ logger: silent });
    try {
      const err = await sender.send(account(smtp.port, { password: 'wrong' }), reply()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailSendError);
      expect((err as MailSendError).delivery.kind).toBe('auth');
      // A changed (correct) password gets a new transport and works.
      expect(transportFingerprint(account(smtp.port))).not.toBe(transportFingerprint(account(smtp.port, { password: 'wrong' })));
      await expect(sender.send(account(smtp.port), reply())).resolves.toMatchObject({ accepted: ['customer@example.org'] });
    } finally {
      await sender.close();
    }
  });

  it('classifies an unreachable port as retry', async () => {
    const sender = createMailSender({ logger: silent, timeouts: { connectionMs: 2_000, greetingMs: 2_000, socketMs: 2_000 } });
    try {
      const port = await freePort();
      const err = await sender.send(account(port), reply()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailSendError);
      expect((err as MailSendError).delivery).toMatchObject({ kind: 'retry', reason: 'network' });
    } finally {
      await sender.close();
    }
  });
});

describe('SMTP sender connection pooling', () => {
  let server: SMTPServer;
  let port: number;
  let connections = 0;
  let received = 0;
  beforeAll(async () => {
    port = await freePort();
    server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onConnect(_session, cb) {
        connections += 1;
        cb();
      },
      onAuth(auth, _session, cb) {
        const ok = auth.username === USER.user && auth.password === USER.password;
        cb(ok ? null : Object.assign(new Error('Invalid username or password'), { responseCode: 535 }), ok ? { user: auth.username } : undefined);
      },
      onData(stream, _session, cb) {
        stream.on('data', () => undefined);
        stream.on('end', () => {
          received += 1;
          cb();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('reuses one pooled connection across 5 sequential sends', async () => {
    const sender = createMailSender({ logger: silent });
    try {
      for (let i = 0; i < 5; i += 1) await sender.send(account(port), reply({ messageId: makeMessageId('S123', 'example.com') }));
      expect(received).toBe(5);
      expect(connections).toBe(1);
    } finally {
      await sender.close();
    }
  });
});

describe('Sent folder append (private Dovecot)', () => {
  let dovecot: DovecotHandle;
  let smtp: SmtpServerHandle;
  beforeAll(async () => {
    [dovecot, smtp] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER] })]);
  });
  afterAll(async () => {
    await Promise.all([dovecot?.stop(), smtp?.stop()]);
  });

  it('appends the exact sent bytes to \\Sent with \\Seen and fetches them back identical', async () => {
    const sender = createMailSender({ logger: silent });
    let raw: Uint8Array;
    try {
      ({ raw } = await sender.send(account(smtp.port), reply({ inReplyTo: '<x@y>', references: ['<x@y>'] })));
    } finally {
      await sender.close();
    }
    const conn = { imap: endpoint(dovecot.port), username: USER.user, password: USER.password, commandTimeoutMs: 10_000 };
    await expect(appendToSent(conn, raw)).resolves.toEqual({ folder: 'Sent' });

    const client = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: USER.user, pass: USER.password }, logger: false });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.mailboxOpen('Sent');
      const msgs = [];
      for await (const m of client.fetch('1:*', { source: true, flags: true })) msgs.push(m);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.flags?.has('\\Seen')).toBe(true);
      expect(Buffer.compare(msgs[0]!.source!, Buffer.from(raw))).toBe(0);
    } finally {
      await client.logout().catch(() => client.close());
    }
  });

  it('fails on a wrong password instead of pretending it appended', async () => {
    const conn = { imap: endpoint(dovecot.port), username: USER.user, password: 'wrong', commandTimeoutMs: 5_000 };
    await expect(appendToSent(conn, new TextEncoder().encode('Subject: x\r\n\r\nx\r\n'))).rejects.toBeTruthy();
  });
});

// Proves the private test servers: Dovecot (login, append, fetch, special-use, auth failure, restart, kill) and Redis.
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { ImapFlow } from 'imapflow';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessage, startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { startRedis } from './helpers/redis-server.js';

const USER = 'agent@example.test';
const PASSWORD = 's3cret-pw';

function rawMail(subject: string, messageId: string): string {
  return [
    'From: Customer <customer@example.org>',
    `To: Support <${USER}>`,
    `Subject: ${subject}`,
    `Message-ID: <${messageId}>`,
    'Date: Mon, 03 Feb 2025 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello, my order has not arrived.',
    '',
  ].join('\r\n');
}

function imapClient(dv: DovecotHandle, pass = PASSWORD): ImapFlow {
  const client = new ImapFlow({
    host: dv.host,
    port: dv.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: USER, pass },
    logger: false,
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
  });
  client.on('error', () => undefined);
  return client;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('private Dovecot (test/helpers/dovecot.ts)', () => {
  let dv: DovecotHandle;

  beforeAll(async () => {
    dv = await startDovecot({ users: [{ user: USER, password: PASSWORD }] });
  });

  afterAll(async () => {
    await dv?.stop();
  });

  it('listens on loopback and reports its version', () => {
    expect(dv.host).toBe('127.0.0.1');
    expect(dv.port).toBeGreaterThan(0);
    expect(dv.version).toMatch(/^\d+\.\d+/);
    expect(dv.users).toEqual([{ user: USER, password: PASSWORD }]);
  });

  it('logs in, appends a message and fetches it back', async () => {
    const client = imapClient(dv);
    await client.connect();
    try {
      const raw = rawMail('Order 1234 missing', 'order-1234@example.org');
      const appended = await client.append('INBOX', raw);
      expect(appended && appended.uid).toBeGreaterThan(0);
      const lock = await client.getMailboxLock('INBOX');
      try {
        const uid = appended ? appended.uid : undefined;
        expect(uid).toBeDefined();
        const msg = await client.fetchOne(String(uid), { source: true, envelope: true, uid: true }, { uid: true });
        expect(msg).not.toBe(false);
        if (!msg) return;
        expect(msg.envelope?.subject).toBe('Order 1234 missing');
        expect(msg.envelope?.messageId).toBe('<order-1234@example.org>');
        expect(msg.source?.toString('utf8')).toBe(raw);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    expect(existsSync(dv.maildir(USER))).toBe(true);
  });

  it('has the special-use folders, with \\Sent', async () => {
    const client = imapClient(dv);
    await client.connect();
    try {
      const boxes = await client.list();
      const byUse = new Map(boxes.filter((b) => b.specialUse).map((b) => [b.specialUse, b.path]));
      expect(byUse.get('\\Sent')).toBe('Sent');
      expect(byUse.get('\\Drafts')).toBe('Drafts');
      expect(byUse.get('\\Trash')).toBe('Trash');
      expect(byUse.get('\\Junk')).toBe('Junk');
      expect(boxes.find((b) => b.path === 'Sent')?.subscribed).toBe(true);
    } finally {
      await client.logout();
    }
  });

  it('rejects a wrong password with an authentication failure', async () => {
    const client = imapClient(dv, 'wrong-password');
    const err = await client.connect().then(
      () => undefined,
      (e: unknown) => e as { authenticationFailed?: boolean; serverResponseCode?: string },
    );
    client.close();
    expect(err).toBeDefined();
    expect(err?.authenticationFailed).toBe(true);
    expect(err?.serverResponseCode).toBe('AUTHENTICATIONFAILED');
  });

  it('appendMessage() files into Sent, and mail survives restart() and kill()', async () => {
    const res = await appendMessage(dv, USER, Buffer.from(rawMail('Re: Order 1234', 'reply-1@example.test')), 'Sent');
    expect(res.destination).toBe('Sent');
    expect(res.uid).toBeGreaterThan(0);

    // A client idling when the server restarts sees its connection close.
    const idler = imapClient(dv);
    await idler.connect();
    await idler.mailboxOpen('INBOX');
    const closed = new Promise<void>((resolve) => idler.once('close', () => resolve()));
    await dv.restart();
    await closed;

    const after = await appendMessage(dv, USER, rawMail('Second', 'second@example.org'));
    expect(after.destination).toBe('INBOX');

    // kill() takes the whole instance down at once: every connection drops, the port closes.
    const victim = imapClient(dv);
    await victim.connect();
    const dropped = new Promise<void>((resolve) => victim.once('close', () => resolve()));
    await dv.kill();
    await dropped;
    expect(await portOpen(dv.port)).toBe(false);

    await dv.restart();
    const client = imapClient(dv);
    await client.connect();
    try {
      const inbox = await client.status('INBOX', { messages: true });
      const sent = await client.status('Sent', { messages: true });
      expect(inbox && inbox.messages).toBe(2);
      expect(sent && sent.messages).toBe(1);
    } finally {
      await client.logout();
    }
  });

  it('stop() shuts the server down and removes its directory', async () => {
    const other = await startDovecot({ users: [{ user: 'x', password: 'y' }] });
    expect(other.port).not.toBe(dv.port);
    expect(await portOpen(other.port)).toBe(true);
    await other.stop();
    expect(await portOpen(other.port)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
  });

  it('refuses user names and passwords that would corrupt the passwd file', async () => {
    await expect(startDovecot({ users: [{ user: 'a:b', password: 'p' }] })).rejects.toThrow(/':'/);
    await expect(startDovecot({ users: [{ user: 'a', password: 'p\nq' }] })).rejects.toThrow(/line breaks/);
  });
});

describe('private Redis (test/helpers/redis-server.ts)', () => {
  it('serves SET/GET and keeps data across kill() and restart() (AOF, appendfsync always)', async () => {
    const server = await startRedis({ appendfsync: 'always' });
    try {
      const first = createClient({ url: server.url });
      first.on('error', () => undefined);
      await first.connect();
      await first.set('ec:test:key', 'value-1');
      expect(await first.get('ec:test:key')).toBe('value-1');
      first.destroy();

      await server.kill();
      expect(await portOpen(server.port)).toBe(false);
      await server.restart();

      const second = createClient({ url: server.url });
      second.on('error', () => undefined);
      await second.connect();
      try {
        expect(await second.get('ec:test:key')).toBe('value-1');
      } finally {
        second.destroy();
      }
    } finally {
      await server.stop();
    }
    expect(existsSync(server.dir)).toBe(false);
  });
});

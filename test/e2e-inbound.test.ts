// End to end with real servers: mail appended to a private Dovecot becomes sessions in the service
// process; kill -9 in the middle of a 500-message batch loses nothing and duplicates nothing [R-REL-1];
// two instances on one Redis read each mailbox once and take over from each other [R-REL-2].
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';
import { api, startServiceProcess, type RunningService } from './helpers/service-process.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { tempDirs } from './helpers/temp-dirs.js';

const TOKEN = 'e2e-admin-token-0123456789abcdef';
const SECRET = 'ef'.repeat(32);
const USER = { user: 'support@shop.example', password: 'imap-pass-1' };

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let redis: RedisServerHandle;
const procs: RunningService[] = [];

const temp = tempDirs('ec-e2e-');
const tempDir = (): string => temp.make();

async function start(env: Record<string, string>): Promise<RunningService> {
  const p = await startServiceProcess({ ADMIN_TOKEN: TOKEN, SECRET_KEY: SECRET, ...env });
  procs.push(p);
  return p;
}

function message(i: number, tag: string): string {
  return [
    `From: Customer ${i} <customer${i}@example.com>`,
    `To: ${USER.user}`,
    `Subject: ${tag} question ${i}`,
    `Message-ID: <${tag}-${i}@example.com>`,
    `Date: ${new Date().toUTCString()}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Hello, this is message ${i} of batch ${tag}.`,
    '',
  ].join('\r\n');
}

/** Appends many messages over one IMAP connection (fast). */
async function appendMany(count: number, tag: string, from = 0): Promise<void> {
  const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user: USER.user, pass: USER.password }, logger: false, doSTARTTLS: false });
  await client.connect();
  try {
    for (let i = from; i < from + count; i++) await client.append('INBOX', message(i, tag));
  } finally {
    await client.logout().catch(() => undefined);
  }
}

async function setUp(base: string): Promise<string> {
  expect((await api(base, TOKEN, 'PUT', '/api/settings', { emailChannel: { enabled: true } })).status).toBe(200);
  const account = await api(base, TOKEN, 'POST', '/api/accounts', {
    address: USER.user,
    password: USER.password,
    imap: { host: dovecot.host, port: dovecot.port, secure: false, starttls: 'off' },
    smtp: { host: smtp.host, port: smtp.port, secure: false, starttls: 'off' },
  });
  expect(account.status, JSON.stringify(account.body)).toBe(201);
  expect(account.body.status.valid, JSON.stringify(account.body.status)).toBe(true);
  const queue = await api(base, TOKEN, 'POST', '/api/queues', { name: 'Support', language: 'en', email: { enabled: true, addresses: [account.body.id] } });
  expect(queue.status, JSON.stringify(queue.body)).toBe(201);
  return queue.body.id as string;
}

/** Every session of the service (paged), with its messages' Message-IDs. */
async function allSessions(base: string): Promise<{ id: string; queueId: string | null; messageCount: number; subject: string }[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const res: any = await api(base, TOKEN, 'GET', `/api/sessions?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (!cursor) break;
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

beforeAll(async () => {
  [dovecot, smtp, redis] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER] }), startRedis({ appendfsync: 'always' })]);
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill9()));
  await Promise.all([dovecot?.stop(), smtp?.stop(), redis?.stop()]);
  temp.removeAll();
});

describe('inbound end to end (service process + Dovecot)', () => {
  it('kill -9 in the middle of a 500-message batch: after restart every message has exactly one session, none missing', async () => {
    const dataDir = tempDir();
    let svc = await start({ DATA_DIR: dataDir });
    const queueId = await setUp(svc.base);
    // The account's baseline is taken at save: stop the service, let 500 messages arrive, start it,
    // and kill -9 it while it works through them.
    await svc.stop();
    await appendMany(500, 'batch');
    svc = await start({ DATA_DIR: dataDir });
    const before = await waitFor('ingest under way', () => allSessions(svc.base), (s) => s.length >= 60, 90_000);
    await svc.kill9();
    console.info(`kill -9 after ${before.length} sessions were visible`);
    expect(before.length).toBeLessThan(500);
    svc = await start({ DATA_DIR: dataDir });
    const sessions = await waitFor('all 500 sessions', () => allSessions(svc.base), (s) => s.length >= 500, 120_000);
    await new Promise((r) => setTimeout(r, 1500)); // anything late would show up as a duplicate now
    const final = await allSessions(svc.base);
    expect(final).toHaveLength(500);
    const subjects = new Set(final.map((s) => s.subject));
    expect(subjects.size).toBe(500);
    for (const s of final) {
      expect(s.messageCount).toBe(1);
      expect(s.queueId).toBe(queueId);
    }
    expect(sessions.length).toBe(500);
    const health = await fetch(`${svc.base}/health`).then((r) => r.json() as Promise<any>);
    expect(health.mailboxes).toHaveLength(1);
    expect(['idle', 'connected']).toContain(health.mailboxes[0].state);
    await svc.stop();
  }, 240_000);

  it('every malformed and automated corpus mail appended to Dovecot ends as a session message or a quarantine entry, and mail after them still flows [R-REL-3]', async () => {
    const corpus = join(import.meta.dirname, '..', '..', 'shared', 'corpus');
    const files = ['malformed', 'automated'].flatMap((d) => readdirSync(join(corpus, d)).filter((f) => f.endsWith('.eml')).map((f) => readFileSync(join(corpus, d, f))));
    const svc = await start({ DATA_DIR: tempDir() });
    await setUp(svc.base);
    const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, auth: { user: USER.user, pass: USER.password }, logger: false, doSTARTTLS: false });
    await client.connect();
    try {
      for (const raw of files) await client.append('INBOX', raw);
    } finally {
      await client.logout().catch(() => undefined);
    }
    await appendMany(1, 'after-corpus');
    const sessions = await waitFor('the mail after the corpus', () => allSessions(svc.base), (s) => s.some((x) => x.subject === 'after-corpus question 0'), 120_000);
    const quarantine = (await api(svc.base, TOKEN, 'GET', '/api/quarantine?limit=1000')).body.items as unknown[];
    const messages = sessions.reduce((n, s) => n + s.messageCount, 0) - 1;
    // Byte-identical copies and copies differing only in transport headers are one message (dedupe by
    // Message-ID, then by what the sender wrote); everything else is a message or a quarantine entry.
    const health = (await fetch(`${svc.base}/health`).then((r) => r.json())) as any;
    console.info(`corpus via Dovecot: ${files.length} files → ${messages} session messages + ${quarantine.length} quarantined; mailbox ${JSON.stringify(health.mailboxes)}`);
    expect(messages + quarantine.length).toBeGreaterThanOrEqual(files.length - 15);
    expect(messages + quarantine.length).toBeLessThanOrEqual(files.length);
    expect(health.mailboxes[0].lastError).toBeNull();
    await svc.stop();
  }, 180_000);

  it('two instances on one Redis: one reads the mailbox, the other takes over within 30 s of a kill -9 [R-REL-2]', async () => {
    const redisUrl = `${redis.url}/3`;
    const a = await start({ DATA_DIR: tempDir(), REDIS_URL: redisUrl });
    const b = await start({ DATA_DIR: tempDir(), REDIS_URL: redisUrl });
    await setUp(a.base);
    await appendMany(20, 'multi');
    await waitFor('20 sessions', () => allSessions(b.base), (s) => s.filter((x) => x.subject.startsWith('multi')).length >= 20, 60_000);
    const healthA = (await fetch(`${a.base}/health`).then((r) => r.json())) as any;
    const healthB = (await fetch(`${b.base}/health`).then((r) => r.json())) as any;
    console.info(`health A ${JSON.stringify(healthA.mailboxes)} B ${JSON.stringify(healthB.mailboxes)}`);
    // Exactly one instance runs the mailbox worker.
    expect(healthA.mailboxes.length + healthB.mailboxes.length).toBe(1);
    const owner = healthA.mailboxes.length === 1 ? a : b;
    const other = owner === a ? b : a;
    await owner.kill9();
    const killedAt = Date.now();
    await appendMany(10, 'takeover');
    await waitFor('takeover sessions', () => allSessions(other.base), (s) => s.filter((x) => x.subject.startsWith('takeover')).length >= 10, 45_000);
    const tookMs = Date.now() - killedAt;
    console.info(`takeover: mail flowing again ${tookMs} ms after kill -9`);
    expect(tookMs).toBeLessThan(40_000);
    const all = await allSessions(other.base);
    expect(all.filter((x) => x.subject.startsWith('multi'))).toHaveLength(20);
    expect(all.filter((x) => x.subject.startsWith('takeover'))).toHaveLength(10);
  }, 180_000);
});

// Mail archive end to end (R-STO-1..4): every inbound and outbound message as .eml and, at session end, the PDF,
// metadata file and JSON transcript, on the local folder (default) and on S3 (s3rver behind a SigV4-checking proxy);
// a refused PUT keeps the old settings; an S3 outage delays the archive without blocking ingest and everything lands
// once, when the bucket is back; retention purges bodies here while the raw download reads the archive.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArchiveStore } from '../src/adapters/archive/index.js';
import { poll } from './helpers/poll.js';
import { addMailAccount } from './helpers/mail-setup.js';
import { appendMessage, startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { startS3Server, type S3ServerHandle } from './helpers/s3-server.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { startTestService, TEST_ADMIN_TOKEN, type TestService } from './helpers/service.js';

const USER = { user: 'archive@shop.example', password: 'imap-pass-4' };
const DAY = 86_400_000;

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let s3: S3ServerHandle;
let svc: TestService;
let agentId: string;
let offset = 0;
const clock = { now: () => Date.now() + offset };
let seq = 0;

async function append(subject: string): Promise<string> {
  const id = `arch-${++seq}-${Date.now()}@customer.example`;
  await appendMessage(dovecot, USER.user, `From: Kim <kim@customer.example>\r\nTo: ${USER.user}\r\nSubject: ${subject}\r\nMessage-ID: <${id}>\r\nDate: ${new Date().toUTCString()}\r\nContent-Type: text/plain\r\n\r\nArchive me: ${subject}\r\n`);
  return id;
}

const sessionOf = async (messageId: string) => {
  const claim = await svc.services.store.get<{ sessionId: string }>(`msgid:${messageId}`);
  return claim ? (await svc.call('GET', `/api/sessions/${claim.sessionId}`)).body : undefined;
};

const rawDownload = async (sessionId: string, msgId: string) => {
  const res = await svc.services.app.request(`/api/sessions/${sessionId}/messages/${msgId}/raw`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
};

const s3Config = () => ({
  provider: 's3',
  bucket: s3.bucket,
  folder: 'mail',
  s3: { region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
});

/** The archive as the service would read it, listed directly. */
const s3Store = () =>
  createArchiveStore(
    { provider: 's3', bucket: s3.bucket, folder: 'mail', retentionDays: null, s3: { region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }, gcs: null },
    { dataDir: svc.dataDir },
  );

beforeAll(async () => {
  [dovecot, smtp, s3] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER] }), startS3Server()]);
  svc = await startTestService({ clock });
  expect((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } })).status).toBe(200);
  const account = await addMailAccount(svc, dovecot, smtp, USER);
  const agent = await svc.call('POST', '/api/agents', { name: 'Lou Agent', firstName: 'Lou', email: 'lou@shop.example', company: 'Shop' });
  agentId = agent.body.id;
  expect((await svc.call('POST', '/api/queues', { name: 'Archive', language: 'en', email: { enabled: true, addresses: [account.body.id], agents: [agentId] } })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await Promise.all([dovecot?.stop(), smtp?.stop(), s3?.stop()]);
});

describe('archive', () => {
  it('defaults to the local folder, forever; archives each message and, at session end, PDF + metadata + transcript', async () => {
    expect((await svc.call('GET', '/api/storage')).body).toMatchObject({ provider: 'local', retentionDays: null });
    const mid = await append('Local archive');
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const reply = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Archived reply.' });
    expect(reply.status).toBe(202);
    expect((await svc.call('POST', `/api/sessions/${session.id}/status`, { status: 'closed' })).status).toBe(200);
    const dir = join(svc.dataDir, 'archive', session.id);
    // Every object in place (objects are written to a temporary name and renamed: wait for the final names).
    const complete = (n: string[]) =>
      n.filter((x) => x.endsWith('.eml')).length === 2 && ['_pdf_end1.pdf', '_metadata_end1.json', '_transcript_end1.json'].every((suffix) => n.some((x) => x.endsWith(suffix)));
    const names = await poll('archived objects', async () => (existsSync(dir) ? readdirSync(dir).sort() : []), complete);
    const inbound = session.messages[0];
    expect(names.filter((n) => n.endsWith('.eml'))).toHaveLength(2);
    expect(names.some((n) => n.endsWith(`_eml_${inbound.id}.eml`))).toBe(true);
    expect(names.some((n) => n.endsWith(`_eml_${reply.body.message.id}.eml`))).toBe(true);
    expect(names.some((n) => /_pdf_end1\.pdf$/.test(n))).toBe(true);
    expect(names.some((n) => /_metadata_end1\.json$/.test(n))).toBe(true);
    expect(names.some((n) => /_transcript_end1\.json$/.test(n))).toBe(true);
    // Names sort by time: the customer's mail before our reply.
    const emls = names.filter((n) => n.endsWith('.eml'));
    expect(emls[0]).toContain(inbound.id);
    const eml = readFileSync(join(dir, emls[0] as string));
    expect(Buffer.compare(eml, (await rawDownload(session.id, inbound.id)).bytes)).toBe(0);
    expect(readFileSync(join(dir, names.find((n) => n.endsWith('.pdf')) as string)).subarray(0, 5).toString()).toBe('%PDF-');
    const transcript = JSON.parse(readFileSync(join(dir, names.find((n) => n.includes('_transcript_')) as string), 'utf8'));
    expect(transcript.messages.map((m: any) => m.text)).toEqual(expect.arrayContaining([expect.stringContaining('Archive me: Local archive'), expect.stringContaining('Archived reply.')]));
  }, 120_000);

  it('refuses a storage setting that fails the connection test and keeps the old one; secrets stay write-only', async () => {
    const before = (await svc.call('GET', '/api/storage')).body;
    const noBucket = await svc.call('PUT', '/api/storage', { ...s3Config(), bucket: 'no-such-bucket' });
    expect(noBucket.status).toBe(400);
    expect(noBucket.body.error.fields[0].path).toBe('bucket');
    const badSecret = await svc.call('PUT', '/api/storage', { ...s3Config(), s3: { ...s3Config().s3, secretAccessKey: 'wrong' } });
    expect(badSecret.status).toBe(400);
    expect(badSecret.body.error.fields[0].path).toBe('s3.secretAccessKey');
    expect((await svc.call('GET', '/api/storage')).body).toEqual(before);
    const probe = await svc.call('POST', '/api/storage/test', { ...s3Config(), s3: { ...s3Config().s3, secretAccessKey: 'wrong' } });
    expect(probe.body).toMatchObject({ ok: false, error: { code: 'auth' } });
    const ok = await svc.call('PUT', '/api/storage', s3Config());
    expect(ok.status).toBe(200);
    expect(ok.body.s3).toMatchObject({ secretAccessKeySet: true });
    expect(JSON.stringify(ok.body)).not.toContain(s3.secretAccessKey);
    expect((await svc.call('POST', '/api/storage/test')).body).toEqual({ ok: true });
  }, 60_000);

  it('an S3 outage delays the archive without blocking ingest; everything lands once when it is back', async () => {
    await s3.stopBackend();
    const mids: string[] = [];
    try {
      for (let i = 0; i < 3; i++) mids.push(await append(`During the outage ${i}`));
      const sessions = await Promise.all(mids.map((m) => poll('ingested during the outage', () => sessionOf(m), (s) => !!s)));
      expect(sessions).toHaveLength(3);
      const health = await poll('archive backlog on /health', async () => (await svc.call('GET', '/health', undefined, null)).body, (h) => h.archive?.backlog >= 3 && !!h.archive?.lastError);
      expect(health.status).toBe('degraded');
      // The open /health names the kind of failure only; the admin API has the provider's words.
      expect(health.archive.lastError).toBe('network');
      expect(Object.keys(health.archive).sort()).toEqual(['backlog', 'lastError', 'lastErrorAt', 'lastSuccessAt']);
      const status = (await svc.call('GET', '/api/storage/status')).body;
      expect(status).toMatchObject({ lastError: 'network', backlog: expect.any(Number) });
      expect(status.lastErrorMessage).toBeTruthy();
      expect((await svc.call('GET', '/api/storage/status', undefined, null)).status).toBe(401);
      const metrics = await svc.services.app.request('/metrics', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      expect(await metrics.text()).toMatch(/email_channel_archive_backlog [1-9]/);
    } finally {
      await s3.startBackend();
    }
    const store = s3Store();
    for (const mid of mids) {
      const s = await sessionOf(mid);
      const keys = await poll(`archive of ${s.id}`, () => store.list(`mail/${s.id}/`, 100), (k) => k.length >= 1, 90_000);
      expect(keys).toEqual([expect.stringMatching(new RegExp(`^mail/${s.id}/.+_eml_${s.messages[0].id}\\.eml$`))]);
    }
    await poll('backlog drained', async () => (await svc.call('GET', '/health')).body.archive.backlog, (n) => n === 0, 60_000);
    // Exactly once per object: one .eml per stored message of these sessions, nothing else.
    for (const mid of mids) {
      const s = await sessionOf(mid);
      expect(await store.list(`mail/${s.id}/`, 100)).toHaveLength(s.messages.length);
    }
  }, 180_000);

  it('retention purges bodies from the store once archived; the raw download reads the archive; idempotent', async () => {
    const mid = await append('Retention case');
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const msgId = session.messages[0].id as string;
    const original = (await rawDownload(session.id, msgId)).bytes;
    await poll('archived', async () => (await svc.services.store.get<{ archive?: unknown }>(`smsg:${msgId}`))?.archive, (a) => !!a);
    expect((await svc.call('PUT', '/api/storage', { retentionDays: 30 })).status).toBe(200);
    expect(await svc.services.archive.purgeExpired()).toBe(0);
    offset = 31 * DAY;
    try {
      const purged = await svc.services.archive.purgeExpired();
      expect(purged).toBeGreaterThanOrEqual(1);
      const after = (await svc.call('GET', `/api/sessions/${session.id}`)).body;
      const m = after.messages.find((x: any) => x.id === msgId);
      expect(m.text).toBe('');
      expect(m.html).toBeNull();
      expect(m.messageId).toBe(mid);
      expect(m.subject).toBe('Retention case');
      const raw = await rawDownload(session.id, msgId);
      expect(raw.status).toBe(200);
      expect(Buffer.compare(raw.bytes, original)).toBe(0);
      expect(await svc.services.archive.purgeExpired()).toBe(0);
    } finally {
      offset = 0;
    }
  }, 90_000);
});

// Ingest of real and hostile mail into sessions, on the embedded store [R-SES-1, R-SES-2, R-SES-4,
// R-QUE-2, R-REL-1, R-REL-3]. Mailbox reading is tested separately (src/adapters/imap); this drives
// the ingest use case directly with the bytes a mailbox would hand over.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestService, type StoredMessage } from '../src/app/ingest-message.js';
import { SessionsService } from '../src/app/sessions-service.js';
import { SettingsService } from '../src/app/settings-service.js';
import { StoreBlobStore } from '../src/adapters/blob/store-blob-store.js';
import { parseMail } from '../src/adapters/parse/mail-parser.js';
import { openSqliteStore, type SqliteStore } from '../src/adapters/store/sqlite-store.js';
import { silentLogger, type FetchedMessage, type Logger } from '../src/core/ports.js';
import type { RoutingTables } from '../src/core/routing.js';
import { DAY_MS } from '../src/core/session/timers.js';
import { makeMessageId } from '../src/core/threading/match.js';

const CORPUS = join(import.meta.dirname, '..', '..', 'shared', 'corpus');
const silent: Logger = silentLogger;

let dir: string;
let store: SqliteStore;
let ingest: IngestService;
let sessions: SessionsService;
let settings: SettingsService;
let now = Date.UTC(2026, 10, 2, 9, 0);
const clock = { now: () => now };
let uid = 0;

const tables: RoutingTables = {
  accounts: [
    { id: 'acc_sales', address: 'sales@shop.example', aliases: ['ventes@shop.example'] },
    { id: 'acc_support', address: 'support@shop.example', aliases: [] },
    { id: 'acc_orphan', address: 'orphan@shop.example', aliases: [] },
  ],
  queueOfAccount: new Map([
    ['acc_sales', 'que_sales'],
    ['acc_support', 'que_support'],
  ]),
  defaultQueueId: null,
};
let currentTables = tables;

function fetched(raw: string | Buffer, over: Partial<FetchedMessage> = {}): FetchedMessage {
  const bytes = typeof raw === 'string' ? Buffer.from(raw.replace(/\r?\n/g, '\r\n')) : raw;
  uid++;
  return { accountId: 'acc_support', uidValidity: '1', uid, internalDate: now, size: bytes.length, raw: new Uint8Array(bytes), imported: false, ...over };
}

function mail(h: { id?: string | null; from?: string; to?: string; cc?: string; subject?: string; inReplyTo?: string; references?: string; extra?: string; body?: string }): string {
  const lines = [
    `From: ${h.from ?? 'Ann Customer <ann@example.com>'}`,
    `To: ${h.to ?? 'support@shop.example'}`,
    ...(h.cc ? [`Cc: ${h.cc}`] : []),
    `Subject: ${h.subject ?? 'Printer broken'}`,
    'Date: Mon, 02 Nov 2026 09:00:00 +0000',
    ...(h.id === null ? [] : [`Message-ID: <${h.id ?? `m${Math.random().toString(36).slice(2)}@example.com`}>`]),
    ...(h.inReplyTo ? [`In-Reply-To: <${h.inReplyTo}>`] : []),
    ...(h.references ? [`References: ${h.references}`] : []),
    ...(h.extra ? [h.extra] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    h.body ?? 'Hello, my printer is broken.',
    '',
  ];
  return lines.join('\n');
}

async function sessionOf(messageId: string) {
  const claim = await store.get<{ sessionId: string }>(`msgid:${messageId}`);
  return claim ? sessions.getStored(claim.sessionId) : undefined;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ec-ingest-'));
  store = await openSqliteStore({ file: join(dir, 'db.sqlite'), clock });
  settings = new SettingsService(store);
  const blobs = new StoreBlobStore(store);
  ingest = new IngestService({ store, blobs, clock, logger: silent, parse: (raw) => parseMail(raw), settings: () => settings.get(), routingTables: async () => currentTables });
  sessions = new SessionsService({ store, blobs, clock, logger: silent, settings: () => settings.get() });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('new mail and routing [R-QUE-2]', () => {
  it('a new mail starts an unopened session in the queue owning the recipient', async () => {
    expect(await ingest.deliver(fetched(mail({ id: 'new-1@example.com' })))).toBe('stored');
    const s = await sessionOf('new-1@example.com');
    expect(s).toMatchObject({ status: 'unopened', queueId: 'que_support', subject: 'Printer broken', customer: { address: 'ann@example.com', name: 'Ann Customer' }, messageCount: 1 });
    expect(s?.id).toMatch(/^S[0-9A-Z]{10}$/);
  });
  it('an alias and a Cc address route too; To wins over Cc', async () => {
    await ingest.deliver(fetched(mail({ id: 'alias-1@example.com', to: 'ventes@shop.example' })));
    expect((await sessionOf('alias-1@example.com'))?.queueId).toBe('que_sales');
    await ingest.deliver(fetched(mail({ id: 'cc-1@example.com', to: 'someone@else.example', cc: 'sales@shop.example' })));
    expect((await sessionOf('cc-1@example.com'))?.queueId).toBe('que_sales');
    await ingest.deliver(fetched(mail({ id: 'two-1@example.com', to: 'sales@shop.example, support@shop.example' })));
    expect((await sessionOf('two-1@example.com'))?.queueId).toBe('que_sales');
  });
  it('Delivered-To routes when the visible recipients are unknown (Bcc)', async () => {
    await ingest.deliver(fetched(mail({ id: 'bcc-1@example.com', to: 'undisclosed-recipients:;', extra: 'Delivered-To: sales@shop.example' })));
    expect((await sessionOf('bcc-1@example.com'))?.queueId).toBe('que_sales');
  });
  it('an unknown address goes to the default queue, else the mailbox’s own queue', async () => {
    await ingest.deliver(fetched(mail({ id: 'unk-1@example.com', to: 'nobody@else.example' }), { accountId: 'acc_sales' }));
    expect((await sessionOf('unk-1@example.com'))?.queueId).toBe('que_sales');
    currentTables = { ...tables, defaultQueueId: 'que_default' };
    await ingest.deliver(fetched(mail({ id: 'unk-2@example.com', to: 'nobody@else.example' })));
    expect((await sessionOf('unk-2@example.com'))?.queueId).toBe('que_default');
    currentTables = tables;
    await ingest.deliver(fetched(mail({ id: 'unk-3@example.com', to: 'nobody@else.example' }), { accountId: 'acc_orphan' }));
    expect((await sessionOf('unk-3@example.com'))?.queueId).toBeNull();
  });
});

describe('threading [R-SES-2]', () => {
  it('In-Reply-To, References only, subject token, and our own Message-ID each thread into the session', async () => {
    await ingest.deliver(fetched(mail({ id: 'thread-root@example.com', subject: 'Order 42 missing' })));
    const root = await sessionOf('thread-root@example.com');
    expect(root).toBeDefined();
    await ingest.deliver(fetched(mail({ id: 'thread-r1@example.com', subject: 'Re: Order 42 missing', inReplyTo: 'thread-root@example.com' })));
    await ingest.deliver(fetched(mail({ id: 'thread-r2@example.com', subject: 'RE: Order 42 missing', references: '<thread-root@example.com> <unknown-outlook@x>', inReplyTo: 'unknown-outlook@x' })));
    await ingest.deliver(fetched(mail({ id: 'thread-r3@example.com', subject: `Something else [#${root?.id}]` })));
    const ours = makeMessageId(root?.id ?? '', 'shop.example', 'abc').slice(1, -1);
    await ingest.deliver(fetched(mail({ id: 'thread-r4@example.com', subject: 'Edited subject entirely', inReplyTo: ours })));
    for (const id of ['thread-r1', 'thread-r2', 'thread-r3', 'thread-r4']) expect((await sessionOf(`${id}@example.com`))?.id).toBe(root?.id);
    const detail = await sessions.detail(root?.id ?? '');
    expect(detail.messageCount).toBe(5);
    expect(detail.messages.map((m) => m.messageId)).toEqual(['thread-root@example.com', 'thread-r1@example.com', 'thread-r2@example.com', 'thread-r3@example.com', 'thread-r4@example.com']);
  });
  it('a token match from a stranger threads but records and flags the new participant', async () => {
    await ingest.deliver(fetched(mail({ id: 'tok-root@example.com', subject: 'Refund' })));
    const root = await sessionOf('tok-root@example.com');
    await ingest.deliver(fetched(mail({ id: 'tok-stranger@example.com', from: 'mallory@evil.example', subject: `Re: Refund [#${root?.id}]` })));
    const after = await sessions.getStored(root?.id ?? '');
    expect(after.participants).toEqual([{ address: 'mallory@evil.example' }]);
    const claim = await store.get<{ messageInternalId: string }>('msgid:tok-stranger@example.com');
    const msg = await store.get<StoredMessage>(`smsg:${claim?.messageInternalId}`);
    expect(msg?.flags).toContain('new_participant');
  });
  it('the optional sender + subject window threads only when turned on', async () => {
    await ingest.deliver(fetched(mail({ id: 'win-1@example.com', from: 'bob@example.com', subject: 'Invoice question' })));
    now += 60_000;
    await ingest.deliver(fetched(mail({ id: 'win-2@example.com', from: 'bob@example.com', subject: 'Re: Invoice question' })));
    now += 60_000;
    expect((await sessionOf('win-2@example.com'))?.id).not.toBe((await sessionOf('win-1@example.com'))?.id);
    await settings.update({ threading: { subjectWindowMinutes: 60 } });
    await ingest.deliver(fetched(mail({ id: 'win-3@example.com', from: 'bob@example.com', subject: 'AW: Invoice question' })));
    expect((await sessionOf('win-3@example.com'))?.id).toBe((await sessionOf('win-2@example.com'))?.id);
    await settings.update({ threading: { subjectWindowMinutes: 0 } });
  });
});

describe('statuses on inbound [R-SES-4]', () => {
  it('a reply on a paused session makes it active; on a closed one within 30 days reopens it', async () => {
    await ingest.deliver(fetched(mail({ id: 'st-root@example.com', subject: 'Status test' })));
    const root = await sessionOf('st-root@example.com');
    await sessions.setStatus(root?.id ?? '', 'paused', 'admin:test');
    await ingest.deliver(fetched(mail({ id: 'st-r1@example.com', inReplyTo: 'st-root@example.com' })));
    expect((await sessions.getStored(root?.id ?? '')).status).toBe('active');
    await sessions.setStatus(root?.id ?? '', 'closed', 'admin:test');
    now += 10 * DAY_MS;
    await ingest.deliver(fetched(mail({ id: 'st-r2@example.com', inReplyTo: 'st-r1@example.com' })));
    expect((await sessions.getStored(root?.id ?? '')).status).toBe('reopened');
  });
  it('after the reopen window, a reply starts a new session linked to the old one', async () => {
    await ingest.deliver(fetched(mail({ id: 'old-root@example.com', subject: 'Old thread' })));
    const old = await sessionOf('old-root@example.com');
    await sessions.setStatus(old?.id ?? '', 'closed', 'admin:test');
    now += 31 * DAY_MS;
    await ingest.deliver(fetched(mail({ id: 'old-r1@example.com', inReplyTo: 'old-root@example.com', subject: 'Re: Old thread' })));
    const fresh = await sessionOf('old-r1@example.com');
    expect(fresh?.id).not.toBe(old?.id);
    expect(fresh).toMatchObject({ linkedFrom: old?.id, status: 'unopened' });
    expect((await sessions.getStored(old?.id ?? '')).status).toBe('closed');
  });
});

describe('exactly once [R-REL-1]', () => {
  it('the same message delivered twice, or from a second mailbox, is stored once', async () => {
    const raw = mail({ id: 'dup-1@example.com' });
    expect(await ingest.deliver(fetched(raw))).toBe('stored');
    expect(await ingest.deliver(fetched(raw))).toBe('duplicate');
    expect(await ingest.deliver(fetched(raw, { accountId: 'acc_sales' }))).toBe('duplicate');
    const s = await sessionOf('dup-1@example.com');
    expect(s?.messageCount).toBe(1);
  });
  it('concurrent deliveries of one message store it once; of one thread, all of them', async () => {
    const raw = mail({ id: 'race-1@example.com', subject: 'Race' });
    const results = await Promise.all(Array.from({ length: 8 }, () => ingest.deliver(fetched(raw))));
    expect(results.filter((r) => r === 'stored')).toHaveLength(1);
    const root = await sessionOf('race-1@example.com');
    const replies = Array.from({ length: 10 }, (_, i) => mail({ id: `race-r${i}@example.com`, inReplyTo: 'race-1@example.com' }));
    await Promise.all(replies.map((r) => ingest.deliver(fetched(r))));
    expect((await sessions.getStored(root?.id ?? '')).messageCount).toBe(11);
  });
  it('a message without Message-ID is identified by its content hash', async () => {
    const raw = mail({ id: null, subject: 'No id here' });
    expect(await ingest.deliver(fetched(raw))).toBe('stored');
    expect(await ingest.deliver(fetched(raw))).toBe('duplicate');
  });
  it('a different mail reusing a Message-ID is kept, flagged, not dropped', async () => {
    await ingest.deliver(fetched(mail({ id: 'reused@example.com', subject: 'First' })));
    expect(await ingest.deliver(fetched(mail({ id: 'reused@example.com', subject: 'Second, different', from: 'other@example.com' })))).toBe('stored');
  });
});

describe('hostile input never crashes or blocks [R-REL-3]', () => {
  it('a message over the size limit is quarantined without its bytes', async () => {
    expect(await ingest.deliver(fetched(Buffer.alloc(0), { tooLarge: true, size: 40_000_000 }))).toBe('quarantined');
  });
  it('garbage bytes are quarantined with their raw kept', async () => {
    const before = (await store.indexCount('quarantine:created'));
    expect(await ingest.deliver(fetched(Buffer.from([0, 1, 2, 3, 255, 254, 0, 0])))).toMatch(/quarantined|stored/);
    expect(await store.indexCount('quarantine:created')).toBeGreaterThanOrEqual(before);
  });
  it('200 nested multiparts, 8-bit headers in an unknown charset, a 30 MB body', async () => {
    let nested = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
    for (let i = 0; i < 200; i++) nested = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${nested}--b${i}--\r\n`;
    const deep = `From: a@example.com\r\nTo: support@shop.example\r\nSubject: deep\r\nMessage-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n${nested}`;
    expect(['stored', 'quarantined']).toContain(await ingest.deliver(fetched(Buffer.from(deep))));
    const eightBit = Buffer.concat([Buffer.from('From: =?x-unknown?B?w6k=?= <e@example.com>\r\nTo: support@shop.example\r\nSubject: caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\r\nMessage-ID: <8bit@example.com>\r\n\r\nbody \xe9\r\n', 'latin1')]);
    expect(await ingest.deliver(fetched(eightBit))).toBe('stored');
    const big = mail({ id: 'big@example.com', body: 'x'.repeat(30 * 1024 * 1024) });
    expect(await ingest.deliver(fetched(big))).toBe('stored');
    // And ordinary mail still flows afterwards.
    expect(await ingest.deliver(fetched(mail({ id: 'after-hostile@example.com' })))).toBe('stored');
  }, 60_000);
  it('every malformed and automated mail of the shared corpus ends as one session message or one quarantine entry', async () => {
    const files = ['malformed', 'automated'].flatMap((d) => readdirSync(join(CORPUS, d)).filter((f) => f.endsWith('.eml')).map((f) => join(CORPUS, d, f)));
    expect(files.length).toBeGreaterThan(300);
    const outcomes = { stored: 0, duplicate: 0, quarantined: 0 };
    for (const file of files) outcomes[await ingest.deliver(fetched(readFileSync(file)))]++;
    // Every file is accounted for; duplicates are corpus files sharing a Message-ID with an identical header triple.
    expect(outcomes.stored + outcomes.duplicate + outcomes.quarantined).toBe(files.length);
    expect(outcomes.stored).toBeGreaterThan(files.length * 0.9);
    expect(await ingest.deliver(fetched(mail({ id: 'after-corpus@example.com' })))).toBe('stored');
    console.info(`corpus: ${JSON.stringify(outcomes)} of ${files.length}`);
  }, 120_000);
});

describe('quarantine retry', () => {
  it('lists an entry and releases it once it parses', async () => {
    const { QuarantineService } = await import('../src/app/quarantine-service.js');
    const q = new QuarantineService(store, new StoreBlobStore(store), ingest);
    const page = await q.list(1000);
    const tooLarge = page.items.find((e) => e.reason === 'too_large');
    expect(tooLarge).toMatchObject({ rawAvailable: false, state: 'open' });
    await expect(q.retry(tooLarge?.id ?? '')).rejects.toThrow(/size limit/);
  });
});

describe('timers sweep [R-SES-4, R-SES-5]', () => {
  it('moves due sessions only, honours switches and changed thresholds', async () => {
    await ingest.deliver(fetched(mail({ id: 'tm-paused@example.com', subject: 'Timer paused' })));
    await ingest.deliver(fetched(mail({ id: 'tm-resolved@example.com', subject: 'Timer resolved' })));
    await ingest.deliver(fetched(mail({ id: 'tm-active@example.com', subject: 'Timer active' })));
    const p = await sessionOf('tm-paused@example.com');
    const r = await sessionOf('tm-resolved@example.com');
    const a = await sessionOf('tm-active@example.com');
    await sessions.setStatus(p?.id ?? '', 'paused', 'admin:t');
    await sessions.setStatus(r?.id ?? '', 'resolved', 'admin:t');
    await sessions.setStatus(a?.id ?? '', 'active', 'admin:t');
    now += 29 * DAY_MS;
    await sessions.runTimers();
    expect((await sessions.getStored(r?.id ?? '')).status).toBe('resolved');
    now += DAY_MS;
    await sessions.runTimers();
    expect((await sessions.getStored(r?.id ?? '')).status).toBe('closed');
    expect((await sessions.getStored(a?.id ?? '')).status).toBe('paused');
    expect((await sessions.getStored(p?.id ?? '')).status).toBe('paused');
    // Paused → Closed is 60 days; lowering it to 20 applies to the existing session at once.
    await settings.update({ timers: { pausedToClosed: { days: 20 } } });
    await sessions.runTimers();
    expect((await sessions.getStored(p?.id ?? '')).status).toBe('closed');
    // The session paused by the timer 0 days ago stays paused; with the timer off nothing moves.
    await settings.update({ timers: { pausedToClosed: { enabled: false } } });
    now += 100 * DAY_MS;
    await sessions.runTimers();
    expect((await sessions.getStored(a?.id ?? '')).status).toBe('paused');
    await settings.update({ timers: { pausedToClosed: { enabled: true, days: 60 } } });
  });
});

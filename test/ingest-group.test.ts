// TEMPORARY verification of IngestService group commits (not to be kept).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestService } from '../src/app/ingest-message.js';
import { SessionsService } from '../src/app/sessions-service.js';
import { SettingsService } from '../src/app/settings-service.js';
import { StoreBlobStore } from '../src/adapters/blob/store-blob-store.js';
import { parseMail } from '../src/adapters/parse/mail-parser.js';
import { openSqliteStore, type SqliteStore } from '../src/adapters/store/sqlite-store.js';
import { silentLogger, CommitConflictError, StoreUnavailableError, type FetchedMessage, type Logger, type Store, type WriteOp } from '../src/core/ports.js';
import type { RoutingTables } from '../src/core/routing.js';

const silent: Logger = silentLogger;
let dir: string;
let store: SqliteStore;
let settings: SettingsService;
let sessions: SessionsService;
const clock = { now: () => Date.UTC(2026, 10, 2, 9, 0) };
let uid = 0;
const tables: RoutingTables = { accounts: [{ id: 'acc_support', address: 'support@shop.example', aliases: [] }], queueOfAccount: new Map([['acc_support', 'que_support']]), defaultQueueId: null };

function fetched(raw: string, over: Partial<FetchedMessage> = {}): FetchedMessage {
  const bytes = Buffer.from(raw.replace(/\r?\n/g, '\r\n'));
  uid++;
  return { accountId: 'acc_support', uidValidity: '1', uid, internalDate: clock.now(), size: bytes.length, raw: new Uint8Array(bytes), imported: false, ...over };
}
function mail(h: { id: string; from?: string; subject?: string; inReplyTo?: string; body?: string }): string {
  return [`From: ${h.from ?? 'Ann <ann@example.com>'}`, 'To: support@shop.example', `Subject: ${h.subject ?? 'Printer broken'}`, 'Date: Mon, 02 Nov 2026 09:00:00 +0000', `Message-ID: <${h.id}>`, ...(h.inReplyTo ? [`In-Reply-To: <${h.inReplyTo}>`] : []), 'Content-Type: text/plain; charset=utf-8', '', h.body ?? 'Hello.', ''].join('\n');
}
const sessionOf = async (id: string) => {
  const claim = await store.get<{ sessionId: string }>(`msgid:${id}`);
  return claim ? sessions.getStored(claim.sessionId) : undefined;
};

function make(wrap: (s: Store) => Store = (s) => s) {
  const st = wrap(store);
  const blobs = new StoreBlobStore(st);
  return new IngestService({ store: st, blobs, clock, logger: silent, parse: (raw) => parseMail(raw), settings: () => settings.get(), routingTables: async () => tables, blobOps: (k, d, m) => blobs.opsFor(k, d, m) });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ec-group-'));
  store = await openSqliteStore({ file: join(dir, 'db.sqlite'), clock });
  settings = new SettingsService(store);
  sessions = new SessionsService({ store, blobs: new StoreBlobStore(store), clock, logger: silent, settings: () => settings.get() });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('group commit', () => {
  it('decides each in order against the earlier ones and commits once', async () => {
    let commits = 0;
    const ingest = make((s) => { const w = Object.create(s) as Store; w.commit = (ops, jobs) => { commits++; return s.commit(ops, jobs); }; return w; });
    const ms = [
      fetched(mail({ id: 'g-root@x' })),
      fetched(mail({ id: 'g-r1@x', inReplyTo: 'g-root@x', subject: 'Re: Printer broken' })),
      fetched(mail({ id: 'g-r2@x', inReplyTo: 'g-r1@x', subject: 'Re: Printer broken', from: 'bob@example.com' })),
      fetched(mail({ id: 'g-root@x' })),
      fetched('', { tooLarge: true, size: 99_999_999 }),
      fetched(mail({ id: 'g-root@x', body: 'other content' })),
      fetched(mail({ id: 'g-r3@x', inReplyTo: 'g-root@x' })),
    ];
    const out = await Promise.all(ms.map((m) => ingest.deliver(m)));
    expect(out).toEqual(['stored', 'stored', 'stored', 'duplicate', 'quarantined', 'stored', 'stored']);
    expect(commits).toBe(1);
    const root = await sessionOf('g-root@x');
    for (const id of ['g-r1@x', 'g-r2@x', 'g-r3@x']) expect((await sessionOf(id))?.id).toBe(root?.id);
    expect(root?.messageCount).toBe(4);
    expect(root?.participants).toEqual([{ address: 'bob@example.com' }]);
    const detail = await sessions.detail(root?.id ?? '');
    expect(detail.messages.map((m) => m.messageId)).toEqual(['g-root@x', 'g-r1@x', 'g-r2@x', 'g-r3@x']);
    expect(await store.get(`msgid:g-root@x#${''}`)).toBeUndefined();
    // raw bytes readable
    const claim = await store.get<{ messageInternalId: string }>('msgid:g-r2@x');
    const blob = await new StoreBlobStore(store).get(`blob:raw:${claim?.messageInternalId}`);
    expect(Buffer.from(blob!).toString()).toContain('g-r2@x');
    // the same again: all duplicates (quarantine entry exists for the same uid? different uid -> new entry)
    const again = await Promise.all(ms.filter((m) => !m.tooLarge).map((m) => ingest.deliver(m)));
    expect(again).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
  });

  it('subject window index read after a group change commits the group first', async () => {
    await settings.update({ threading: { subjectWindowMinutes: 60 } });
    const ingest = make();
    const out = await Promise.all([
      ingest.deliver(fetched(mail({ id: 'w-a@x', from: 'carl@example.com', subject: 'Invoice 9' }))),
      ingest.deliver(fetched(mail({ id: 'w-b@x', from: 'carl@example.com', subject: 'Re: Invoice 9' }))),
      ingest.deliver(fetched(mail({ id: 'w-c@x', from: 'carl@example.com', subject: 'AW: Invoice 9' }))),
    ]);
    expect(out).toEqual(['stored', 'stored', 'stored']);
    const a = await sessionOf('w-a@x');
    expect((await sessionOf('w-b@x'))?.id).toBe(a?.id);
    expect((await sessionOf('w-c@x'))?.id).toBe(a?.id);
    expect((await sessionOf('w-c@x'))?.messageCount).toBe(3);
    await settings.update({ threading: { subjectWindowMinutes: 0 } });
  });

  it('a conflicting group commit falls back to one by one', async () => {
    let first = true;
    const ingest = make((s) => { const w = Object.create(s) as Store; w.commit = async (ops: WriteOp[], jobs) => { if (first && ops.length > 12) { first = false; throw new CommitConflictError('simulated', 'x'); } return s.commit(ops, jobs); }; return w; });
    const out = await Promise.all([
      ingest.deliver(fetched(mail({ id: 'c-root@x', subject: 'Conflict' }))),
      ingest.deliver(fetched(mail({ id: 'c-r1@x', inReplyTo: 'c-root@x' }))),
      ingest.deliver(fetched(mail({ id: 'c-r2@x', inReplyTo: 'c-root@x' }))),
    ]);
    expect(first).toBe(false);
    expect(out).toEqual(['stored', 'stored', 'stored']);
    expect((await sessionOf('c-root@x'))?.messageCount).toBe(3);
  });

  it('a failure rejects the later messages of its account unstored; other accounts go on', async () => {
    const ingest = make((s) => { const w = Object.create(s) as Store; w.commit = async (ops: WriteOp[], jobs) => { if (ops.some((o) => o.op === 'put' && o.key === 'msgid:f-a2@x')) throw new StoreUnavailableError('down'); return s.commit(ops, jobs); }; return w; });
    const res = await Promise.allSettled([
      ingest.deliver(fetched(mail({ id: 'f-a1@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'f-a2@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'f-b1@x' }), { accountId: 'acc_b' })),
      ingest.deliver(fetched(mail({ id: 'f-a3@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'f-b2@x' }), { accountId: 'acc_b' })),
    ]);
    expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect(await store.get('msgid:f-a1@x')).toBeDefined();
    expect(await store.get('msgid:f-a2@x')).toBeUndefined();
    expect(await store.get('msgid:f-a3@x')).toBeUndefined();
    expect(await store.get('msgid:f-b2@x')).toBeDefined();
    // and later deliveries of that account work again
    expect(await ingest.deliver(fetched(mail({ id: 'f-a3@x' }), { accountId: 'acc_a' }))).toBe('stored');
  });

  it('failure while deciding (store read down) aborts the later ones of the account', async () => {
    let down = false;
    const ingest = make((s) => { const w = Object.create(s) as Store; w.getMany = async (keys) => { if (down && keys.includes('msgid:d-a2@x')) throw new StoreUnavailableError('down'); return s.getMany(keys); }; return w; });
    down = true;
    const res = await Promise.allSettled([
      ingest.deliver(fetched(mail({ id: 'd-a1@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'd-a2@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'd-a3@x' }), { accountId: 'acc_a' })),
      ingest.deliver(fetched(mail({ id: 'd-b1@x' }), { accountId: 'acc_b' })),
    ]);
    expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(await store.get('msgid:d-a1@x')).toBeDefined();
    expect(await store.get('msgid:d-a3@x')).toBeUndefined();
  });
});

// Tests the IMAP mailbox worker against a private Dovecot: baseline, IDLE latency, marking, retries, reconnects, UIDVALIDITY, size limit, import.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ImapFlow } from 'imapflow';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appendMessage, startDovecot, type DovecotHandle } from '../../../test/helpers/dovecot.js';
import { mailboxCheckpointKey, type MailboxCheckpoint } from '../../core/keys.js';
import type { FetchedMessage, Logger, MailboxSink, Store } from '../../core/ports.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import {
  backoffDelay,
  captureBaseline,
  classifyImapError,
  ImapMailboxWorker,
  initialCheckpoint,
  OperationTimeoutError,
  readMailboxBaseline,
  uidSet,
  type ImapMailboxWorkerOptions,
} from './mailbox-worker.js';

const PASSWORD = 'pw-test-1';
const USERS = ['baseline', 'firstconn', 'idle', 'seen', 'keyword', 'failonce', 'restart', 'badauth', 'uidv', 'large', 'importer', 'noflag', 'storefail', 'backlog', 'window', 'interval'];

function rawMail(id: string, opts: { body?: string; date?: string } = {}): string {
  return [
    'From: Customer <customer@example.org>',
    'To: Support <support@example.test>',
    `Subject: Test ${id}`,
    `Message-ID: <${id}@example.org>`,
    `Date: ${opts.date ?? 'Mon, 03 Feb 2025 10:00:00 +0000'}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? `Hello from ${id}.`,
    '',
  ].join('\r\n');
}

function messageIdOf(raw: Uint8Array): string | null {
  const head = Buffer.from(raw).toString('latin1').split('\r\n\r\n')[0] ?? '';
  const m = /^message-id:\s*<([^>]+)>/im.exec(head);
  return m ? (m[1] ?? null) : null;
}

/** A MailboxSink for tests: stores each message once by Message-ID (putIfAbsent), records every attempt, can fail on demand. */
class RecordingSink implements MailboxSink {
  attempts: FetchedMessage[] = [];
  stored: { id: string; message: FetchedMessage; at: number }[] = [];
  duplicates: string[] = [];
  /** Throw from deliver when this returns true (checked before storing). */
  failWhen: ((m: FetchedMessage) => boolean) | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly onDeliver?: (m: FetchedMessage) => Promise<void>,
  ) {}

  async deliver(message: FetchedMessage): Promise<'stored' | 'duplicate' | 'quarantined'> {
    this.attempts.push(message);
    if (this.onDeliver) await this.onDeliver(message);
    if (this.failWhen?.(message)) throw new Error(`sink unavailable for UID ${message.uid}`);
    const id = message.tooLarge ? `too-large:${message.uidValidity}:${message.uid}` : (messageIdOf(message.raw) ?? `uid:${message.uid}`);
    const inserted = await this.store.putIfAbsent(`test:sink:${message.accountId}:${id}`, { uid: message.uid, imported: message.imported });
    if (inserted) this.stored.push({ id, message, at: performance.now() });
    else this.duplicates.push(id);
    for (const w of this.waiters.splice(0)) w();
    return inserted ? (message.tooLarge ? 'quarantined' : 'stored') : 'duplicate';
  }

  ids(): string[] {
    return this.stored.map((s) => s.id);
  }

  /** Resolves once `n` distinct messages are stored. */
  async waitStored(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.stored.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} stored messages (have ${this.stored.length}: ${this.ids().join(', ')})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** A Logger that keeps every entry (for the EXISTS-to-delivery latency the worker logs). */
function recordingLogger(entries: { level: string; obj: Record<string, unknown>; msg: string | undefined }[]): Logger {
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      entries.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj: obj as Record<string, unknown>, msg });
    };
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('ImapMailboxWorker helpers', () => {
  it('compresses UID sets', () => {
    expect(uidSet([5, 1, 2, 3, 9, 10, 3])).toBe('1:3,5,9:10');
    expect(uidSet([7])).toBe('7');
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffDelay(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffDelay(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffDelay(50, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffDelay(50, 5000, 300_000, () => 0)).toBe(150_000);
  });

  it('classifies connection errors', () => {
    expect(classifyImapError(Object.assign(new Error('Authentication failed'), { authenticationFailed: true }))).toBe('auth_failed');
    expect(classifyImapError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('unreachable');
    expect(classifyImapError(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }))).toBe('unreachable');
    expect(classifyImapError(Object.assign(new Error('x'), { code: 'CONNECT_TIMEOUT' }))).toBe('timeout');
    expect(classifyImapError(new OperationTimeoutError('UID FETCH', 10))).toBe('timeout');
    expect(classifyImapError(Object.assign(new Error('self signed'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe('tls_error');
    expect(classifyImapError(Object.assign(new Error('Server does not support STARTTLS'), { code: 'x' }))).toBe('tls_error');
    expect(classifyImapError(Object.assign(new Error('Unexpected tag'), { code: 'UnexpectedTag' }))).toBe('protocol_error');
  });

  it('builds the initial checkpoint from UIDNEXT, never from dates', () => {
    const cp = initialCheckpoint({ uidValidity: 123n, uidNext: 8 }, { now: 1000, importSince: new Date(500) });
    expect(cp).toMatchObject({ uidValidity: '123', lastUid: 7, baselineUid: 7, baselineAt: 1000, lastInternalDate: null });
    expect(cp.import).toMatchObject({ since: 500, upToUid: 7, cursorUid: 0, done: 0, total: null, finished: false });
    expect(initialCheckpoint({ uidValidity: '1', uidNext: 1 }, { now: 0 }).lastUid).toBe(0);
  });
});

describe('ImapMailboxWorker (private Dovecot)', () => {
  let dv: DovecotHandle;
  let dir: string;
  let store: Store;
  const workers: ImapMailboxWorker[] = [];

  beforeAll(async () => {
    dv = await startDovecot({ users: USERS.map((user) => ({ user, password: PASSWORD })) });
    dir = mkdtempSync(join(tmpdir(), 'ec-imap-worker-'));
    store = await openSqliteStore({ file: join(dir, 'store.db') });
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });

  afterAll(async () => {
    await store?.close();
    await dv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const conn = (user: string, password = PASSWORD) => ({
    imap: { host: dv.host, port: dv.port, secure: false, starttls: 'off' as const },
    username: user,
    password,
  });

  function makeWorker(user: string, sink: MailboxSink, extra: Partial<ImapMailboxWorkerOptions> = {}): ImapMailboxWorker {
    const w = new ImapMailboxWorker({
      accountId: `acc_${user}`,
      ...conn(user),
      markAs: { type: 'seen' },
      store,
      sink,
      backoff: { baseMs: 50, maxMs: 400, authBaseMs: 50, authMaxMs: 200 },
      connectTimeoutMs: 3_000,
      greetingTimeoutMs: 3_000,
      commandTimeoutMs: 10_000,
      ...extra,
    });
    workers.push(w);
    return w;
  }

  async function withClient<T>(user: string, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
    const c = new ImapFlow({ host: dv.host, port: dv.port, secure: false, doSTARTTLS: false, auth: { user, pass: PASSWORD }, logger: false, connectionTimeout: 5_000, greetingTimeout: 5_000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.logout().catch(() => c.close());
    }
  }

  async function flagsByMessageId(user: string): Promise<Map<string, Set<string>>> {
    return withClient(user, async (c) => {
      await c.mailboxOpen('INBOX', { readOnly: true });
      const out = new Map<string, Set<string>>();
      for (const m of await c.fetchAll('1:*', { uid: true, flags: true, envelope: true })) {
        out.set((m.envelope?.messageId ?? '').replace(/[<>]/g, ''), m.flags ?? new Set());
      }
      return out;
    });
  }

  async function appendDated(user: string, raw: string, date: Date): Promise<void> {
    await withClient(user, async (c) => {
      await c.append('INBOX', raw, [], date);
    });
  }

  const checkpoint = (user: string) => store.get<MailboxCheckpoint>(mailboxCheckpointKey(`acc_${user}`));

  it('delivers only mail that arrived after the baseline recorded when the account was saved', async () => {
    for (const id of ['old-1', 'old-2', 'old-3']) await appendMessage(dv, 'baseline', rawMail(id, { date: 'Mon, 01 Jan 2035 00:00:00 +0000' }));
    const baseline = await readMailboxBaseline(conn('baseline'));
    expect(baseline).toMatchObject({ uidNext: 4 });
    expect(baseline.uidValidity).toMatch(/^\d+$/);
    const cp = await captureBaseline(store, 'acc_baseline', baseline);
    expect(cp).toMatchObject({ lastUid: 3, uidValidity: baseline.uidValidity });
    // a second capture keeps the first
    expect(await captureBaseline(store, 'acc_baseline', { ...baseline, uidNext: 99 })).toMatchObject({ lastUid: 3 });
    for (const id of ['new-1', 'new-2']) await appendMessage(dv, 'baseline', rawMail(id));

    const sink = new RecordingSink(store);
    const w = makeWorker('baseline', sink);
    await w.start();
    await sink.waitStored(2);
    await waitFor('idle', () => w.status().state === 'idle');
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.ids()).toEqual(['new-1@example.org', 'new-2@example.org']);
    expect(sink.attempts.map((m) => m.uid)).toEqual([4, 5]);
    expect(sink.attempts.every((m) => !m.imported && m.raw.byteLength > 0 && m.internalDate !== null)).toBe(true);
    expect(await checkpoint('baseline')).toMatchObject({ uidValidity: baseline.uidValidity, lastUid: 5 });
    expect(w.status()).toMatchObject({ accountId: 'acc_baseline', state: 'idle', backlog: 0, lastError: null });
    expect(w.status().lastMessageAt).not.toBeNull();
  });

  it('without a saved baseline, records UIDNEXT-1 on the first connection', async () => {
    for (const id of ['fc-old-1', 'fc-old-2']) await appendMessage(dv, 'firstconn', rawMail(id));
    const sink = new RecordingSink(store);
    const w = makeWorker('firstconn', sink);
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    expect(await checkpoint('firstconn')).toMatchObject({ lastUid: 2 });
    await appendMessage(dv, 'firstconn', rawMail('fc-new'));
    await sink.waitStored(1);
    expect(sink.ids()).toEqual(['fc-new@example.org']);
  });

  it('delivers new mail through IDLE within milliseconds of the server announcing it', async () => {
    const sink = new RecordingSink(store);
    const log: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
    const w = makeWorker('idle', sink, { logger: recordingLogger(log) });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    const latencies: { fromAppendStart: number; fromAppendDone: number }[] = [];
    for (let i = 0; i < 5; i++) {
      await waitFor('idle again', () => w.status().state === 'idle');
      const start = performance.now();
      await appendMessage(dv, 'idle', rawMail(`idle-${i}`));
      const appended = performance.now();
      await sink.waitStored(i + 1, 5_000);
      const at = sink.stored[i]!.at;
      latencies.push({ fromAppendStart: Math.round(at - start), fromAppendDone: Math.round(at - appended) });
    }
    const delivered = () => log.filter((e) => e.msg === 'message delivered');
    await waitFor('five delivery logs', () => delivered().length === 5);
    const sinceExists = delivered().map((e) => e.obj.msSinceExists as number);
    // Dovecot itself waits ~0.5 s after a change before it sends EXISTS to IDLE sessions (NOTIFY_DELAY_MSECS in mailbox-watch.c).
    console.log(`IDLE delivery latency (ms): append→stored ${JSON.stringify(latencies)}; server EXISTS→delivered ${JSON.stringify(sinceExists)}`);
    for (const l of latencies) expect(l.fromAppendStart).toBeLessThan(2_000);
    for (const ms of sinceExists) expect(ms).toBeLessThan(1_000);
  });

  it('sets \\Seen after delivery', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('seen', sink);
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    await appendMessage(dv, 'seen', rawMail('seen-1'));
    await sink.waitStored(1);
    await waitFor('\\Seen', async () => (await flagsByMessageId('seen')).get('seen-1@example.org')?.has('\\Seen') === true);
  });

  it('sets a keyword instead when configured, and nothing with markAs none', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('keyword', sink, { markAs: { type: 'keyword', keyword: 'EcProcessed' } });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    await appendMessage(dv, 'keyword', rawMail('kw-1'));
    await sink.waitStored(1);
    await waitFor('keyword', async () => (await flagsByMessageId('keyword')).get('kw-1@example.org')?.has('EcProcessed') === true);
    expect((await flagsByMessageId('keyword')).get('kw-1@example.org')?.has('\\Seen')).toBe(false);

    const sink2 = new RecordingSink(store);
    const w2 = makeWorker('noflag', sink2, { markAs: { type: 'none' } });
    await w2.start();
    await waitFor('idle', () => w2.status().state === 'idle');
    await appendMessage(dv, 'noflag', rawMail('nf-1'));
    await sink2.waitStored(1);
    await new Promise((r) => setTimeout(r, 200));
    expect([...((await flagsByMessageId('noflag')).get('nf-1@example.org') ?? [])].filter((f) => f !== '\\Recent')).toEqual([]);
  });

  it('redelivers a message whose delivery failed, without moving the checkpoint past it', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('failonce', sink, { backoff: { baseMs: 400, maxMs: 400 } });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    const before = (await checkpoint('failonce'))!.lastUid;
    let failed = 0;
    sink.failWhen = (m) => m.uid === before + 2 && failed++ === 0;
    await appendMessage(dv, 'failonce', rawMail('fo-1'));
    await appendMessage(dv, 'failonce', rawMail('fo-2'));
    await appendMessage(dv, 'failonce', rawMail('fo-3'));
    await waitFor('the failed attempt', () => failed === 1);
    // During the backoff: the first message is checkpointed, the failed one is not, the third was not tried.
    await new Promise((r) => setTimeout(r, 50));
    expect((await checkpoint('failonce'))!.lastUid).toBeLessThanOrEqual(before + 1);
    expect(w.status().lastError).toMatch(/delivery of UID \d+ failed: sink unavailable/);
    await sink.waitStored(3);
    expect(sink.ids()).toEqual(['fo-1@example.org', 'fo-2@example.org', 'fo-3@example.org']);
    expect(sink.attempts.filter((m) => m.uid === before + 2)).toHaveLength(2);
    await waitFor('checkpoint', async () => (await checkpoint('failonce'))!.lastUid === before + 3);
    await waitFor('error cleared', () => w.status().lastError === null);
  });

  async function appendMany(user: string, raws: string[]): Promise<void> {
    await withClient(user, async (c) => {
      for (const raw of raws) await c.append('INBOX', raw);
    });
  }

  it('delivers a backlog in UID order across fetch chunks, writes the checkpoint once per batch and marks every message', async () => {
    await captureBaseline(store, 'acc_backlog', await readMailboxBaseline(conn('backlog')));
    const ids = Array.from({ length: 60 }, (_, i) => `bl-${i}`);
    // One of them over the size limit (delivered as tooLarge without its bytes), in the middle of a chunk.
    await appendMany('backlog', ids.map((id, i) => rawMail(id, i === 30 ? { body: ('z'.repeat(76) + '\r\n').repeat(400) } : {})));
    let checkpointWrites = 0;
    const counting: Store = Object.create(store) as Store;
    counting.put = async (key, value, opts) => {
      if (key === mailboxCheckpointKey('acc_backlog')) checkpointWrites += 1;
      return store.put(key, value, opts);
    };
    const sink = new RecordingSink(store);
    const w = makeWorker('backlog', sink, { store: counting, maxMessageBytes: 20_000, checkpointIntervalMs: 60_000 });
    await w.start();
    await sink.waitStored(60);
    await waitFor('checkpoint', async () => (await checkpoint('backlog'))!.lastUid === 60);
    expect(sink.attempts.map((m) => m.uid)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(sink.attempts[30]).toMatchObject({ tooLarge: true, raw: new Uint8Array(0) });
    expect(sink.attempts.filter((m) => m.tooLarge).map((m) => m.uid)).toEqual([31]);
    expect(sink.stored.filter((x) => !x.message.tooLarge).map((x) => messageIdOf(x.message.raw))).toEqual(ids.filter((_, i) => i !== 30).map((id) => `${id}@example.org`));
    // 60 messages in one batch (fetchBatchSize 100): one durable checkpoint write.
    expect(checkpointWrites).toBe(1);
    await waitFor('all \\Seen', async () => [...(await flagsByMessageId('backlog')).values()].filter((f) => f.has('\\Seen')).length === 60);
    await waitFor('idle', () => w.status().state === 'idle');
    expect(w.status()).toMatchObject({ backlog: 0, lastError: null });
  });

  it('with a delivery window, counts deliveries in UID order only: a failed one stops the checkpoint before it, and it is retried', async () => {
    // A sink that finishes deliveries out of order (random delays), like any sink with several calls in flight.
    const sink = new RecordingSink(store, () => new Promise((r) => setTimeout(r, Math.random() * 15)));
    const w = makeWorker('window', sink, { deliveryWindow: 4, backoff: { baseMs: 400, maxMs: 400 } });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    await w.stop();
    const before = (await checkpoint('window'))!.lastUid;
    let failed = 0;
    sink.failWhen = (m) => m.uid === before + 5 && failed++ === 0;
    await appendMany('window', Array.from({ length: 10 }, (_, i) => rawMail(`win-${i}`)));
    await w.start();
    await waitFor('the failed attempt', () => failed === 1);
    await new Promise((r) => setTimeout(r, 100));
    // During the backoff: what resolved before the failed UID is recorded; nothing at or after it is counted, even
    // what the sink stored after it.
    expect((await checkpoint('window'))!.lastUid).toBe(before + 4);
    expect(w.status().lastError).toMatch(new RegExp(`delivery of UID ${before + 5} failed: sink unavailable`));
    await sink.waitStored(10);
    await waitFor('checkpoint', async () => (await checkpoint('window'))!.lastUid === before + 10);
    expect(new Set(sink.ids())).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `win-${i}@example.org`)));
    expect(sink.stored).toHaveLength(10);
    // Each call of one attempt was made in UID order.
    const firstRound = sink.attempts.slice(0, sink.attempts.findIndex((m) => m.uid === before + 5) + 1).map((m) => m.uid);
    expect(firstRound).toEqual([...firstRound].sort((a, b) => a - b));
    await waitFor('error cleared', () => w.status().lastError === null);
  });

  it('in a long batch, also writes the checkpoint every checkpointIntervalMs', async () => {
    await captureBaseline(store, 'acc_interval', await readMailboxBaseline(conn('interval')));
    await appendMany('interval', Array.from({ length: 12 }, (_, i) => rawMail(`iv-${i}`)));
    const seen: number[] = [];
    const sink = new RecordingSink(store, async (m) => {
      if (m.uid === 10) seen.push((await checkpoint('interval'))!.lastUid);
      await new Promise((r) => setTimeout(r, 40));
    });
    const w = makeWorker('interval', sink, { checkpointIntervalMs: 150 });
    await w.start();
    await sink.waitStored(12);
    await waitFor('checkpoint', async () => (await checkpoint('interval'))!.lastUid === 12);
    // When UID 10 was handed over (~400 ms into the batch) the checkpoint had already moved, though not past it.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThan(0);
    expect(seen[0]).toBeLessThan(10);
  });

  it('keeps the connection and retries when the checkpoint cannot be written after a delivery', async () => {
    let failPuts = 0;
    const flaky: Store = Object.create(store) as Store;
    flaky.put = async (key, value, opts) => {
      if (key === mailboxCheckpointKey('acc_storefail') && failPuts > 0) {
        failPuts -= 1;
        throw new Error('store unavailable');
      }
      return store.put(key, value, opts);
    };
    const sink = new RecordingSink(store);
    const w = makeWorker('storefail', sink, { store: flaky });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    failPuts = 2;
    await appendMessage(dv, 'storefail', rawMail('sf-1'));
    await waitFor('checkpoint written', async () => failPuts === 0 && (await checkpoint('storefail'))!.lastUid === 1);
    expect(sink.ids()).toEqual(['sf-1@example.org']);
    // delivered again after each failed checkpoint write; the sink kept one copy
    expect(sink.attempts.map((m) => m.uid)).toEqual([1, 1, 1]);
    expect(sink.duplicates).toEqual(['sf-1@example.org', 'sf-1@example.org']);
    await waitFor('idle', () => w.status().state === 'idle');
    expect(w.status().failures).toBe(0);
  });

  it('reconnects after a Dovecot restart and delivers mail appended after it', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('restart', sink);
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    await appendMessage(dv, 'restart', rawMail('rs-before'));
    await sink.waitStored(1);
    await waitFor('idle', () => w.status().state === 'idle');
    await dv.restart();
    await appendMessage(dv, 'restart', rawMail('rs-after'));
    await sink.waitStored(2, 15_000);
    expect(sink.ids()).toEqual(['rs-before@example.org', 'rs-after@example.org']);
    await waitFor('idle after reconnect', () => w.status().state === 'idle');
  });

  it('reports auth_failed on a wrong password and keeps retrying without crashing', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('badauth', sink, { password: 'wrong-password' });
    await w.start();
    await waitFor('auth_failed', () => w.status().state === 'auth_failed');
    await waitFor('several attempts', () => w.status().failures >= 3, 10_000);
    const st = w.status();
    expect(st.state).toBe('auth_failed');
    expect(st.lastError).toMatch(/auth/i);
    await w.stop();
    expect(w.status().state).toBe('stopped');
  });

  it('survives a UIDVALIDITY reset: no message lost, duplicates only where the sink dropped them', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('uidv', sink);
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    for (let i = 1; i <= 5; i++) await appendMessage(dv, 'uidv', rawMail(`uv-old-${i}`));
    await sink.waitStored(5);
    await waitFor('checkpoint at 5', async () => (await checkpoint('uidv'))!.lastUid === 5);
    const before = (await checkpoint('uidv'))!;
    // Someone deletes three of them, so after renumbering the survivors get UIDs 1..2 and new mail 3.. — a worker
    // trusting the old lastUid (5) would skip it.
    await withClient('uidv', async (c) => {
      await c.mailboxOpen('INBOX');
      await c.messageDelete('1:3', { uid: true });
    });
    await dv.kill();
    const md = dv.maildir('uidv');
    for (const f of readdirSync(md)) if (f === 'dovecot-uidlist' || f.startsWith('dovecot.index')) rmSync(join(md, f));
    await dv.restart();
    const after = await readMailboxBaseline(conn('uidv'));
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(after.uidNext).toBe(3);
    for (let i = 1; i <= 3; i++) await appendMessage(dv, 'uidv', rawMail(`uv-new-${i}`));

    await sink.waitStored(8, 15_000);
    await waitFor('recovery finished', async () => (await checkpoint('uidv'))!.recovery === null, 10_000);
    const ids = sink.ids();
    expect(new Set(ids).size).toBe(8);
    expect(ids.filter((id) => id.startsWith('uv-new-'))).toEqual(['uv-new-1@example.org', 'uv-new-2@example.org', 'uv-new-3@example.org']);
    // The survivors were re-listed and dropped by the sink, never stored twice.
    expect(new Set(sink.duplicates)).toEqual(new Set(['uv-old-4@example.org', 'uv-old-5@example.org']));
    // The checkpoint is written once the batch's deliveries resolved, just after the sink stored the last one.
    await waitFor('checkpoint past the new mail', async () => (await checkpoint('uidv'))!.lastUid === 5);
    const cp = (await checkpoint('uidv'))!;
    expect(cp.uidValidity).toBe(after.uidValidity);
    expect(cp.lastUid).toBe(5);
    expect(cp.uidValidityChangedAt).toBeGreaterThan(0);
  });

  it('delivers a message over maxMessageBytes as tooLarge without its bytes', async () => {
    const sink = new RecordingSink(store);
    const w = makeWorker('large', sink, { maxMessageBytes: 20_000 });
    await w.start();
    await waitFor('idle', () => w.status().state === 'idle');
    await appendMessage(dv, 'large', rawMail('big-1', { body: 'x'.repeat(76) + '\r\n'.repeat(1) + ('y'.repeat(76) + '\r\n').repeat(800) }));
    await appendMessage(dv, 'large', rawMail('small-1'));
    await sink.waitStored(2);
    const big = sink.attempts[0]!;
    expect(big.tooLarge).toBe(true);
    expect(big.raw.byteLength).toBe(0);
    expect(big.size).toBeGreaterThan(20_000);
    const small = sink.attempts[1]!;
    expect(small.tooLarge).toBeUndefined();
    expect(messageIdOf(small.raw)).toBe('small-1@example.org');
  });

  it('imports older mail since importSince as imported, resumes after a restart and reports progress', async () => {
    await appendDated('importer', rawMail('im-too-old-1'), new Date('2024-01-02T10:00:00Z'));
    await appendDated('importer', rawMail('im-too-old-2'), new Date('2024-01-05T10:00:00Z'));
    for (let i = 1; i <= 3; i++) await appendDated('importer', rawMail(`im-${i}`), new Date(`2024-02-0${i}T10:00:00Z`));
    await captureBaseline(store, 'acc_importer', await readMailboxBaseline(conn('importer')));
    await appendMessage(dv, 'importer', rawMail('im-new'));
    const importSince = new Date('2024-01-15T00:00:00Z');

    // First run: the sink refuses every imported message after the first one, then the worker is stopped.
    const sink1 = new RecordingSink(store);
    sink1.failWhen = (m) => m.imported && sink1.stored.some((s) => s.message.imported);
    const w1 = makeWorker('importer', sink1, { importSince, importBatchSize: 1 });
    await w1.start();
    await waitFor('new mail and one import', () => sink1.stored.length === 2 && w1.status().lastError !== null);
    expect(sink1.stored.map((s) => [s.id, s.message.imported])).toEqual([
      ['im-new@example.org', false],
      ['im-1@example.org', true],
    ]);
    expect(w1.status().import).toEqual({ done: 1, total: 3, finished: false });
    expect(w1.status().backlog).toBeGreaterThanOrEqual(2);
    await w1.stop();
    expect((await checkpoint('importer'))!.import).toMatchObject({ done: 1, total: 3, finished: false, cursorUid: 3 });

    // Second run resumes after UID 3.
    const sink2 = new RecordingSink(store);
    const w2 = makeWorker('importer', sink2, { importSince, importBatchSize: 1 });
    await w2.start();
    await sink2.waitStored(2);
    await waitFor('import finished', () => w2.status().import?.finished === true);
    expect(sink2.stored.map((s) => [s.id, s.message.imported])).toEqual([
      ['im-2@example.org', true],
      ['im-3@example.org', true],
    ]);
    expect(sink2.attempts.map((m) => m.uid)).toEqual([4, 5]);
    expect(w2.status().import).toEqual({ done: 3, total: 3, finished: true });
    expect(w2.status().backlog).toBe(0);
  });
});

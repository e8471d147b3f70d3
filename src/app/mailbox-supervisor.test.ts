// Tests the mailbox supervisor: channel switch, one worker per inbound account, account changes, leases across instances (SQLite + Redis).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServerHandle } from '../../test/helpers/redis-server.js';
import type { ImapMailboxWorker } from '../adapters/imap/mailbox-worker.js';
import { openRedisStore } from '../adapters/store/redis-store.js';
import { openSqliteStore, type SqliteStore } from '../adapters/store/sqlite-store.js';
import type { Account } from '../core/account.js';
import { mailboxLeaseKey } from '../core/keys.js';
import type { Clock, Store } from '../core/ports.js';
import { HealthService } from './health-service.js';
import { MailboxLease } from './mailbox-lease.js';
import { MailboxSupervisor, type MailboxStatus, type MailboxWorkerHandle } from './mailbox-supervisor.js';

// Compile-time check: the IMAP adapter's worker satisfies the handle the supervisor drives.
export const imapWorkerIsAHandle = (w: ImapMailboxWorker): MailboxWorkerHandle => w;

class FakeClock implements Clock {
  constructor(public t = 1_750_000_000_000) {}
  now(): number {
    return this.t;
  }
}

function account(id: string, over: Partial<Account> = {}): Account {
  return {
    id,
    service: 'generic_imap',
    username: `${id}@example.test`,
    address: `${id}@example.test`,
    aliases: [],
    imap: { host: 'imap.example.test', port: 993, secure: true, starttls: 'auto' },
    smtp: { host: 'smtp.example.test', port: 465, secure: true, starttls: 'auto' },
    auth: { type: 'password', password: { sealed: `sealed-${id}` } },
    outboundOnly: false,
    markAs: { type: 'seen' },
    importSince: null,
    status: { valid: true, imap: null, smtp: { state: 'connected', error: null, checkedAt: null } },
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    rev: 1,
    ...over,
  };
}

/** Who reads which mailbox right now, across every fake worker of a test: a second concurrent reader is a violation. */
class Readers {
  readonly active = new Map<string, string>();
  readonly violations: string[] = [];
  readonly created: FakeWorker[] = [];
}

class FakeWorker implements MailboxWorkerHandle {
  running = false;
  starts = 0;
  stops = 0;
  constructor(
    readonly account: Account,
    readonly password: string,
    readonly opts: { importSince: Date | null },
    readonly instance: string,
    private readonly readers: Readers,
  ) {}
  async start(): Promise<void> {
    const other = this.readers.active.get(this.account.id);
    if (other !== undefined) this.readers.violations.push(`${this.account.id} read by ${other} and ${this.instance}`);
    this.readers.active.set(this.account.id, this.instance);
    this.running = true;
    this.starts += 1;
  }
  async stop(): Promise<void> {
    if (this.running && this.readers.active.get(this.account.id) === this.instance) this.readers.active.delete(this.account.id);
    this.running = false;
    this.stops += 1;
  }
  status(): MailboxStatus {
    return { accountId: this.account.id, state: this.running ? 'idle' : 'stopped', backlog: 0, lastError: null, lastMessageAt: null };
  }
}

interface World {
  accounts: Map<string, Account>;
  enabled: boolean;
  readers: Readers;
  badPassword: Set<string>;
}

function newWorld(accounts: Account[]): World {
  return { accounts: new Map(accounts.map((a) => [a.id, a])), enabled: true, readers: new Readers(), badPassword: new Set() };
}

function supervisor(world: World, store: Store, instanceId: string, opts: { clock?: Clock; ttlMs?: number; reconcileIntervalMs?: number } = {}): MailboxSupervisor {
  const lease = new MailboxLease(store, { ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.ttlMs ? { ttlMs: opts.ttlMs } : {}) });
  return new MailboxSupervisor({
    listAccounts: async () => [...world.accounts.values()],
    channelEnabled: async () => world.enabled,
    openPassword: async (a) => {
      if (world.badPassword.has(a.id)) throw new Error('cannot decrypt');
      return `plain-${a.id}`;
    },
    createWorker: (a, password, o) => {
      const w = new FakeWorker(a, password, o, instanceId, world.readers);
      world.readers.created.push(w);
      return w;
    },
    lease,
    instanceId,
    ...(opts.clock ? { clock: opts.clock } : {}),
    reconcileIntervalMs: opts.reconcileIntervalMs ?? 3_600_000,
  });
}

const runningOf = (world: World, id: string) => world.readers.created.filter((w) => w.account.id === id && w.running);

describe('MailboxSupervisor (SQLite store, fake clock)', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: FakeClock;
  const sups: MailboxSupervisor[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-supervisor-'));
    clock = new FakeClock();
    store = await openSqliteStore({ file: join(dir, 'db.sqlite'), clock });
  });

  afterEach(async () => {
    await Promise.all(sups.splice(0).map((s) => s.stop()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const make = (world: World, id: string) => {
    const s = supervisor(world, store, id, { clock });
    sups.push(s);
    return s;
  };

  it('runs no worker while the channel is off, then one per inbound account (none for outbound-only)', async () => {
    const world = newWorld([
      account('acc_a', { importSince: '2025-01-10T00:00:00.000Z' }),
      account('acc_b'),
      account('acc_out', { outboundOnly: true }),
      account('acc_noimap', { imap: null }),
    ]);
    world.enabled = false;
    const sup = make(world, 'i1');
    await sup.start();
    expect(world.readers.created).toHaveLength(0);
    expect(sup.mailboxes().map((m) => [m.accountId, m.state])).toEqual([
      ['acc_a', 'disabled'],
      ['acc_b', 'disabled'],
    ]);
    expect(await new HealthService(store, [sup]).report()).toMatchObject({ status: 'ok' });

    world.enabled = true;
    await sup.refresh();
    expect(sup.runningAccountIds()).toEqual(['acc_a', 'acc_b']);
    expect(world.readers.created.map((w) => w.account.id).sort()).toEqual(['acc_a', 'acc_b']);
    const a = world.readers.created.find((w) => w.account.id === 'acc_a')!;
    expect(a.password).toBe('plain-acc_a');
    expect(a.opts.importSince?.toISOString()).toBe('2025-01-10T00:00:00.000Z');
    expect(world.readers.created.find((w) => w.account.id === 'acc_b')!.opts.importSince).toBeNull();
    expect(await store.get(mailboxLeaseKey('acc_a'))).toMatchObject({ owner: 'i1' });
    // /health lists each mailbox
    const report = await new HealthService(store, [sup]).report();
    expect(report.mailboxes.map((m) => [m.accountId, m.state])).toEqual([
      ['acc_a', 'idle'],
      ['acc_b', 'idle'],
    ]);

    // a refresh with nothing changed starts nothing new
    await sup.refresh();
    expect(world.readers.created).toHaveLength(2);

    // channel off again: everything stops and the leases are released
    world.enabled = false;
    await sup.refresh();
    expect(world.readers.created.every((w) => !w.running)).toBe(true);
    expect(await store.get(mailboxLeaseKey('acc_a'))).toBeUndefined();
    expect(sup.runningAccountIds()).toEqual([]);
  });

  it('stops the worker of a deleted or outbound-only account and restarts one whose server or password changed', async () => {
    const world = newWorld([account('acc_a'), account('acc_b'), account('acc_c')]);
    const sup = make(world, 'i1');
    await sup.start();
    expect(sup.runningAccountIds()).toEqual(['acc_a', 'acc_b', 'acc_c']);

    world.accounts.delete('acc_a');
    world.accounts.set('acc_b', account('acc_b', { outboundOnly: true, rev: 2 }));
    await sup.refresh();
    expect(sup.runningAccountIds()).toEqual(['acc_c']);
    expect(runningOf(world, 'acc_a')).toHaveLength(0);
    expect(runningOf(world, 'acc_b')).toHaveLength(0);
    expect(await store.get(mailboxLeaseKey('acc_a'))).toBeUndefined();

    // a status-only update does not restart the worker
    const c = world.accounts.get('acc_c')!;
    world.accounts.set('acc_c', { ...c, rev: 2, status: { ...c.status, valid: false } });
    await sup.refresh();
    expect(world.readers.created.filter((w) => w.account.id === 'acc_c')).toHaveLength(1);

    // a new password does
    world.accounts.set('acc_c', { ...c, rev: 3, auth: { type: 'password', password: { sealed: 'sealed-new' } } });
    await sup.refresh();
    const cs = world.readers.created.filter((w) => w.account.id === 'acc_c');
    expect(cs).toHaveLength(2);
    expect(cs[0]!.running).toBe(false);
    expect(cs[1]!.running).toBe(true);
    expect(world.readers.violations).toEqual([]);
  });

  it('stops a worker at once when its lease was lost', async () => {
    const world = newWorld([account('acc_a')]);
    const sup = make(world, 'i1');
    await sup.start();
    // Another instance took the lease (e.g. after this one was paused past the TTL).
    await store.put(mailboxLeaseKey('acc_a'), { owner: 'i2', token: 99, expiresAt: clock.t + 20_000, acquiredAt: clock.t });
    await sup.refresh();
    expect(runningOf(world, 'acc_a')).toHaveLength(0);
    expect(sup.runningAccountIds()).toEqual([]);
    expect(await store.get(mailboxLeaseKey('acc_a'))).toMatchObject({ owner: 'i2' });
  });

  it('reports a mailbox whose password cannot be opened, releases its lease, and starts it once fixed', async () => {
    const world = newWorld([account('acc_a')]);
    world.badPassword.add('acc_a');
    const sup = make(world, 'i1');
    await sup.start();
    expect(sup.mailboxes()).toEqual([
      { accountId: 'acc_a', state: 'auth_failed', backlog: 0, lastError: expect.stringMatching(/cannot decrypt/), lastMessageAt: null },
    ]);
    expect(await store.get(mailboxLeaseKey('acc_a'))).toBeUndefined();
    world.badPassword.clear();
    await sup.refresh();
    expect(sup.mailboxes()).toMatchObject([{ accountId: 'acc_a', state: 'idle', lastError: null }]);
  });

  it('two instances on one store: each mailbox read by exactly one; after a crash the other takes over within 30 s', async () => {
    const ids = ['acc_1', 'acc_2', 'acc_3', 'acc_4', 'acc_5', 'acc_6'];
    const world = newWorld(ids.map((id) => account(id)));
    const a = make(world, 'instance-a');
    const b = make(world, 'instance-b');
    await Promise.all([a.start(), b.start()]);
    for (let i = 0; i < 3; i++) {
      clock.t += 5_000;
      await Promise.all([a.refresh(), b.refresh()]);
    }
    const readBy = (s: MailboxSupervisor) => s.runningAccountIds();
    expect([...readBy(a), ...readBy(b)].sort()).toEqual(ids);
    expect(readBy(a).filter((id) => readBy(b).includes(id))).toEqual([]);
    expect(world.readers.violations).toEqual([]);
    const fromA = readBy(a);
    expect(fromA.length).toBeGreaterThan(0);

    // Instance A crashes: its workers die with it, its leases stay until they expire.
    await a.stop({ releaseLeases: false });
    const crashedAt = clock.t;
    let takenOverAt: number | null = null;
    for (let step = 0; step < 10 && takenOverAt === null; step++) {
      clock.t += 5_000; // B's reconcile interval
      await b.refresh();
      if (readBy(b).length === ids.length) takenOverAt = clock.t;
    }
    expect(takenOverAt).not.toBeNull();
    expect(takenOverAt! - crashedAt).toBeLessThanOrEqual(30_000);
    expect(takenOverAt! - crashedAt).toBeGreaterThanOrEqual(20_000); // not before A's leases expired
    expect(world.readers.violations).toEqual([]);
    for (const id of fromA) expect(await store.get(mailboxLeaseKey(id))).toMatchObject({ owner: 'instance-b' });
  });
});

describe('MailboxSupervisor (Redis store, real time, short TTL)', () => {
  let redis: RedisServerHandle;
  let store: Store;
  const sups: MailboxSupervisor[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    store = await openRedisStore({ url: redis.url, keyPrefix: `sup-test-${process.pid}:` });
  });

  afterAll(async () => {
    await Promise.all(sups.splice(0).map((s) => s.stop()));
    await store?.close();
    await redis?.stop();
  });

  it('periodic reconcile renews leases, and another instance takes over after a crash within TTL + interval', async () => {
    const ids = ['acc_r1', 'acc_r2', 'acc_r3', 'acc_r4'];
    const world = newWorld(ids.map((id) => account(id)));
    const ttlMs = 1_000;
    const a = supervisor(world, store, 'redis-a', { ttlMs, reconcileIntervalMs: 200 });
    const b = supervisor(world, store, 'redis-b', { ttlMs, reconcileIntervalMs: 200 });
    sups.push(a, b);
    await a.start();
    await b.start();
    // Several TTLs pass: A keeps every lease by renewing it, B never reads anything.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(a.runningAccountIds()).toEqual(ids);
    expect(b.runningAccountIds()).toEqual([]);
    expect(world.readers.violations).toEqual([]);

    await a.stop({ releaseLeases: false });
    const crashedAt = Date.now();
    while (b.runningAccountIds().length < ids.length) {
      if (Date.now() - crashedAt > 5_000) throw new Error(`no takeover: B reads ${b.runningAccountIds().join(',')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const took = Date.now() - crashedAt;
    console.log(`takeover after a crash with ttl ${ttlMs} ms and 200 ms reconcile: ${took} ms`);
    expect(took).toBeLessThanOrEqual(ttlMs + 200 + 500);
    expect(world.readers.violations).toEqual([]);

    // A clean stop releases the leases at once.
    await b.stop();
    for (const id of ids) expect(await store.get(mailboxLeaseKey(id))).toBeUndefined();
  });
});

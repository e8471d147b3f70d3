// Unit tests of the per-mailbox lease over the real SQLite store with a fake clock (R-REL-2).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../adapters/store/sqlite-store.js';
import { mailboxLeaseKey } from '../core/keys.js';
import type { Clock } from '../core/ports.js';
import { MAILBOX_LEASE_RENEW_MS, MAILBOX_LEASE_TTL_MS, MailboxLease } from './mailbox-lease.js';

class FakeClock implements Clock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

describe('MailboxLease (SQLite store, fake clock)', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: FakeClock;
  let lease: MailboxLease;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-lease-'));
    clock = new FakeClock();
    store = await openSqliteStore({ file: join(dir, 'db.sqlite'), clock });
    lease = new MailboxLease(store, { clock });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('defaults to a 20 s TTL renewed every 5 s (takeover well under 30 s)', () => {
    expect(lease.ttlMs).toBe(MAILBOX_LEASE_TTL_MS);
    expect(MAILBOX_LEASE_TTL_MS).toBe(20_000);
    expect(MAILBOX_LEASE_RENEW_MS).toBe(5_000);
    expect(MAILBOX_LEASE_TTL_MS + MAILBOX_LEASE_RENEW_MS).toBeLessThanOrEqual(30_000);
  });

  it('grants a free lease to one owner and refuses another while it lives', async () => {
    const a = await lease.acquire('acc_1', 'instance-a');
    expect(a).toMatchObject({ mailboxId: 'acc_1', owner: 'instance-a', token: 1, expiresAt: clock.t + 20_000 });
    expect(await lease.acquire('acc_1', 'instance-b')).toBeNull();
    expect(await lease.holder('acc_1')).toMatchObject({ owner: 'instance-a', token: 1 });
    // another mailbox is independent
    expect(await lease.acquire('acc_2', 'instance-b')).toMatchObject({ owner: 'instance-b', token: 1 });
  });

  it('re-acquiring by the holder renews with the same token', async () => {
    const a = await lease.acquire('acc_1', 'instance-a');
    clock.advance(3_000);
    const again = await lease.acquire('acc_1', 'instance-a');
    expect(again).toEqual({ mailboxId: 'acc_1', owner: 'instance-a', token: a!.token, expiresAt: clock.t + 20_000 });
  });

  it('renewal keeps the lease alive past the TTL; without it another owner takes over with a higher token', async () => {
    let a = await lease.acquire('acc_1', 'instance-a');
    for (let i = 0; i < 10; i++) {
      clock.advance(5_000);
      a = await lease.renew(a!);
      expect(a).not.toBeNull();
      expect(await lease.acquire('acc_1', 'instance-b')).toBeNull();
    }
    clock.advance(19_999);
    expect(await lease.acquire('acc_1', 'instance-b')).toBeNull();
    clock.advance(2);
    const b = await lease.acquire('acc_1', 'instance-b');
    expect(b).toMatchObject({ owner: 'instance-b' });
    expect(b!.token).toBeGreaterThan(a!.token);
    // the old holder has lost it: renew and release say so and change nothing
    expect(await lease.renew(a!)).toBeNull();
    expect(await lease.release(a!)).toBe(false);
    expect(await lease.holder('acc_1')).toMatchObject({ owner: 'instance-b', token: b!.token });
  });

  it('takes over a lease whose document is still stored but whose expiresAt passed (backend TTL on another clock)', async () => {
    // Written without a store TTL, as a Redis server whose clock lags ours would still show it.
    await store.put(mailboxLeaseKey('acc_9'), { owner: 'dead', token: 7, expiresAt: clock.t - 1, acquiredAt: clock.t - 20_001 });
    await store.put('fence:mailbox:acc_9', 7);
    const b = await lease.acquire('acc_9', 'instance-b');
    expect(b).toMatchObject({ owner: 'instance-b', token: 8 });
  });

  it('release frees the lease at once for the next owner; a stale release does not', async () => {
    const a = await lease.acquire('acc_1', 'instance-a');
    expect(await lease.release(a!)).toBe(true);
    expect(await lease.holder('acc_1')).toBeNull();
    const b = await lease.acquire('acc_1', 'instance-b');
    expect(b!.token).toBe(2);
    expect(await lease.release(a!)).toBe(false);
    expect(await lease.holder('acc_1')).toMatchObject({ owner: 'instance-b' });
  });

  it('a renewal after the lease expired and vanished reports it lost', async () => {
    const a = await lease.acquire('acc_1', 'instance-a');
    clock.advance(25_000); // the store TTL purges it
    expect(await lease.renew(a!)).toBeNull();
  });

  it('concurrent acquisitions give the lease to exactly one owner', async () => {
    const owners = ['i1', 'i2', 'i3', 'i4', 'i5'];
    const results = await Promise.all(owners.map((o) => lease.acquire('acc_c', o)));
    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });

  it('rejects a non-positive TTL and mailbox ids with ":"', async () => {
    expect(() => new MailboxLease(store, { ttlMs: 0 })).toThrow(RangeError);
    await expect(lease.acquire('a:b', 'x')).rejects.toThrow(TypeError);
  });
});

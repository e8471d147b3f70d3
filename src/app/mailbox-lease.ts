// Per-mailbox lease over the Store port (R-REL-2): one instance reads a mailbox; another takes over within 30 s of its death.
//
// The lease is one document `lease:mailbox:<id>` = { owner, token, expiresAt, acquiredAt }, written with a store TTL
// as well, so a dead holder's lease disappears by itself. `expiresAt` (judged by the injected clock) is what decides:
// a lease whose `expiresAt` has passed may be taken over even if the backend has not purged the key yet (a Redis TTL
// runs on the server's clock, a test's fake clock does not move it). Every acquisition draws a fencing token from the
// counter `fence:mailbox:<id>` (`store.incr`), so a later holder always has a higher token than any earlier one.
//
// Timing: TTL 20 s, renewed every 5 s (by the supervisor's reconcile loop). A holder that dies stops renewing; its
// lease expires at most 20 s later and the next reconcile of another instance (every 5 s) takes it: < 30 s in all.
import { mailboxFenceKey, mailboxLeaseKey } from '../core/keys.js';
import { systemClock, type Clock, type Store } from '../core/ports.js';

/** Lease lifetime without renewal. */
export const MAILBOX_LEASE_TTL_MS = 20_000;
/** How often a holder renews (the supervisor's reconcile interval). */
export const MAILBOX_LEASE_RENEW_MS = 5_000;

/** The stored lease document. */
export interface MailboxLeaseRecord {
  owner: string;
  /** Fencing token: strictly increasing per mailbox across acquisitions. */
  token: number;
  /** Epoch ms after which any instance may take the lease over. */
  expiresAt: number;
  acquiredAt: number;
}

/** A lease this instance holds (what `acquire`/`renew` return and `renew`/`release` take). */
export interface HeldMailboxLease {
  mailboxId: string;
  owner: string;
  token: number;
  expiresAt: number;
}

export interface MailboxLeaseOptions {
  /** Lease lifetime (default 20 s). Tests shorten it. */
  ttlMs?: number;
  clock?: Clock;
}

function isRecord(value: unknown): value is MailboxLeaseRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.owner === 'string' && typeof v.token === 'number' && typeof v.expiresAt === 'number';
}

export class MailboxLease {
  readonly ttlMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly store: Store,
    opts: MailboxLeaseOptions = {},
  ) {
    const ttl = opts.ttlMs ?? MAILBOX_LEASE_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new RangeError(`lease ttlMs must be a positive integer, got ${ttl}`);
    this.ttlMs = ttl;
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Takes the lease when it is free or expired; returns it, or null when another owner holds a live lease.
   * Acquiring a lease this owner already holds renews it (same token). Store errors propagate.
   */
  async acquire(mailboxId: string, owner: string): Promise<HeldMailboxLease | null> {
    const key = mailboxLeaseKey(mailboxId);
    const current = await this.store.get<unknown>(key);
    const now = this.clock.now();
    if (isRecord(current) && current.expiresAt > now) {
      if (current.owner !== owner) return null;
      return this.renew({ mailboxId, owner, token: current.token, expiresAt: current.expiresAt });
    }
    const token = await this.store.incr(mailboxFenceKey(mailboxId));
    const record: MailboxLeaseRecord = { owner, token, expiresAt: now + this.ttlMs, acquiredAt: now };
    if (current === undefined) {
      const inserted = await this.store.putIfAbsent(key, record, { ttlMs: this.ttlMs });
      return inserted ? { mailboxId, owner, token, expiresAt: record.expiresAt } : null;
    }
    // Present but expired (or unreadable): take it over atomically, unless someone else just did.
    let taken = false;
    await this.store.update<unknown>(
      key,
      (cur) => {
        taken = false;
        const at = this.clock.now();
        if (isRecord(cur) && cur.expiresAt > at) return cur; // another instance was faster
        taken = true;
        return { ...record, expiresAt: at + this.ttlMs, acquiredAt: at };
      },
      { ttlMs: this.ttlMs },
    );
    if (!taken) return null;
    const after = await this.store.get<unknown>(key);
    if (!isRecord(after) || after.owner !== owner || after.token !== token) return null;
    return { mailboxId, owner, token, expiresAt: after.expiresAt };
  }

  /**
   * Extends a held lease by the TTL. Returns the renewed lease, or null when it was lost (another owner or token
   * holds it, or it disappeared): the caller must stop reading the mailbox at once. Store errors propagate.
   */
  async renew(lease: HeldMailboxLease): Promise<HeldMailboxLease | null> {
    let renewed: MailboxLeaseRecord | null = null;
    await this.store.update<unknown>(
      mailboxLeaseKey(lease.mailboxId),
      (cur) => {
        renewed = null;
        if (!isRecord(cur) || cur.owner !== lease.owner || cur.token !== lease.token) return cur;
        renewed = { ...cur, expiresAt: this.clock.now() + this.ttlMs };
        return renewed;
      },
      // Also resets the TTL of a foreign lease we return untouched; harmless: its `expiresAt` stays authoritative,
      // and the store TTL only ever outlives it.
      { ttlMs: this.ttlMs },
    );
    const r = renewed as MailboxLeaseRecord | null;
    return r ? { mailboxId: lease.mailboxId, owner: lease.owner, token: lease.token, expiresAt: r.expiresAt } : null;
  }

  /** Gives the lease up when this owner and token still hold it. True when it was released. */
  async release(lease: HeldMailboxLease): Promise<boolean> {
    let released = false;
    await this.store.update<unknown>(mailboxLeaseKey(lease.mailboxId), (cur) => {
      released = false;
      if (!isRecord(cur) || cur.owner !== lease.owner || cur.token !== lease.token) return cur;
      released = true;
      return undefined;
    });
    return released;
  }

  /** The current live holder of a mailbox's lease, or null (free or expired). */
  async holder(mailboxId: string): Promise<MailboxLeaseRecord | null> {
    const cur = await this.store.get<unknown>(mailboxLeaseKey(mailboxId));
    return isRecord(cur) && cur.expiresAt > this.clock.now() ? cur : null;
  }
}

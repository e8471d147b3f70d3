// Keeps exactly one mailbox worker per inbound account while the email channel is on, for the mailboxes whose lease this instance holds (R-GLB-1, R-REL-2).
//
// Reconcile (on `refresh()` and every `reconcileIntervalMs`, default 5 s): first renew the lease of every running
// worker (a lost lease stops its worker at once; a renewal that keeps failing stops it before the lease can expire),
// then read the channel switch and the accounts: with the channel off every worker stops and its lease is released;
// otherwise workers of deleted or outbound-only accounts stop, workers whose account changed in a way that matters
// (server, user name, password, marking, import date) restart, and every inbound account without a worker gets one
// if its lease can be taken (free, or expired because the instance holding it died). Reconciles never overlap;
// refreshes that arrive during one are coalesced into a single follow-up.
import { silentLogger } from '../core/ports.js';
import type { Account } from '../core/account.js';
import { systemClock, type Clock, type Logger } from '../core/ports.js';
import type { MailboxHealth, MailboxStatusSource } from './health-service.js';
import { MAILBOX_LEASE_RENEW_MS, type HeldMailboxLease, type MailboxLease } from './mailbox-lease.js';

/** What a worker reports (ImapMailboxWorker's status() has this shape and more). */
export interface MailboxStatus {
  accountId: string;
  state: string;
  backlog: number;
  lastError: string | null;
  lastMessageAt: string | null;
  import?: { done: number; total: number; finished: boolean } | null;
}

/** A running reader of one mailbox (src/adapters/imap/mailbox-worker.ts satisfies it). */
export interface MailboxWorkerHandle {
  /** Starts reading in the background; resolves at once. */
  start(): Promise<void>;
  /** Stops (bounded), waiting for an in-flight delivery. */
  stop(): Promise<void>;
  status(): MailboxStatus;
}

export interface MailboxSupervisorDeps {
  /** Every account (the supervisor keeps the inbound ones: not outbound-only, with an IMAP server). */
  listAccounts(): Promise<Account[]>;
  /** The global email channel switch (R-GLB-1). */
  channelEnabled(): Promise<boolean>;
  /** The account's password in clear (from the sealed one). */
  openPassword(account: Account): Promise<string>;
  createWorker(account: Account, password: string, opts: { importSince: Date | null }): MailboxWorkerHandle;
  lease: MailboxLease;
  /** This instance's lease owner name (unique per process). */
  instanceId: string;
  clock?: Clock;
  logger?: Logger;
  /** How often to reconcile and renew leases (default 5 s; must stay well under the lease TTL). */
  reconcileIntervalMs?: number;
}

interface Running {
  account: Account;
  fingerprint: string;
  worker: MailboxWorkerHandle;
  lease: HeldMailboxLease;
}

interface Failed {
  state: string;
  lastError: string;
}


const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 500);

/** An account is read when it is not outbound-only and has an IMAP server (R-ACC-3). */
export const isInbound = (a: Account): boolean => !a.outboundOnly && a.imap !== null;

/** What a worker was built from: a change in any of it restarts the worker; status-only updates do not. */
export function workerFingerprint(a: Account): string {
  return JSON.stringify([a.imap, a.username, a.auth, a.markAs, a.importSince, a.outboundOnly]);
}

export class MailboxSupervisor implements MailboxStatusSource {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly running = new Map<string, Running>();
  private readonly failed = new Map<string, Failed>();
  /** Inbound accounts seen while the channel is off (shown as `disabled`). */
  private disabled: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: MailboxSupervisorDeps) {
    this.clock = deps.clock ?? systemClock;
    this.log = (deps.logger ?? silentLogger).child({ component: 'mailbox-supervisor', instanceId: deps.instanceId });
    this.intervalMs = deps.reconcileIntervalMs ?? MAILBOX_LEASE_RENEW_MS;
    if (!Number.isSafeInteger(this.intervalMs) || this.intervalMs < 1) throw new RangeError(`reconcileIntervalMs must be a positive integer, got ${this.intervalMs}`);
    if (this.intervalMs * 2 > deps.lease.ttlMs) {
      this.log.warn({ reconcileIntervalMs: this.intervalMs, leaseTtlMs: deps.lease.ttlMs }, 'reconcile interval is too long for the lease TTL');
    }
  }

  /** First reconcile, then one every `reconcileIntervalMs`. */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    await this.refresh();
    this.schedule();
  }

  /** Reconciles now (after an account change or a channel switch). Resolves when a reconcile that saw the change finished. */
  refresh(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(async () => {
      this.queued = null;
      try {
        await this.reconcile();
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'mailbox reconcile failed');
      }
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  /**
   * Stops every worker. With `releaseLeases: false` the leases are left to expire (what a crash looks like to the
   * other instances); by default they are released so another instance can take over at once.
   */
  async stop(opts: { releaseLeases?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.chain;
    const release = opts.releaseLeases !== false;
    await Promise.all([...this.running.keys()].map((id) => this.stopOne(id, 'supervisor stopping', release)));
    this.failed.clear();
    this.disabled = [];
  }

  /** One entry per mailbox this instance reads (or failed to start, or would read but the channel is off). */
  mailboxes(): MailboxHealth[] {
    const out: MailboxHealth[] = [];
    for (const [id, r] of this.running) {
      const st = r.worker.status();
      out.push({ accountId: id, state: st.state, backlog: st.backlog, lastError: st.lastError, lastMessageAt: st.lastMessageAt, ...(st.import ? { import: st.import } : {}) });
    }
    for (const [id, f] of this.failed) {
      if (!this.running.has(id)) out.push({ accountId: id, state: f.state, backlog: 0, lastError: f.lastError, lastMessageAt: null });
    }
    for (const id of this.disabled) out.push({ accountId: id, state: 'disabled', backlog: 0, lastError: null, lastMessageAt: null });
    return out.sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));
  }

  /** Full worker statuses (with import progress) of the mailboxes this instance reads. */
  statuses(): MailboxStatus[] {
    return [...this.running.values()].map((r) => r.worker.status());
  }

  /** Ids of the accounts this instance currently reads. */
  runningAccountIds(): string[] {
    return [...this.running.keys()].sort();
  }

  // ---- internals ----

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refresh().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    await this.renewLeases();

    let enabled: boolean;
    try {
      enabled = await this.deps.channelEnabled();
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'cannot read the channel switch; keeping the current workers');
      return;
    }
    let accounts: Account[];
    try {
      accounts = await this.deps.listAccounts();
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'cannot list accounts; keeping the current workers');
      if (!enabled) await this.stopAll('email channel is off');
      return;
    }
    const inbound = new Map(accounts.filter(isInbound).map((a) => [a.id, a]));

    if (!enabled) {
      await this.stopAll('email channel is off');
      this.failed.clear();
      this.disabled = [...inbound.keys()];
      return;
    }
    this.disabled = [];

    for (const [id, r] of [...this.running]) {
      const account = inbound.get(id);
      if (!account) await this.stopOne(id, 'account deleted or outbound-only', true);
      else if (workerFingerprint(account) !== r.fingerprint) await this.stopOne(id, 'account changed; restarting its worker', false);
    }
    for (const id of [...this.failed.keys()]) if (!inbound.has(id)) this.failed.delete(id);

    for (const account of inbound.values()) {
      if (this.stopped) return;
      if (!this.running.has(account.id)) await this.startOne(account);
    }
  }

  private async renewLeases(): Promise<void> {
    for (const [id, r] of [...this.running]) {
      try {
        const renewed = await this.deps.lease.renew(r.lease);
        if (renewed) {
          r.lease = renewed;
          continue;
        }
        this.log.warn({ accountId: id }, 'mailbox lease lost to another instance; stopping its worker');
        await this.stopOne(id, 'lease lost', false);
      } catch (err) {
        // Unknown outcome: keep reading while the lease surely lasts, stop before it can expire under us.
        const left = r.lease.expiresAt - this.clock.now();
        this.log.warn({ accountId: id, err: errorText(err), msLeft: left }, 'cannot renew the mailbox lease');
        if (left <= this.intervalMs) await this.stopOne(id, 'lease could not be renewed', false);
      }
    }
  }

  private async startOne(account: Account): Promise<void> {
    let lease: HeldMailboxLease | null;
    try {
      lease = await this.deps.lease.acquire(account.id, this.deps.instanceId);
    } catch (err) {
      this.log.warn({ accountId: account.id, err: errorText(err) }, 'cannot take the mailbox lease');
      return;
    }
    if (!lease) {
      // Another instance reads it.
      this.failed.delete(account.id);
      return;
    }
    let password: string;
    try {
      password = await this.deps.openPassword(account);
    } catch (err) {
      await this.fail(account.id, lease, 'auth_failed', `cannot open the account's password: ${errorText(err)}`);
      return;
    }
    try {
      const worker = this.deps.createWorker(account, password, { importSince: account.importSince ? new Date(account.importSince) : null });
      this.running.set(account.id, { account, fingerprint: workerFingerprint(account), worker, lease });
      this.failed.delete(account.id);
      await worker.start();
      this.log.info({ accountId: account.id, token: lease.token }, 'mailbox worker started');
    } catch (err) {
      this.running.delete(account.id);
      await this.fail(account.id, lease, 'protocol_error', `cannot start the mailbox worker: ${errorText(err)}`);
    }
  }

  private async fail(accountId: string, lease: HeldMailboxLease, state: string, message: string): Promise<void> {
    this.log.warn({ accountId, state }, message);
    this.failed.set(accountId, { state, lastError: message });
    // Let another instance (or the next reconcile) try.
    await this.deps.lease.release(lease).catch(() => undefined);
  }

  private async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.stopOne(id, reason, true)));
  }

  private async stopOne(accountId: string, reason: string, release: boolean): Promise<void> {
    const r = this.running.get(accountId);
    if (!r) return;
    this.running.delete(accountId);
    try {
      await r.worker.stop();
    } catch (err) {
      this.log.warn({ accountId, err: errorText(err) }, 'mailbox worker stop failed');
    }
    this.log.info({ accountId, reason }, 'mailbox worker stopped');
    if (release) {
      try {
        await this.deps.lease.release(r.lease);
      } catch (err) {
        this.log.warn({ accountId, err: errorText(err) }, 'cannot release the mailbox lease (it will expire)');
      }
    }
  }
}

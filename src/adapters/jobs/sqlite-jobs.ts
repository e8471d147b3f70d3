// Embedded durable job runner over the SQLite `jobs` table: polled, claimed atomically under a lease, limited per target.
//
// How it runs
// - `enqueue` inserts in a transaction (INSERT OR IGNORE: an existing id is a no-op whatever its state)
//   and wakes the pump at once; the SQLite store inserts jobs in its own transactions and they are
//   found by the periodic poll (`pollIntervalMs`).
// - The pump is synchronous (better-sqlite3) and bounded: it recovers expired leases, promotes due
//   `delayed` jobs to `waiting` (so due jobs come from one index range, `jobs_due`), then selects a
//   batch of due jobs whose purpose has a handler and whose target has a free slot, and claims each with
//   `UPDATE ... WHERE id=? AND state='waiting'` (state `active`, `lease_until`, a per-claim `lease_owner`
//   token that fences every later write). A job is claimed only when its target can start it now, so
//   a saturated or rate-limited target never holds a slot or a row another target could use.
// - Each claimed job runs through its target's p-queue (concurrency from `setTargetLimits`, default 4;
//   an exact target wins over the longest `prefix*` pattern). Rate limits (`rate: { max, windowMs }`)
//   use an in-process sliding window of start times: fine in embedded mode, where one process runs jobs.
// - Leases of running jobs are renewed every leaseMs/3; a lease that expires (process killed mid-run)
//   puts the job back to `waiting` with the interrupted run counted as an attempt (a job that kills the
//   process every time ends `failed`). Handlers must therefore be idempotent (at-least-once).
// - `attempts` counts finished runs (success or failure), not RetryLaterError deferrals, which are
//   capped separately (`maxDeferrals`, then they count as failures).
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import PQueue from 'p-queue';
import type Database from 'better-sqlite3';
import {
  systemClock,
  type Clock,
  type JobHandler,
  type JobQueue,
  type JobRecord,
  type JobSpec,
  type JobState,
  type Logger,
  type TargetLimits,
} from '../../core/ports.js';
import { backoffDelay, classifyHandlerError, errorMessage, type JitterMode } from '../../core/policies/retry.js';
import { ensureJobsSchema, insertJobsSync } from './sqlite-schema.js';
import { TargetLimitsTable } from './target-limits.js';
import {
  clampLimit,
  decodeCursor,
  encodeCursor,
  silentLogger,
  withTimeout,
} from './job-utils.js';

export interface SqliteJobQueueOptions {
  db: Database.Database;
  clock?: Clock;
  logger?: Logger;
  /** Safety-net poll for jobs inserted by other writers and expired leases (default 1 s). */
  pollIntervalMs?: number;
  /** How long a claim holds without renewal (default 60 s); renewed every leaseMs/3 while running. */
  leaseMs?: number;
  /** Due jobs read per query (default 50). */
  batchSize?: number;
  backoff?: { baseMs?: number; maxMs?: number; jitter?: JitterMode };
  /** Completed jobs are deleted after this long (default 24 h). */
  completedRetentionMs?: number;
  /** Interval of the retention sweep (default 60 s). */
  sweepIntervalMs?: number;
  /** `stop()` waits at most this long for running handlers (default 10 s). */
  stopTimeoutMs?: number;
  /** RetryLaterError deferrals before they count as failed attempts (default 100). */
  maxDeferrals?: number;
}

interface JobRow {
  id: string;
  purpose: string;
  target: string;
  payload: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: number;
  last_error: string | null;
  lease_until: number | null;
  lease_owner: string | null;
  deferrals: number;
  created_at: number;
  updated_at: number;
}

interface TargetRunner {
  queue: PQueue;
  /** Start times (performance.now) inside the current rate window, oldest first; at most `rate.max`. */
  starts: number[];
}

interface Claim {
  token: string;
  target: string;
  started: boolean;
}

const MAX_PUMP_ROUNDS = 8;
const PROMOTE_BATCH = 1000;
const RECOVER_BATCH = 500;
const PRUNE_BATCH = 1000;
const UNKNOWN_SCAN = 1000;
const MAX_ERROR_LENGTH = 2000;

export class SqliteJobQueue implements JobQueue {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly backoff: { baseMs?: number; maxMs?: number; jitter?: JitterMode };
  private readonly retentionMs: number;
  private readonly sweepIntervalMs: number;
  private readonly stopTimeoutMs: number;
  private readonly maxDeferrals: number;
  private readonly runnerId = randomUUID();

  private readonly handlers = new Map<string, JobHandler>();
  private readonly limits = new TargetLimitsTable();
  private readonly targets = new Map<string, TargetRunner>();
  private readonly claims = new Map<string, Claim>();
  private readonly warnedPurposes = new Set<string>();
  private claimSeq = 0;

  private running = false;
  private pumping = false;
  private wakeQueued = false;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpTimerAt = Number.POSITIVE_INFINITY;
  private sweepTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private lastRecoveryAt = Number.NEGATIVE_INFINITY;

  private readonly stmt: Statements;

  constructor(opts: SqliteJobQueueOptions) {
    this.db = opts.db;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger).child({ module: 'sqlite-jobs' });
    this.pollIntervalMs = positive(opts.pollIntervalMs, 1000);
    this.leaseMs = positive(opts.leaseMs, 60_000);
    this.batchSize = positive(opts.batchSize, 50);
    this.backoff = opts.backoff ?? {};
    this.retentionMs = positive(opts.completedRetentionMs, 24 * 60 * 60_000);
    this.sweepIntervalMs = positive(opts.sweepIntervalMs, 60_000);
    this.stopTimeoutMs = positive(opts.stopTimeoutMs, 10_000);
    this.maxDeferrals = positive(opts.maxDeferrals, 100);
    ensureJobsSchema(this.db);
    this.stmt = prepareStatements(this.db);
  }

  // ---- JobQueue -----------------------------------------------------------------------------------

  async enqueue(jobs: JobSpec[]): Promise<void> {
    if (jobs.length === 0) return;
    const now = this.clock.now();
    this.db.transaction(() => insertJobsSync(this.db, jobs, now))();
    this.wake();
  }

  register(purpose: string, handler: JobHandler): void {
    this.handlers.set(purpose, handler);
    this.warnedPurposes.delete(purpose);
    this.wake();
  }

  setTargetLimits(target: string, limits: TargetLimits): void {
    this.limits.set(target, limits);
    for (const [name, runner] of this.targets) {
      if (TargetLimitsTable.affects(target, name)) runner.queue.concurrency = this.limits.resolve(name).concurrency;
    }
    this.wake();
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.lastRecoveryAt = Number.NEGATIVE_INFINITY;
    this.sweep();
    this.renewTimer = setInterval(() => this.renewLeases(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.pump();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.pumpTimer);
    clearTimeout(this.sweepTimer);
    this.pumpTimer = undefined;
    this.sweepTimer = undefined;
    this.pumpTimerAt = Number.POSITIVE_INFINITY;
    // Claimed but not started (should not happen: we claim only for free slots): hand back at once.
    for (const runner of this.targets.values()) runner.queue.clear();
    const now = this.clock.now();
    for (const [id, claim] of this.claims) {
      if (claim.started) continue;
      this.claims.delete(id);
      this.safely('release', () => this.stmt.release.run({ id, token: claim.token, now }));
    }
    const idle = Promise.all([...this.targets.values()].map((r) => r.queue.onIdle()));
    try {
      await withTimeout(idle, this.stopTimeoutMs, 'waiting for running jobs');
    } catch (err) {
      this.log.warn({ err: errorMessage(err), running: this.claims.size }, 'jobs still running at stop; their leases will expire');
    } finally {
      clearInterval(this.renewTimer);
      this.renewTimer = undefined;
    }
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.stmt.get.get(id);
    return row ? toRecord(row) : undefined;
  }

  async list(filter: { state?: JobState; limit: number; cursor?: string }): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const limit = clampLimit(filter.limit);
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: limit + 1 };
    if (filter.state) {
      where.push('state = @state');
      params.state = filter.state;
    }
    if (filter.cursor) {
      const c = decodeCursor(filter.cursor);
      where.push('(updated_at < @cu OR (updated_at = @cu AND id < @ci))');
      params.cu = c.updatedAt;
      params.ci = c.id;
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY updated_at DESC, id DESC LIMIT @limit`;
    const rows = this.db.prepare<Record<string, unknown>, JobRow>(sql).all(params);
    const items = rows.slice(0, limit).map(toRecord);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > limit && last ? encodeCursor({ updatedAt: last.updatedAt, id: last.id }) : null,
    };
  }

  async retry(id: string): Promise<boolean> {
    const changed = this.stmt.retry.run({ id, now: this.clock.now() }).changes === 1;
    if (changed) this.wake();
    return changed;
  }

  async counts(target?: string): Promise<Record<JobState, number>> {
    const out: Record<JobState, number> = { waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 };
    for (const { state, n } of target === undefined ? this.stmt.counts.all() : this.stmt.countsOf.all(target)) out[state] = n;
    return out;
  }

  // ---- pump ---------------------------------------------------------------------------------------

  /** Asks for a pump soon (never synchronously: callers may be inside a handler or the pump itself). */
  private wake(): void {
    if (!this.running || this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running || this.pumping) return;
    this.pumping = true;
    let more = false;
    try {
      more = this.pumpOnce();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'job pump failed; retrying at next poll');
    } finally {
      this.pumping = false;
    }
    if (more) this.wake();
    this.scheduleNext();
  }

  /** One bounded pass. Returns true when due work remains that a new pass could take now. */
  private pumpOnce(): boolean {
    const now = this.clock.now();
    if (performance.now() - this.lastRecoveryAt >= Math.min(this.pollIntervalMs, this.leaseMs / 2)) {
      this.lastRecoveryAt = performance.now();
      const recovered = this.stmt.recover.run({ now, error: 'lease expired: the process running the job stopped' }).changes;
      if (recovered > 0) this.log.warn({ recovered }, 'recovered jobs whose lease expired');
    }
    this.stmt.promote.run({ now });
    if (this.handlers.size === 0) return false;
    const purposes = JSON.stringify([...this.handlers.keys()]);
    for (let round = 0; round < MAX_PUMP_ROUNDS; round++) {
      const blocked = new Set<string>();
      for (const name of this.targets.keys()) if (!this.canStart(name)) blocked.add(name);
      const rows = this.stmt.due.all({ now, purposes, blocked: JSON.stringify([...blocked]), limit: this.batchSize });
      let progressed = false;
      for (const row of rows) {
        if (!this.running) return false;
        // A target that filled up during this batch: the next round excludes it in SQL.
        if (!this.canStart(row.target)) progressed = true;
        else if (this.claimAndDispatch(row, now)) progressed = true;
      }
      if (rows.length < this.batchSize || !progressed) return false;
    }
    return true;
  }

  private claimAndDispatch(row: JobRow, now: number): boolean {
    const token = `${this.runnerId}:${++this.claimSeq}`;
    const claimed = this.stmt.claim.run({ id: row.id, token, leaseUntil: now + this.leaseMs, now }).changes === 1;
    if (!claimed) return false;
    const runner = this.runner(row.target);
    const limits = this.limits.resolve(row.target);
    if (limits.rate) runner.starts.push(performance.now());
    const claim: Claim = { token, target: row.target, started: false };
    this.claims.set(row.id, claim);
    const job: JobRow = { ...row, state: 'active', lease_owner: token, lease_until: now + this.leaseMs, updated_at: now };
    runner.queue
      .add(async () => {
        claim.started = true;
        await this.runJob(job, claim);
      })
      .catch((err: unknown) => this.log.error({ err: errorMessage(err), jobId: row.id }, 'job task crashed'));
    return true;
  }

  private async runJob(row: JobRow, claim: Claim): Promise<void> {
    const handler = this.handlers.get(row.purpose);
    let outcome: { ok: true } | { ok: false; err: unknown };
    if (!handler) {
      this.claims.delete(row.id);
      this.safely('release', () => this.stmt.release.run({ id: row.id, token: claim.token, now: this.clock.now() }));
      return;
    }
    try {
      await handler(toRecord(row));
      outcome = { ok: true };
    } catch (err) {
      outcome = { ok: false, err };
    }
    this.claims.delete(row.id);
    this.safely('finish', () => this.finish(row, claim.token, outcome));
    this.wake();
  }

  private finish(row: JobRow, token: string, outcome: { ok: true } | { ok: false; err: unknown }): void {
    const now = this.clock.now();
    const base = { id: row.id, token, now, deferrals: row.deferrals, runAt: row.run_at };
    if (outcome.ok) {
      this.stmt.finish.run({ ...base, state: 'completed', attempts: row.attempts + 1, lastError: null });
      return;
    }
    const message = errorMessage(outcome.err).slice(0, MAX_ERROR_LENGTH);
    const decision = classifyHandlerError(outcome.err);
    if (decision.kind === 'retry_later' && row.deferrals < this.maxDeferrals) {
      this.stmt.finish.run({
        ...base,
        state: 'delayed',
        attempts: row.attempts,
        deferrals: row.deferrals + 1,
        runAt: now + decision.delayMs,
        lastError: message,
      });
      this.log.debug({ jobId: row.id, delayMs: decision.delayMs }, 'job asked to retry later');
      return;
    }
    const attempts = row.attempts + 1;
    if (decision.kind === 'permanent' || attempts >= row.max_attempts) {
      this.stmt.finish.run({ ...base, state: 'failed', attempts, lastError: message });
      this.log.warn({ jobId: row.id, purpose: row.purpose, target: row.target, attempts, err: message }, 'job failed');
      return;
    }
    const delay = Math.max(backoffDelay(attempts, this.backoff), decision.kind === 'retry_later' ? decision.delayMs : 0);
    this.stmt.finish.run({ ...base, state: 'delayed', attempts, runAt: now + delay, lastError: message });
    this.log.info({ jobId: row.id, attempts, delayMs: delay, err: message }, 'job will be retried');
  }

  /** True when `target` has a free concurrency slot and room in its rate window. */
  private canStart(target: string): boolean {
    const limits = this.limits.resolve(target);
    const runner = this.targets.get(target);
    if (!runner) return true;
    if (runner.queue.pending + runner.queue.size >= limits.concurrency) return false;
    return this.rateReopensAt(runner, limits) === 0;
  }

  /** 0 when a start is allowed now, else the performance.now() time the window admits one again. */
  private rateReopensAt(runner: TargetRunner, limits: TargetLimits): number {
    if (!limits.rate) {
      runner.starts.length = 0;
      return 0;
    }
    const t = performance.now();
    while (runner.starts.length > 0 && (runner.starts[0] ?? 0) <= t - limits.rate.windowMs) runner.starts.shift();
    if (runner.starts.length < limits.rate.max) return 0;
    return (runner.starts[runner.starts.length - limits.rate.max] ?? t) + limits.rate.windowMs;
  }

  private runner(target: string): TargetRunner {
    let runner = this.targets.get(target);
    if (!runner) {
      runner = { queue: new PQueue({ concurrency: this.limits.resolve(target).concurrency }), starts: [] };
      this.targets.set(target, runner);
    }
    return runner;
  }

  private scheduleNext(): void {
    if (!this.running) return;
    const nowWall = this.clock.now();
    let delay = this.pollIntervalMs;
    const next = this.safely('next delayed', () => this.stmt.nextDelayed.get()?.next ?? null);
    if (typeof next === 'number') delay = Math.min(delay, next - nowWall);
    const t = performance.now();
    for (const [name, runner] of this.targets) {
      const limits = this.limits.resolve(name);
      const reopen = this.rateReopensAt(runner, limits);
      if (reopen > 0) delay = Math.min(delay, reopen - t);
    }
    delay = Math.max(0, Math.ceil(delay));
    const at = t + delay;
    if (this.pumpTimer && this.pumpTimerAt <= at) return;
    clearTimeout(this.pumpTimer);
    this.pumpTimerAt = at;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pumpTimerAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, delay);
  }

  // ---- housekeeping -------------------------------------------------------------------------------

  private renewLeases(): void {
    if (this.claims.size === 0) return;
    const leaseUntil = this.clock.now() + this.leaseMs;
    this.safely('renew leases', () =>
      this.db.transaction(() => {
        for (const [id, claim] of this.claims) this.stmt.renew.run({ id, token: claim.token, leaseUntil });
      })(),
    );
  }

  private sweep(): void {
    if (!this.running) return;
    let again = false;
    this.safely('sweep', () => {
      const pruned = this.stmt.prune.run({ before: this.clock.now() - this.retentionMs }).changes;
      again = pruned >= PRUNE_BATCH;
      for (const { purpose } of this.stmt.unknownPurposes.all({ purposes: JSON.stringify([...this.handlers.keys()]) })) {
        if (this.warnedPurposes.has(purpose)) continue;
        this.warnedPurposes.add(purpose);
        this.log.warn({ purpose }, 'jobs with no registered handler stay waiting (written by a newer version?)');
      }
    });
    for (const [name, runner] of this.targets) {
      if (runner.queue.size === 0 && runner.queue.pending === 0 && runner.starts.length === 0) this.targets.delete(name);
    }
    this.sweepTimer = setTimeout(() => this.sweep(), again ? 1000 : this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  private safely<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, `jobs: ${what} failed`);
      return undefined;
    }
  }
}

type Statements = ReturnType<typeof prepareStatements>;

function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    recover: db.prepare<{ now: number; error: string }>(
      `UPDATE jobs SET
         attempts = attempts + 1,
         state = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'waiting' END,
         run_at = @now, lease_until = NULL, lease_owner = NULL, last_error = @error, updated_at = @now
       WHERE id IN (SELECT id FROM jobs WHERE state = 'active' AND lease_until < @now LIMIT ${RECOVER_BATCH})`,
    ),
    promote: db.prepare<{ now: number }>(
      `UPDATE jobs SET state = 'waiting', updated_at = @now
       WHERE id IN (SELECT id FROM jobs WHERE state = 'delayed' AND run_at <= @now ORDER BY run_at LIMIT ${PROMOTE_BATCH})`,
    ),
    due: db.prepare<{ now: number; purposes: string; blocked: string; limit: number }, JobRow>(
      `SELECT * FROM jobs
       WHERE state = 'waiting' AND run_at <= @now
         AND purpose IN (SELECT value FROM json_each(@purposes))
         AND target NOT IN (SELECT value FROM json_each(@blocked))
       ORDER BY run_at LIMIT @limit`,
    ),
    claim: db.prepare<{ id: string; token: string; leaseUntil: number; now: number }>(
      `UPDATE jobs SET state = 'active', lease_until = @leaseUntil, lease_owner = @token, updated_at = @now
       WHERE id = @id AND state = 'waiting' AND run_at <= @now`,
    ),
    renew: db.prepare<{ id: string; token: string; leaseUntil: number }>(
      `UPDATE jobs SET lease_until = @leaseUntil WHERE id = @id AND state = 'active' AND lease_owner = @token`,
    ),
    release: db.prepare<{ id: string; token: string; now: number }>(
      `UPDATE jobs SET state = 'waiting', lease_until = NULL, lease_owner = NULL, updated_at = @now
       WHERE id = @id AND state = 'active' AND lease_owner = @token`,
    ),
    finish: db.prepare<{
      id: string;
      token: string;
      state: JobState;
      attempts: number;
      deferrals: number;
      runAt: number;
      lastError: string | null;
      now: number;
    }>(
      `UPDATE jobs SET state = @state, attempts = @attempts, deferrals = @deferrals, run_at = @runAt,
         last_error = COALESCE(@lastError, last_error), lease_until = NULL, lease_owner = NULL, updated_at = @now
       WHERE id = @id AND state = 'active' AND lease_owner = @token`,
    ),
    nextDelayed: db.prepare<[], { next: number | null }>(
      `SELECT MIN(run_at) AS next FROM jobs WHERE state = 'delayed'`,
    ),
    unknownPurposes: db.prepare<{ purposes: string }, { purpose: string }>(
      `SELECT DISTINCT purpose FROM (
         SELECT purpose FROM jobs WHERE state = 'waiting'
           AND purpose NOT IN (SELECT value FROM json_each(@purposes)) LIMIT ${UNKNOWN_SCAN})`,
    ),
    prune: db.prepare<{ before: number }>(
      `DELETE FROM jobs WHERE id IN (
         SELECT id FROM jobs WHERE state = 'completed' AND updated_at < @before LIMIT ${PRUNE_BATCH})`,
    ),
    retry: db.prepare<{ id: string; now: number }>(
      `UPDATE jobs SET state = 'waiting', attempts = 0, deferrals = 0, run_at = @now,
         lease_until = NULL, lease_owner = NULL, updated_at = @now
       WHERE id = @id AND state = 'failed'`,
    ),
    counts: db.prepare<[], { state: JobState; n: number }>('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state'),
    countsOf: db.prepare<[string], { state: JobState; n: number }>('SELECT state, COUNT(*) AS n FROM jobs WHERE target = ? GROUP BY state'),
  };
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    purpose: row.purpose,
    target: row.target,
    payload: parsePayload(row.payload),
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: row.run_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

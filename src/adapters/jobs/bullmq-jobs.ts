// Durable jobs on Redis with BullMQ: one BullMQ queue (and, per instance, one worker) per target.
//
// Why one queue per target (and not one queue + rate-limiter-flexible + p-queue):
// - BullMQ's open-source limiter and worker concurrency are per queue. With a queue per target they
//   are exactly our per-target limits: `rate` is enforced atomically in Redis across every instance
//   (the limiter key lives in the queue), `concurrency` is the worker's concurrency in this process.
// - A saturated or rate-limited target keeps its jobs in Redis: they never occupy a worker slot that
//   another target could use (with a shared queue, a job fetched for a busy target must either hold a
//   slot, stalling other targets, or be bounced back to `delayed`, churning Redis and reordering jobs).
//   One slow CRM or SMTP account never stalls the others, and each target keeps its FIFO order.
// - Cost: one blocking Redis connection per target per instance (workers share one connection for
//   other commands), and reads across targets (`get`, `list`, `counts`) fan out over the known
//   targets. Targets are few (CRM accounts, SMTP accounts, buckets), so both stay small.
// Targets are recorded in a Redis set (`<prefix>:__targets__`) on enqueue; every instance polls it
// (`discoveryIntervalMs`, SSCAN, bounded) and starts a worker for each new target, and starts one at
// once for targets it enqueues itself.
//
// Ids: BullMQ queue names and custom job ids cannot contain `:` (and job ids cannot look like
// integers), so both are escaped reversibly: `%` → `%25`, `:` → `%3A`, a `%N` prefix for ids that
// would parse as integers, `%E` for the empty string. `decodeBullId(encodeBullId(x)) === x`.
//
// Semantics: jobId dedup (re-adding an existing id is a no-op in every state, until a completed job is
// pruned after `completedRetentionMs`); `attempts` = maxAttempts with the custom backoff strategy calling
// `backoffDelay`; RetryLaterError → `job.moveToDelayed` + `DelayedError` (no attempt consumed; at most
// `maxDeferrals`, counted as attemptsStarted - attemptsMade); PermanentJobError → `UnrecoverableError`;
// an unknown purpose is parked in `delayed` for `unknownPurposeDelayMs` (never failed). Failed jobs are
// kept; completed ones are pruned by BullMQ (`removeOnComplete.age`) and by a bounded `clean` sweep.
// A worker killed mid-job loses its lock; BullMQ's stalled checker puts the job back to wait
// (`lockDuration`, `stalledInterval`), so jobs are at-least-once and handlers must be idempotent.
import { DelayedError, Queue, UnrecoverableError, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
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
import { DEFAULT_MAX_ATTEMPTS } from './sqlite-schema.js';
import { TargetLimitsTable } from './target-limits.js';
import {
  clampLimit,
  compareNewestFirst,
  decodeCursor,
  encodeCursor,
  isAfterCursor,
  silentLogger,
  withTimeout,
  type ListCursor,
} from './job-utils.js';

export interface BullmqJobQueueOptions {
  url: string;
  /** Redis key prefix of every queue (default `ec`). */
  prefix?: string;
  clock?: Clock;
  logger?: Logger;
  backoff?: { baseMs?: number; maxMs?: number; jitter?: JitterMode };
  /** How often every instance looks for targets enqueued elsewhere, and sweeps completed jobs (default 5 s). */
  discoveryIntervalMs?: number;
  /** Completed jobs are removed after this long (default 24 h). */
  completedRetentionMs?: number;
  /** Bound of every Redis round trip made by this adapter (default 10 s). */
  commandTimeoutMs?: number;
  /** `stop()` waits at most this long for running handlers (default 10 s). */
  stopTimeoutMs?: number;
  /** RetryLaterError deferrals before they count as failed attempts (default 100). */
  maxDeferrals?: number;
  /** A job whose purpose has no handler here is parked in `delayed` this long (default 60 s). */
  unknownPurposeDelayMs?: number;
  /** BullMQ worker settings (defaults: lockDuration 30 s, stalledInterval 30 s, maxStalledCount 2). */
  worker?: { lockDuration?: number; stalledInterval?: number; maxStalledCount?: number };
}

type BullType = 'wait' | 'prioritized' | 'waiting-children' | 'delayed' | 'active' | 'completed' | 'failed';

const STATE_TYPES: Record<JobState, BullType[]> = {
  waiting: ['wait', 'prioritized', 'waiting-children'],
  delayed: ['delayed'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
};
const ALL_STATES: JobState[] = ['waiting', 'delayed', 'active', 'completed', 'failed'];
const FINISHED_TYPES = new Set<BullType>(['completed', 'failed']);
const LIST_TYPES = new Set<BullType>(['wait', 'active']);

const BACKOFF_TYPE = 'ec-backoff';
/** Unordered states (lists, delayed by run time) are listed from at most this many newest entries per target. */
const UNORDERED_SCAN_CAP = 1000;
/** Jobs of one finished set sharing the cursor's millisecond considered when paging. */
const TIE_CAP = 1000;
const MAX_TARGETS = 10_000;
const SSCAN_COUNT = 500;
const CLEAN_BATCH = 1000;
/** BullMQ scores delayed jobs as runAt * 0x1000 + sequence. */
const DELAY_SCORE_FACTOR = 0x1000;

interface JobData {
  payload: unknown;
}

interface Candidate extends ListCursor {
  target: string;
  state: JobState;
}

export class BullmqJobQueue implements JobQueue {
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly backoff: { baseMs?: number; maxMs?: number; jitter?: JitterMode };
  private readonly discoveryIntervalMs: number;
  private readonly retentionMs: number;
  private readonly commandTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly maxDeferrals: number;
  private readonly unknownPurposeDelayMs: number;
  private readonly workerSettings: { lockDuration: number; stalledInterval: number; maxStalledCount: number };
  private readonly registryKey: string;
  private readonly workerUrl: string;

  /** Commands, producers and reads (fails fast). */
  private readonly redis: Redis;
  /** Shared by the workers for non-blocking commands (BullMQ requires maxRetriesPerRequest: null). */
  private workerRedis: Redis | undefined;

  private readonly handlers = new Map<string, JobHandler>();
  private readonly limits = new TargetLimitsTable();
  private readonly knownTargets = new Set<string>();
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Map<string, Worker>();
  private readonly warnedPurposes = new Set<string>();

  private running = false;
  private stopped = false;
  private discoveryTimer: NodeJS.Timeout | undefined;
  private lastSweepAt = 0;

  constructor(opts: BullmqJobQueueOptions) {
    this.prefix = opts.prefix ?? 'ec';
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger).child({ module: 'bullmq-jobs' });
    this.backoff = opts.backoff ?? {};
    this.discoveryIntervalMs = positive(opts.discoveryIntervalMs, 5000);
    this.retentionMs = positive(opts.completedRetentionMs, 24 * 60 * 60_000);
    this.commandTimeoutMs = positive(opts.commandTimeoutMs, 10_000);
    this.stopTimeoutMs = positive(opts.stopTimeoutMs, 10_000);
    this.maxDeferrals = positive(opts.maxDeferrals, 100);
    this.unknownPurposeDelayMs = positive(opts.unknownPurposeDelayMs, 60_000);
    this.workerSettings = {
      lockDuration: positive(opts.worker?.lockDuration, 30_000),
      stalledInterval: positive(opts.worker?.stalledInterval, 30_000),
      maxStalledCount: positive(opts.worker?.maxStalledCount, 2),
    };
    this.registryKey = `${this.prefix}:__targets__`;
    this.redis = new Redis(opts.url, { maxRetriesPerRequest: 3, commandTimeout: this.commandTimeoutMs });
    this.redis.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis connection error'));
    this.workerUrl = opts.url;
  }

  // ---- JobQueue -----------------------------------------------------------------------------------

  async enqueue(jobs: JobSpec[]): Promise<void> {
    if (jobs.length === 0) return;
    this.assertOpen();
    const now = this.clock.now();
    const byTarget = new Map<string, JobSpec[]>();
    for (const job of jobs) {
      const list = byTarget.get(job.target);
      if (list) list.push(job);
      else byTarget.set(job.target, [job]);
    }
    const fresh = [...byTarget.keys()].filter((t) => !this.knownTargets.has(t));
    if (fresh.length > 0) {
      await this.bounded(this.redis.sadd(this.registryKey, ...fresh), 'register targets');
      for (const t of fresh) this.knownTargets.add(t);
    }
    for (const [target, specs] of byTarget) {
      await this.bounded(
        this.queue(target).addBulk(specs.map((spec) => this.toBullJob(spec, now))),
        `enqueue ${specs.length} job(s) for ${target}`,
      );
      this.ensureWorker(target);
    }
  }

  register(purpose: string, handler: JobHandler): void {
    this.handlers.set(purpose, handler);
    this.warnedPurposes.delete(purpose);
  }

  setTargetLimits(target: string, limits: TargetLimits): void {
    this.limits.set(target, limits);
    for (const name of [...this.workers.keys()]) {
      if (TargetLimitsTable.affects(target, name)) this.applyLimits(name);
    }
  }

  async start(): Promise<void> {
    this.assertOpen();
    if (this.running) return;
    this.running = true;
    this.workerRedis = new Redis(this.workerUrl, { maxRetriesPerRequest: null });
    this.workerRedis.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis worker connection error'));
    await this.discover();
    this.scheduleDiscovery();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    clearTimeout(this.discoveryTimer);
    this.discoveryTimer = undefined;
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map((w) => this.closeWorker(w)));
    const queues = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(
      queues.map((q) => withTimeout(q.close(), this.commandTimeoutMs, 'close queue').catch(() => undefined)),
    );
    await Promise.all([quit(this.redis, this.commandTimeoutMs), this.workerRedis ? quit(this.workerRedis, this.commandTimeoutMs) : undefined]);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    this.assertOpen();
    const target = await this.locate(id);
    return target === undefined ? undefined : this.snapshot(target, encodeBullId(id));
  }

  async list(filter: { state?: JobState; limit: number; cursor?: string }): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    this.assertOpen();
    const limit = clampLimit(filter.limit);
    const cursor = filter.cursor ? decodeCursor(filter.cursor) : undefined;
    const targets = await this.refreshTargets();
    const states = filter.state ? [filter.state] : ALL_STATES;
    const perTarget = await Promise.all(
      targets.map(async (target) => {
        const found: Candidate[] = [];
        for (const state of states) {
          for (const type of STATE_TYPES[state]) found.push(...(await this.candidates(target, state, type, limit + 1, cursor)));
        }
        return found;
      }),
    );
    const seen = new Set<string>();
    const merged = perTarget
      .flat()
      .sort(compareNewestFirst)
      .filter((c) => {
        const key = `${c.target}\u0000${c.id}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    const page = merged.slice(0, limit);
    const items = (await Promise.all(page.map((c) => this.snapshot(c.target, c.id)))).filter(
      (r): r is JobRecord => r !== undefined,
    );
    const last = page[page.length - 1];
    return { items, nextCursor: merged.length > limit && last ? encodeCursor({ updatedAt: last.updatedAt, id: last.id }) : null };
  }

  async retry(id: string): Promise<boolean> {
    this.assertOpen();
    const target = await this.locate(id);
    if (target === undefined) return false;
    const job = await this.bounded(this.queue(target).getJob(encodeBullId(id)), 'load job');
    if (!job) return false;
    try {
      // Atomic in BullMQ: rejected unless the job is in the failed set.
      await this.bounded(job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }), 'retry job');
    } catch (err) {
      this.log.debug({ jobId: id, err: errorMessage(err) }, 'job not retried (not failed)');
      return false;
    }
    this.ensureWorker(target);
    return true;
  }

  async counts(target?: string): Promise<Record<JobState, number>> {
    this.assertOpen();
    const out: Record<JobState, number> = { waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 };
    const targets = (await this.refreshTargets()).filter((t) => target === undefined || t === target);
    const all = await Promise.all(
      targets.map((t) =>
        this.bounded(
          this.queue(t).getJobCounts('wait', 'prioritized', 'waiting-children', 'delayed', 'active', 'completed', 'failed'),
          'job counts',
        ),
      ),
    );
    for (const c of all) {
      for (const state of ALL_STATES) for (const type of STATE_TYPES[state]) out[state] += c[type] ?? 0;
    }
    return out;
  }

  // ---- workers ------------------------------------------------------------------------------------

  private ensureWorker(target: string): void {
    if (!this.running || this.workers.has(target) || !this.workerRedis) return;
    const limits = this.limits.resolve(target);
    const worker = new Worker(encodeBullId(target), (job: Job, token?: string) => this.process(target, job, token), {
      connection: this.workerRedis,
      prefix: this.prefix,
      concurrency: limits.concurrency,
      limiter: limits.rate ? { max: limits.rate.max, duration: limits.rate.windowMs } : undefined,
      lockDuration: this.workerSettings.lockDuration,
      stalledInterval: this.workerSettings.stalledInterval,
      maxStalledCount: this.workerSettings.maxStalledCount,
      settings: { backoffStrategy: (attempt: number, _type?: string, err?: Error) => this.retryDelay(attempt, err) },
      autorun: true,
    });
    worker.on('error', (err: Error) => this.log.warn({ target, err: err.message }, 'job worker error'));
    worker.on('failed', (job: Job | undefined, err: Error) => {
      if (!job || err instanceof DelayedError) return;
      this.log.info({ target, jobId: decodeBullId(job.id ?? ''), attempts: job.attemptsMade, err: err.message }, 'job run failed');
    });
    this.workers.set(target, worker);
  }

  /**
   * Limits change in place on the running worker: `concurrency` is a setter, and BullMQ reads
   * `worker.opts.limiter` on every fetch (passed to its moveToActive script). Closing and recreating the
   * worker instead would let the closing worker take a few more jobs under the old limits. The contract
   * test "applies limits changed after start" guards this against BullMQ upgrades.
   */
  private applyLimits(target: string): void {
    const worker = this.workers.get(target);
    if (!worker) return;
    const next = this.limits.resolve(target);
    worker.concurrency = next.concurrency;
    worker.opts.limiter = next.rate ? { max: next.rate.max, duration: next.rate.windowMs } : undefined;
  }

  private async closeWorker(worker: Worker): Promise<void> {
    try {
      await withTimeout(worker.close(), this.stopTimeoutMs, 'waiting for running jobs');
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'jobs still running at stop; BullMQ will retry them once their lock expires');
      await withTimeout(worker.close(true), this.commandTimeoutMs, 'force-close worker').catch(() => undefined);
    }
  }

  private async process(target: string, job: Job, token: string | undefined): Promise<void> {
    const handler = this.handlers.get(job.name);
    if (!handler) {
      if (!this.warnedPurposes.has(job.name)) {
        this.warnedPurposes.add(job.name);
        this.log.warn({ purpose: job.name }, 'jobs with no registered handler are parked (written by a newer version?)');
      }
      await this.bounded(job.moveToDelayed(Date.now() + this.unknownPurposeDelayMs, token), 'park job');
      throw new DelayedError();
    }
    try {
      await handler(this.recordOf(job, target, 'active', job.processedOn ?? Date.now()));
    } catch (err) {
      const decision = classifyHandlerError(err);
      const deferrals = job.attemptsStarted - job.attemptsMade - 1;
      if (decision.kind === 'retry_later' && deferrals < this.maxDeferrals) {
        await this.bounded(job.moveToDelayed(Date.now() + decision.delayMs, token), 'defer job');
        throw new DelayedError();
      }
      if (decision.kind === 'permanent') throw new UnrecoverableError(errorMessage(err));
      throw err instanceof Error ? err : new Error(errorMessage(err));
    }
  }

  private retryDelay(attempt: number, err: Error | undefined): number {
    const delay = backoffDelay(attempt, this.backoff);
    // A RetryLaterError past the deferral cap counts as an attempt but keeps its requested delay.
    const decision = classifyHandlerError(err);
    return decision.kind === 'retry_later' ? Math.max(delay, decision.delayMs) : delay;
  }

  // ---- targets ------------------------------------------------------------------------------------

  private scheduleDiscovery(): void {
    if (!this.running) return;
    this.discoveryTimer = setTimeout(() => {
      void this.discover().finally(() => this.scheduleDiscovery());
    }, this.discoveryIntervalMs);
  }

  private async discover(): Promise<void> {
    try {
      for (const t of await this.refreshTargets()) this.ensureWorker(t);
      if (Date.now() - this.lastSweepAt >= Math.max(this.discoveryIntervalMs, 60_000)) {
        this.lastSweepAt = Date.now();
        await this.sweepCompleted();
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'job target discovery failed; retrying');
    }
  }

  /** Known targets, refreshed from the Redis registry (SSCAN, bounded). */
  private async refreshTargets(): Promise<string[]> {
    let cursor = '0';
    for (let round = 0; round < MAX_TARGETS / SSCAN_COUNT; round++) {
      const [next, members] = await this.bounded(
        this.redis.sscan(this.registryKey, cursor, 'COUNT', SSCAN_COUNT),
        'list targets',
      );
      for (const m of members) this.knownTargets.add(m);
      cursor = next;
      if (cursor === '0') break;
    }
    return [...this.knownTargets];
  }

  private async sweepCompleted(): Promise<void> {
    for (const target of this.knownTargets) {
      await this.bounded(this.queue(target).clean(this.retentionMs, CLEAN_BATCH, 'completed'), 'prune completed jobs');
    }
  }

  private queue(target: string): Queue {
    let q = this.queues.get(target);
    if (!q) {
      q = new Queue(encodeBullId(target), { connection: this.redis, prefix: this.prefix });
      q.on('error', (err: Error) => this.log.warn({ target, err: err.message }, 'job queue error'));
      this.queues.set(target, q);
    }
    return q;
  }

  private jobKey(target: string, encodedId: string): string {
    return `${this.prefix}:${encodeBullId(target)}:${encodedId}`;
  }

  /** Finds the target holding a job id with one pipelined EXISTS per known target. */
  private async locate(id: string): Promise<string | undefined> {
    const targets = await this.refreshTargets();
    if (targets.length === 0) return undefined;
    const enc = encodeBullId(id);
    const pipeline = this.redis.pipeline();
    for (const t of targets) pipeline.exists(this.jobKey(t, enc));
    const results = (await this.bounded(pipeline.exec(), 'locate job')) ?? [];
    return targets.find((_, i) => results[i]?.[1] === 1);
  }

  /** Newest-first candidates of one BullMQ state of one target, strictly after the cursor. */
  private async candidates(target: string, state: JobState, type: BullType, want: number, cursor: ListCursor | undefined): Promise<Candidate[]> {
    const key = this.queue(target).keys[type];
    if (!key) return [];
    if (FINISHED_TYPES.has(type)) {
      // Finished sets are scored by finishedOn (= updatedAt): exact keyset paging.
      const out: Candidate[] = [];
      if (cursor) {
        const ties = await this.bounded(
          this.redis.zrangebyscore(key, cursor.updatedAt, cursor.updatedAt, 'LIMIT', 0, TIE_CAP),
          'list jobs',
        );
        for (const id of ties.reverse()) {
          if (out.length >= want) break;
          const c = { target, state, id, updatedAt: cursor.updatedAt };
          if (isAfterCursor(c, cursor)) out.push(c);
        }
      }
      const max = cursor ? `(${cursor.updatedAt}` : '+inf';
      const rows = await this.bounded(
        this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', 0, want),
        'list jobs',
      );
      for (let i = 0; i + 1 < rows.length && out.length < want; i += 2) {
        out.push({ target, state, id: rows[i] ?? '', updatedAt: Number(rows[i + 1]) });
      }
      return out;
    }
    // Lists and the delayed set are not ordered by updatedAt: read the newest entries (bounded) and sort.
    const ids = LIST_TYPES.has(type)
      ? await this.bounded(this.redis.lrange(key, 0, UNORDERED_SCAN_CAP - 1), 'list jobs')
      : await this.bounded(this.redis.zrevrange(key, 0, UNORDERED_SCAN_CAP - 1), 'list jobs');
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.jobKey(target, id), 'timestamp', 'processedOn', 'finishedOn');
    const stamps = (await this.bounded(pipeline.exec(), 'list jobs')) ?? [];
    const out: Candidate[] = [];
    ids.forEach((id, i) => {
      const values = stamps[i]?.[1];
      if (!Array.isArray(values) || values[0] == null) return;
      const updatedAt = Math.max(...values.map((v) => (v == null ? 0 : Number(v) || 0)));
      const c = { target, state, id, updatedAt };
      if (!cursor || isAfterCursor(c, cursor)) out.push(c);
    });
    return out.sort(compareNewestFirst).slice(0, want);
  }

  /**
   * A job with a state consistent with its fields: BullMQ changes both in one script, but reading them
   * takes two round trips, so the state is read before and after the hash (bounded re-reads).
   */
  private async snapshot(target: string, encodedId: string): Promise<JobRecord | undefined> {
    const queue = this.queue(target);
    let before = await this.bounded(queue.getJobState(encodedId), 'job state');
    let job: Job | undefined;
    for (let round = 0; round < 4; round++) {
      job = await this.bounded(queue.getJob(encodedId), 'load job');
      if (!job) return undefined;
      const after = await this.bounded(queue.getJobState(encodedId), 'job state');
      const settled = after === before;
      before = after;
      if (settled) break;
    }
    return job ? this.record(job, target, toJobState(before)) : undefined;
  }

  private async record(job: Job, target: string, state: JobState): Promise<JobRecord> {
    let runAt = job.processedOn ?? job.timestamp + (job.opts.delay ?? 0);
    if (state === 'delayed') {
      const score = await this.bounded(this.redis.zscore(this.queue(target).keys.delayed ?? '', job.id ?? ''), 'job run time');
      if (score !== null) runAt = Math.floor(Number(score) / DELAY_SCORE_FACTOR);
    } else if (state === 'waiting' && job.attemptsStarted === 0) {
      runAt = job.timestamp + (job.opts.delay ?? 0);
    }
    return this.recordOf(job, target, state, runAt);
  }

  private recordOf(job: Job, target: string, state: JobState, runAt: number): JobRecord {
    const data = job.data as JobData | undefined;
    return {
      id: decodeBullId(job.id ?? ''),
      purpose: job.name,
      target,
      payload: data?.payload ?? null,
      state,
      attempts: job.attemptsMade,
      maxAttempts: job.opts.attempts ?? 1,
      runAt,
      lastError: job.failedReason || null,
      createdAt: job.timestamp,
      updatedAt: Math.max(job.timestamp, job.processedOn ?? 0, job.finishedOn ?? 0),
    };
  }

  private toBullJob(spec: JobSpec, now: number): { name: string; data: JobData; opts: JobsOptions } {
    const runAt = spec.runAt ?? now;
    return {
      name: spec.purpose,
      data: { payload: spec.payload ?? null },
      opts: {
        jobId: encodeBullId(spec.id),
        delay: Math.max(0, runAt - now),
        attempts: Math.max(1, Math.floor(spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)),
        backoff: { type: BACKOFF_TYPE },
        removeOnComplete: { age: Math.ceil(this.retentionMs / 1000) },
        removeOnFail: false,
      },
    };
  }

  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return withTimeout(promise, this.commandTimeoutMs, what);
  }

  private assertOpen(): void {
    if (this.stopped) throw new Error('job queue is stopped');
  }
}

function toJobState(state: string): JobState {
  switch (state) {
    case 'delayed':
    case 'active':
    case 'completed':
    case 'failed':
      return state;
    default:
      // wait, prioritized, waiting-children (and `unknown` while a job moves between sets).
      return 'waiting';
  }
}

/** Reversible escape making any string a valid BullMQ custom job id or queue name. */
export function encodeBullId(id: string): string {
  if (id === '') return '%E';
  const escaped = id.replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
  return `${parseInt(escaped, 10)}` === escaped ? `%N${escaped}` : escaped;
}

export function decodeBullId(encoded: string): string {
  if (encoded === '%E') return '';
  const body = encoded.startsWith('%N') ? encoded.slice(2) : encoded;
  return body.replace(/%(25|3A)/g, (_, code: string) => (code === '25' ? '%' : ':'));
}

async function quit(redis: Redis, timeoutMs: number): Promise<void> {
  try {
    await withTimeout(redis.quit(), timeoutMs, 'redis quit');
  } catch {
    redis.disconnect();
  }
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

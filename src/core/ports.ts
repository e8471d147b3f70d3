// Interfaces the core and the use cases need from the outside world (store, jobs, clock, logger).
// Adapters implement them; nothing here does I/O.

/** Wall clock in epoch milliseconds; tests inject a fake one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Structured logger (pino-compatible subset). Bodies and secrets are redacted by the adapter. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that drops everything (the default where none is given, and in tests). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/** One member of an ordered index (a sorted set): ordered by score, then by member. */
export interface IndexEntry {
  member: string;
  score: number;
}

export interface IndexRangeOptions {
  /** Inclusive score bounds; default -Infinity .. +Infinity. */
  min?: number;
  max?: number;
  /** Highest score first. */
  reverse?: boolean;
  /** At most this many entries (required: every read is bounded). */
  limit: number;
  /** Resume strictly after this entry, in the direction of the scan (cursor paging). */
  after?: IndexEntry;
}

/** A write that `Store.commit` applies atomically together with the others of the same call. */
export type WriteOp =
  | { op: 'put'; key: string; value: unknown; ttlMs?: number }
  | { op: 'del'; key: string }
  | { op: 'index'; index: string; member: string; score: number }
  | { op: 'unindex'; index: string; member: string }
  /**
   * Optimistic concurrency: the stored document's top-level `rev` (a number) must equal `rev`, or the
   * key must be absent when `rev` is null. When any check fails, nothing of the commit is written and
   * `commit` rejects with `CommitConflictError`; the caller re-reads and decides again (bounded).
   */
  | { op: 'check'; key: string; rev: number | null };

/** A durable side effect to run later (CRM write, SMTP send, archive upload, timer action). */
export interface JobSpec {
  /** Deterministic id derived from the state change that caused it: enqueueing the same id twice is a no-op. */
  id: string;
  /** What the job does; a handler is registered per purpose. */
  purpose: string;
  /** The external system it talks to (e.g. `crm:zendesk`, `smtp:<accountId>`, `blob:s3`); limits apply per target. */
  target: string;
  payload: unknown;
  /** Do not run before this time (epoch ms). */
  runAt?: number;
  /** Attempts before the job is kept as failed (default 10). */
  maxAttempts?: number;
}

/**
 * Durable document store with the few atomic operations the product needs.
 * Values are JSON-serialisable. Every method may throw `StoreUnavailableError`.
 */
export interface Store {
  readonly kind: 'embedded' | 'redis';
  get<T>(key: string): Promise<T | undefined>;
  getMany<T>(keys: string[]): Promise<(T | undefined)[]>;
  put(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** Insert only when the key is absent (idempotency keys). Returns true when inserted. */
  putIfAbsent(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<boolean>;
  /**
   * Atomic read-modify-write. `fn` gets the current value and returns the new one
   * (or `undefined` to delete). Retried (bounded) on concurrent change; returns the stored value.
   */
  update<T>(key: string, fn: (current: T | undefined) => T | undefined, opts?: { ttlMs?: number }): Promise<T | undefined>;
  /** Atomic counter; creates the key at 0. `ttlMs` applies when the key is created. */
  incr(key: string, by?: number, opts?: { ttlMs?: number }): Promise<number>;
  indexAdd(index: string, member: string, score: number): Promise<void>;
  indexRemove(index: string, member: string): Promise<void>;
  indexScore(index: string, member: string): Promise<number | undefined>;
  indexRange(index: string, opts: IndexRangeOptions): Promise<IndexEntry[]>;
  indexCount(index: string, min?: number, max?: number): Promise<number>;
  /**
   * Applies every op atomically and records the jobs. Embedded: one SQLite transaction.
   * Redis: one Lua script for the checks and ops, then the jobs (idempotent by job id), so a crash in between
   * is repaired by replaying the same commit.
   */
  commit(ops: WriteOp[], jobs?: JobSpec[]): Promise<void>;
  /** Cheap reachability check for /health. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';

export interface JobRecord {
  id: string;
  purpose: string;
  target: string;
  payload: unknown;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Thrown by a job handler to be retried after a given delay without it counting as a failure (429, Retry-After). */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/** Thrown by a job handler when retrying cannot help (bad request, permanent refusal): the job fails at once. */
export class PermanentJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentJobError';
  }
}

export interface TargetLimits {
  /** Jobs of this target running at once in this process (p-queue). */
  concurrency: number;
  /** At most this many job starts per window across all instances (optional). */
  rate?: { max: number; windowMs: number };
}

export type JobHandler = (job: JobRecord) => Promise<void>;

/** Durable job queue: retried with backoff, delayed, deduplicated by id, limited per target. */
export interface JobQueue {
  enqueue(jobs: JobSpec[]): Promise<void>;
  register(purpose: string, handler: JobHandler): void;
  /** Limits for a target, or for every target starting with a prefix ending in `*` (e.g. `smtp:*`). */
  setTargetLimits(target: string, limits: TargetLimits): void;
  start(): Promise<void>;
  /** Stops taking jobs and waits (bounded) for running ones. */
  stop(): Promise<void>;
  get(id: string): Promise<JobRecord | undefined>;
  list(filter: { state?: JobState; limit: number; cursor?: string }): Promise<{ items: JobRecord[]; nextCursor: string | null }>;
  /** Puts a failed job back to waiting with its attempts reset. False when unknown or not failed. */
  retry(id: string): Promise<boolean>;
  /** Jobs per state, of every target or of one (`target`). */
  counts(target?: string): Promise<Record<JobState, number>>;
}

/** A `check` op of `Store.commit` failed: another writer changed the document first. Nothing was written. */
export class CommitConflictError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'CommitConflictError';
  }
}

/** The store cannot be reached (maps to HTTP 503). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Opaque blob storage for uploads and (later) the archive. */
export interface BlobStore {
  put(key: string, data: Uint8Array, meta?: { contentType?: string; ttlMs?: number }): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  delete(key: string): Promise<void>;
}

/** Encrypts secrets at rest (AES-256-GCM). Sealed values are opaque strings safe to store. */
export interface SecretBox {
  seal(plaintext: string): Promise<string>;
  open(sealed: string): Promise<string>;
}

/** One message fetched from a mailbox, handed to the ingest use case. */
export interface FetchedMessage {
  accountId: string;
  /** UIDVALIDITY of the folder when fetched (string: IMAP allows 32-bit unsigned, imapflow gives bigint). */
  uidValidity: string;
  uid: number;
  /** IMAP INTERNALDATE (arrival in the mailbox), epoch ms; null when the server gave none. */
  internalDate: number | null;
  /** Size announced by the server (RFC822.SIZE). */
  size: number;
  /** Raw bytes; empty when the message was over the size limit and not downloaded. */
  raw: Uint8Array;
  /** True when the message predates the account (an `importSince` import): no auto-reply, no auto-assignment. */
  imported: boolean;
  /** Set when the worker did not download the message (over the size limit). */
  tooLarge?: boolean;
}

/**
 * Where a mailbox worker delivers messages. `deliver` resolves once the message's effects are durably
 * stored (a session message or a quarantine entry), idempotently: delivering the same message twice
 * stores it once. A rejection means "not stored": the worker keeps its checkpoint and retries later.
 */
export interface MailboxSink {
  deliver(message: FetchedMessage): Promise<'stored' | 'duplicate' | 'quarantined'>;
}

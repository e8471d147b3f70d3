// IMAP mailbox worker (imapflow): reads one account's INBOX and hands each new message, in UID order, to a MailboxSink.
//
// Checkpoint. `mailbox:<accountId>:checkpoint` (src/core/keys.ts) holds `{ uidValidity, lastUid, lastInternalDate,
// baselineAt, baselineUid, import, recovery }`. It moves past a UID only after `sink.deliver` resolved for it and for
// every UID before it (the sink is idempotent, so a crash in between only redelivers). It is written once per batch
// (and every `checkpointIntervalMs` in a long one), not per message: one durable write covers many deliveries. A
// rejected delivery stops the batch (what resolved before it is still recorded); the worker backs off (connection
// kept, IDLE on) and retries from the checkpoint: a message is never skipped.
//
// Delivery window. With `deliveryWindow` > 1 (a sink that keeps call order, like IngestService) several deliveries are
// in flight at once, so the sink can commit them together; they still count in UID order only.
//
// Baseline. Only mail that arrives after the account was added is ingested, decided by UID, never by a Date header:
// the accounts code records `{ uidValidity, lastUid: UIDNEXT-1 }` when the account is saved (`captureBaseline`,
// `readMailboxBaseline`); a worker that finds no checkpoint records the same on its first connection.
//
// Import (`importSince`). UIDs at or below the baseline with INTERNALDATE since the date are delivered with
// `imported: true`, in batches of 50 between new-mail batches (new mail keeps flowing), with `{ done, total }` in the
// checkpoint: it resumes after a restart and shows in `status()`.
//
// Size. RFC822.SIZE is fetched first; a message over `maxMessageBytes` is delivered as `{ raw: empty, tooLarge: true }`
// without downloading it (the ingest side quarantines it). The other sources are downloaded with one UID FETCH per
// chunk (at most 25 messages and `fetchBatchBytes`), the next chunk while the current one is delivered.
//
// Marking. Once the checkpoint covering stored messages is written, they are marked per `markAs` (`\Seen`, a keyword,
// or nothing; INBOX is opened read-only then) with one UID STORE per batch. Mail is never deleted or moved. A failed
// STORE is logged, never fatal.
//
// New mail. imapflow's auto-IDLE starts only after ~15 s of silence (`autoIdleDelay`), so it is off
// (`disableAutoIdle`) and the worker re-enters IDLE itself right after each fetch. The server's `* n EXISTS` during
// IDLE (imapflow's `exists` event) wakes the loop, whose next command breaks IDLE (imapflow sends DONE first). A poll
// every `pollIntervalMs` (default 60 s) runs the same UID SEARCH as a fallback and keeps the connection alive.
//
// Reconnect. Any connection error ends the session; the worker reconnects with capped exponential backoff and jitter
// (1 s .. 60 s; authentication failures 5 s .. 5 min) forever, reporting `auth_failed`, `unreachable`, `tls_error`,
// `timeout` or `protocol_error` meanwhile. It never disables the account. Every network await has a timeout.
//
// UIDVALIDITY change. When INBOX's UIDVALIDITY differs from the checkpoint's, every stored UID is meaningless. The
// worker neither re-imports the mailbox nor trusts `lastUid`: it records a recovery `{ sinceMs, upToUid }` where
// `sinceMs` = last delivered INTERNALDATE (or the baseline time) minus `uidValidityMarginMs` (15 min) and `upToUid` =
// UIDNEXT-1 under the new UIDVALIDITY, and continues new mail after `upToUid`. The recovery then lists UIDs up to
// `upToUid` (UID SEARCH SINCE the day before, then the exact INTERNALDATE from FETCH) and redelivers those at or after
// `sinceMs`; the sink drops the ones it already has (Message-ID / content hash), so nothing arrived meanwhile is lost
// and nothing old is re-ingested. An unfinished import restarts under the new UIDs, selecting by INTERNALDATE before
// the baseline time. Tested by deleting Dovecot's `dovecot-uidlist` and index files while it is down (it then
// assigns UIDVALIDITY+1 and renumbers from 1).
import { silentLogger } from '../../core/ports.js';
import type { ConnectionOptions } from 'node:tls';
import { ImapFlow, type FetchMessageObject, type MailboxObject, type SearchObject } from 'imapflow';
import type { MailboxBaseline, ServerEndpoint } from '../../core/account.js';
import { mailboxCheckpointKey, type MailboxCheckpoint, type MailboxImportProgress } from '../../core/keys.js';
import { systemClock, type Clock, type FetchedMessage, type Logger, type MailboxSink, type Store } from '../../core/ports.js';

export type MailboxWorkerState =
  | 'connecting'
  | 'connected'
  | 'idle'
  | 'auth_failed'
  | 'unreachable'
  | 'tls_error'
  | 'timeout'
  | 'protocol_error'
  | 'stopped';

/** Failure states (what a connection error is classified as). */
export type MailboxFailureState = Extract<MailboxWorkerState, 'auth_failed' | 'unreachable' | 'tls_error' | 'timeout' | 'protocol_error'>;

export interface MailboxWorkerStatus {
  accountId: string;
  state: MailboxWorkerState;
  /** Messages known but not delivered yet: new mail, UIDVALIDITY recovery and import remainder. */
  backlog: number;
  lastError: string | null;
  /** When the last message was delivered (ISO). */
  lastMessageAt: string | null;
  /** Consecutive failed connection attempts (0 once connected). */
  failures: number;
  import?: { done: number; total: number; finished: boolean } | null;
}

export type MarkAs = { type: 'seen' } | { type: 'keyword'; keyword: string } | { type: 'none' };

/** How to reach and log in to a mailbox. */
export interface ImapConnectionOptions {
  imap: ServerEndpoint;
  username: string;
  password: string;
  /** TCP/TLS connect budget (default 10 s, at most 15 s). */
  connectTimeoutMs?: number;
  /** Wait for the server greeting (default 10 s, at most 15 s). */
  greetingTimeoutMs?: number;
  /** Socket inactivity before the connection counts as dead (default max(90 s, 2 × poll interval)). */
  socketTimeoutMs?: number;
  /** Bound on each IMAP command (default 60 s). */
  commandTimeoutMs?: number;
  /** Extra TLS options (e.g. a private CA). */
  tls?: ConnectionOptions;
  logger?: Logger;
}

export interface ImapMailboxWorkerOptions extends ImapConnectionOptions {
  accountId: string;
  markAs: MarkAs;
  store: Store;
  sink: MailboxSink;
  clock?: Clock;
  /** Fallback poll while idling (default 60 s). */
  pollIntervalMs?: number;
  /** Larger messages are delivered as `tooLarge` without their bytes (default 25 MiB). */
  maxMessageBytes?: number;
  /** Bound on one `sink.deliver` (default 120 s); a timeout counts as a failed delivery. */
  deliverTimeoutMs?: number;
  /** Bound on `stop()` (default 15 s). */
  stopTimeoutMs?: number;
  backoff?: { baseMs?: number; maxMs?: number; authBaseMs?: number; authMaxMs?: number };
  /** Import mail received since this date as `imported`; null cancels an unfinished import; undefined leaves it. */
  importSince?: Date | null;
  /** UIDs fetched per new-mail batch (default 100). */
  fetchBatchSize?: number;
  /** Bound on the sources downloaded by one UID FETCH (default 4 MiB; a larger message is fetched alone). */
  fetchBatchBytes?: number;
  /**
   * Deliveries handed to the sink before the first of them resolved (default 1). More than 1 only with a sink that
   * handles concurrent calls in call order and, after one fails, stores no later one of the same mailbox
   * (IngestService does): the sink can then commit them together.
   */
  deliveryWindow?: number;
  /** In a long batch, the checkpoint is also written when this long passed since the last write (default 1 s). */
  checkpointIntervalMs?: number;
  /** UIDs per import or recovery batch (default 50). */
  importBatchSize?: number;
  /** How far before the last delivered INTERNALDATE a UIDVALIDITY recovery re-lists (default 15 min). */
  uidValidityMarginMs?: number;
  /** Checked before every connection (the outbound host guard, R-REL-4); a throw counts as `unreachable`. */
  guardHost?: (host: string) => Promise<unknown>;
}

export type { MailboxBaseline };

const MiB = 1024 * 1024;
const EMPTY = new Uint8Array(0);
const FETCH_FAILURES_BEFORE_SKIP = 3;
/** Sources per UID FETCH: small enough that the next chunk downloads while one is delivered. */
const FETCH_CHUNK_MESSAGES = 25;


// ---------------------------------------------------------------------------------------------------------------
// Small pure helpers (exported for tests)

/** An operation did not finish within its bound. */
export class OperationTimeoutError extends Error {
  readonly code = 'ETIMEOUT';
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'OperationTimeoutError';
  }
}

/** The sink (or the checkpoint write after it) failed: back off and retry from the checkpoint. */
class DeliveryFailure extends Error {
  constructor(
    readonly uid: number,
    cause: unknown,
  ) {
    super(`delivery of UID ${uid} failed: ${errorText(cause)}`, { cause });
    this.name = 'DeliveryFailure';
  }
}

/** The checkpoint could not be read or written: retry in the session (the connection is fine). */
class StoreFailure extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${errorText(cause)}`, { cause });
    this.name = 'StoreFailure';
  }
}

/** `stop()` was called: leave the session quietly. */
class StopRequested extends Error {
  constructor() {
    super('stop requested');
    this.name = 'StopRequested';
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { responseText?: string; code?: string };
    const text = e.responseText ? `${e.message} (${e.responseText})` : e.message;
    return (e.code && !text.includes(e.code) ? `${e.code}: ${text}` : text).slice(0, 500);
  }
  return String(err).slice(0, 500);
}

/** Races a promise with a timer; `onTimeout` runs when the timer wins (e.g. to close the connection). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new OperationTimeoutError(what, ms));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|ERR_OSSL_|HOSTNAME_MISMATCH|ClosedAfterConnectTLS|STARTTLS_INJECTION|UPGRADE_)/;
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'StateLogout',
  'ProxyError',
  'EPROXY',
]);
const TIMEOUT_CODES = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'ETIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'LockTimeout']);

/** Maps an imapflow / socket / TLS error to the state shown in status and /health. */
export function classifyImapError(err: unknown): MailboxFailureState {
  if (typeof err !== 'object' || err === null) return 'protocol_error';
  const e = err as { authenticationFailed?: boolean; code?: unknown; message?: unknown; serverResponseCode?: unknown };
  if (e.authenticationFailed === true || e.serverResponseCode === 'AUTHENTICATIONFAILED') return 'auth_failed';
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (code === 'UPGRADE_TIMEOUT') return 'tls_error';
  if (TIMEOUT_CODES.has(code) || err instanceof OperationTimeoutError) return 'timeout';
  if (TLS_CODES.test(code) || /\b(tls|ssl|certificate|STARTTLS)\b/i.test(message)) return 'tls_error';
  if (UNREACHABLE_CODES.has(code) || ((e as { host?: unknown }).host !== undefined && code.startsWith('E'))) return 'unreachable';
  if (/host .* (not allowed|may not)|private address|blocked/i.test(message)) return 'unreachable';
  return 'protocol_error';
}

/** Capped exponential backoff with jitter: attempt 1 → [base/2, base], doubling up to `maxMs`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.max(1, Math.round(exp / 2 + (random() * exp) / 2));
}

/** A UID set in IMAP syntax, runs compressed: [1,2,3,7] → "1:3,7". */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] as number;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) end = sorted[++i] as number;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

function toMs(value: Date | string | undefined): number | null {
  if (value === undefined) return null;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

const DAY_MS = 24 * 3600 * 1000;

// ---------------------------------------------------------------------------------------------------------------
// Baseline helpers for the accounts code

/** The checkpoint of a mailbox first seen with this UIDVALIDITY/UIDNEXT: only later UIDs are new mail. */
export function initialCheckpoint(baseline: { uidValidity: string | bigint | number; uidNext: number }, opts: { now: number; importSince?: Date | null }): MailboxCheckpoint {
  const lastUid = Math.max(0, Math.floor(baseline.uidNext) - 1);
  const cp: MailboxCheckpoint = {
    uidValidity: String(baseline.uidValidity),
    lastUid,
    lastInternalDate: null,
    baselineAt: opts.now,
    baselineUid: lastUid,
    import: null,
    recovery: null,
    updatedAt: opts.now,
  };
  if (opts.importSince) cp.import = newImport(opts.importSince.getTime(), lastUid, null);
  return cp;
}

function newImport(since: number, upToUid: number, beforeMs: number | null): MailboxImportProgress {
  return { since, upToUid, cursorUid: 0, done: 0, total: null, finished: upToUid < 1, beforeMs };
}

/**
 * Records the baseline of an account when it is saved (so "new mail" means after the save, not after the first
 * connection). Never overwrites an existing checkpoint; returns the one in effect.
 */
export async function captureBaseline(
  store: Store,
  accountId: string,
  baseline: MailboxBaseline,
  opts: { clock?: Clock; importSince?: Date | null } = {},
): Promise<MailboxCheckpoint> {
  const key = mailboxCheckpointKey(accountId);
  const cp = initialCheckpoint(baseline, { now: (opts.clock ?? systemClock).now(), importSince: opts.importSince ?? null });
  if (await store.putIfAbsent(key, cp)) return cp;
  return (await store.get<MailboxCheckpoint>(key)) ?? cp;
}

/** An imapflow client for a mailbox (TLS mode, bounded timeouts, no auto-IDLE), with an 'error' listener. */
export function createClient(o: ImapConnectionOptions, socketTimeoutMs: number): ImapFlow {
  const starttls = o.imap.starttls;
  const client = new ImapFlow({
    host: o.imap.host,
    port: o.imap.port,
    secure: o.imap.secure,
    doSTARTTLS: o.imap.secure ? undefined : starttls === 'required' ? true : starttls === 'off' ? false : undefined,
    auth: { user: o.username, pass: o.password },
    logger: false,
    connectionTimeout: Math.min(o.connectTimeoutMs ?? 10_000, 15_000),
    greetingTimeout: Math.min(o.greetingTimeoutMs ?? 10_000, 15_000),
    socketTimeout: socketTimeoutMs,
    disableAutoIdle: true,
    ...(o.tls ? { tls: o.tls } : {}),
  });
  // imapflow emits at most one 'error' per connection; without a listener it would throw.
  client.on('error', () => undefined);
  return client;
}

function connectBudget(o: ImapConnectionOptions): number {
  return Math.min(o.connectTimeoutMs ?? 10_000, 15_000) + Math.min(o.greetingTimeoutMs ?? 10_000, 15_000) + (o.commandTimeoutMs ?? 60_000);
}

/** Logs in, opens INBOX read-only and returns its UIDVALIDITY and UIDNEXT (the baseline when an account is saved). */
export async function readMailboxBaseline(conn: ImapConnectionOptions): Promise<MailboxBaseline> {
  const client = createClient(conn, conn.socketTimeoutMs ?? 30_000);
  const commandMs = conn.commandTimeoutMs ?? 15_000;
  const abort = () => client.close();
  try {
    await withTimeout(client.connect(), connectBudget({ ...conn, commandTimeoutMs: commandMs }), 'IMAP connect', abort);
    const mailbox = await withTimeout(client.mailboxOpen('INBOX', { readOnly: true }), commandMs, 'EXAMINE INBOX', abort);
    let uidNext = mailbox.uidNext;
    if (!Number.isSafeInteger(uidNext) || uidNext < 1) {
      const last = mailbox.exists > 0 ? await withTimeout(client.fetchOne('*', { uid: true }), commandMs, 'FETCH *', abort) : false;
      uidNext = last ? last.uid + 1 : 1;
    }
    return { uidValidity: String(mailbox.uidValidity), uidNext };
  } finally {
    if (!client.isClosed) await withTimeout(client.logout(), 3_000, 'LOGOUT').catch(() => client.close());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The worker

/** Resolves waiters when something happened (new mail, poll, close, stop). */
class Signal {
  private waiter: (() => void) | null = null;
  private pending = false;
  notify(): void {
    this.pending = true;
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  /** Resolves on the next notify (or at once if one happened since the last wait), or after `ms`. */
  wait(ms?: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.waiter = () => {
        clearTimeout(timer);
        this.pending = false;
        resolve();
      };
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.waiter = null;
          resolve();
        }, ms);
      }
    });
  }
}

interface SessionState {
  client: ImapFlow;
  closed: boolean;
  error: unknown;
  /** Something may have changed in INBOX since the last sync. */
  dirty: boolean;
  signal: Signal;
  /** Set while the loop waits in IDLE. */
  idling: boolean;
  idleStartedAt: number;
  /** When the server last announced new mail (EXISTS) not yet followed by a sync; for the latency log. */
  existsAt: number | null;
  /** The EXISTS time the running sync answers. */
  syncExistsAt: number | null;
}

type DeliveryMode = 'new' | 'import' | 'recovery';

/** One UID of a batch: move past it (`skip`), deliver it without its bytes (`tooLarge`), or download and deliver it. */
interface PlannedItem {
  uid: number;
  internalDate: number | null;
  size: number;
  action: 'skip' | 'tooLarge' | 'fetch';
  /** For a skip: whether it counts as handled (import progress, last INTERNALDATE of a recovery). */
  counted: boolean;
}

/** Consecutive items of a batch whose sources are fetched with one UID FETCH. */
interface FetchChunk {
  items: PlannedItem[];
  /** Announced bytes of the sources to fetch. */
  bytes: number;
}

/** The sources of a chunk that arrived (`null`: answered without one), and the error if the FETCH failed. */
interface ChunkSources {
  got: Map<number, Uint8Array | null>;
  error: { err: unknown } | null;
}

type DeliveryResult = { outcome: 'stored' | 'duplicate' | 'quarantined'; size: number; tooLarge: boolean } | { err: unknown };

/** An item in the delivery window: a delivery in flight, or a UID to move past once those before it resolved. */
interface Slot {
  item: PlannedItem;
  counted: boolean;
  delivery: Promise<DeliveryResult> | null;
}

/** Progress of the running batch: the checkpoint covering every resolved delivery, not yet written. */
interface BatchRun {
  mode: DeliveryMode;
  working: MailboxCheckpoint;
  /** Last UID included in `working`. */
  lastUid: number | null;
  flushedAt: number;
  /** Delivered, not yet covered by a written checkpoint. */
  delivered: number[];
  /** Delivered and covered by a written checkpoint: marked at the end of the batch. */
  durable: number[];
}

export class ImapMailboxWorker {
  readonly accountId: string;
  private readonly o: ImapMailboxWorkerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly maxMessageBytes: number;
  private readonly commandTimeoutMs: number;
  private readonly deliverTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly socketTimeoutMs: number;
  private readonly backoff: { baseMs: number; maxMs: number; authBaseMs: number; authMaxMs: number };
  private readonly fetchBatchSize: number;
  private readonly fetchBatchBytes: number;
  private readonly deliveryWindow: number;
  private readonly checkpointIntervalMs: number;
  private readonly importBatchSize: number;
  private readonly marginMs: number;

  private loop: Promise<void> | null = null;
  private stopping = false;
  private session: SessionState | null = null;
  /** Wakes the reconnect backoff sleep on stop. */
  private stopSignal = new Signal();
  /** A loop that outlived `stop()`'s bound (a hung delivery); a new start waits for it. */
  private draining: Promise<void> | null = null;
  private deliveriesInFlight = 0;

  private checkpoint: MailboxCheckpoint | null = null;
  private state: MailboxWorkerState = 'stopped';
  private lastError: string | null = null;
  private lastMessageAt: number | null = null;
  private failures = 0;
  private backlogNew = 0;
  private backlogRecovery = 0;
  /** Source fetches that broke the connection, per UID (a poison message is delivered as tooLarge after 3). */
  private readonly fetchFailures = new Map<string, number>();

  constructor(options: ImapMailboxWorkerOptions) {
    this.o = options;
    this.accountId = options.accountId;
    this.clock = options.clock ?? systemClock;
    this.log = (options.logger ?? silentLogger).child({ component: 'mailbox-worker', accountId: options.accountId });
    this.pollIntervalMs = options.pollIntervalMs ?? 60_000;
    this.maxMessageBytes = options.maxMessageBytes ?? 25 * MiB;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 60_000;
    this.deliverTimeoutMs = options.deliverTimeoutMs ?? 120_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
    this.socketTimeoutMs = options.socketTimeoutMs ?? Math.max(90_000, 2 * this.pollIntervalMs);
    this.backoff = {
      baseMs: options.backoff?.baseMs ?? 1_000,
      maxMs: options.backoff?.maxMs ?? 60_000,
      authBaseMs: options.backoff?.authBaseMs ?? 5_000,
      authMaxMs: options.backoff?.authMaxMs ?? 300_000,
    };
    this.fetchBatchSize = options.fetchBatchSize ?? 100;
    this.fetchBatchBytes = options.fetchBatchBytes ?? 4 * MiB;
    this.deliveryWindow = options.deliveryWindow ?? 1;
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? 1_000;
    this.importBatchSize = options.importBatchSize ?? 50;
    this.marginMs = options.uidValidityMarginMs ?? 15 * 60_000;
    for (const [name, v] of Object.entries({
      pollIntervalMs: this.pollIntervalMs,
      maxMessageBytes: this.maxMessageBytes,
      fetchBatchSize: this.fetchBatchSize,
      fetchBatchBytes: this.fetchBatchBytes,
      deliveryWindow: this.deliveryWindow,
      checkpointIntervalMs: this.checkpointIntervalMs,
      importBatchSize: this.importBatchSize,
    })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
  }

  /** Starts the read loop in the background (connects, then IDLE); resolves at once. */
  async start(): Promise<void> {
    if (this.loop) return;
    if (this.draining) await this.draining;
    if (this.loop) return;
    this.stopping = false;
    this.stopSignal = new Signal();
    this.state = 'connecting';
    this.loop = this.run().catch((err: unknown) => {
      this.log.error({ err: errorText(err) }, 'mailbox worker loop crashed');
    });
  }

  /** Stops (bounded): lets an in-flight delivery finish, logs out, closes the connection. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (!loop) {
      this.state = 'stopped';
      return;
    }
    this.stopping = true;
    this.stopSignal.notify();
    const s = this.session;
    if (s) {
      s.signal.notify();
      // Unblock a network wait at once; a delivery in flight is allowed to finish (the loop stops after it).
      if (this.deliveriesInFlight === 0) s.client.close();
    }
    let finished = false;
    await withTimeout(
      loop.then(() => {
        finished = true;
      }),
      this.stopTimeoutMs,
      'mailbox worker stop',
    ).catch(() => undefined);
    if (!finished) {
      this.log.warn({ timeoutMs: this.stopTimeoutMs }, 'mailbox worker did not stop in time; closing the connection');
      this.session?.client.close();
      this.draining = loop.finally(() => {
        this.draining = null;
      });
    }
    this.loop = null;
    this.state = 'stopped';
  }

  status(): MailboxWorkerStatus {
    const imp = this.checkpoint?.import;
    const importRemaining = imp && !imp.finished && imp.total !== null ? Math.max(0, imp.total - imp.done) : 0;
    const out: MailboxWorkerStatus = {
      accountId: this.accountId,
      state: this.state,
      backlog: this.backlogNew + this.backlogRecovery + importRemaining,
      lastError: this.lastError,
      lastMessageAt: this.lastMessageAt === null ? null : new Date(this.lastMessageAt).toISOString(),
      failures: this.failures,
    };
    if (imp) out.import = { done: imp.done, total: imp.total ?? 0, finished: imp.finished };
    return out;
  }

  // ---- connection loop ----

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.state = 'connecting';
      let failure: MailboxFailureState;
      try {
        await this.runSession();
        if (this.stopping) break;
        failure = 'unreachable';
        this.lastError = 'connection closed by the server';
      } catch (err) {
        if (this.stopping || err instanceof StopRequested) break;
        failure = classifyImapError(err);
        this.lastError = errorText(err);
      }
      this.failures += 1;
      this.state = failure;
      const auth = failure === 'auth_failed';
      const delay = auth
        ? backoffDelay(this.failures, this.backoff.authBaseMs, this.backoff.authMaxMs)
        : backoffDelay(this.failures, this.backoff.baseMs, this.backoff.maxMs);
      this.log.warn({ state: failure, error: this.lastError, attempt: this.failures, retryInMs: delay }, 'mailbox connection failed; retrying');
      await this.stopSignal.wait(delay);
    }
    this.state = 'stopped';
  }

  private async runSession(): Promise<void> {
    if (this.o.guardHost) await this.o.guardHost(this.o.imap.host);
    const client = createClient(this.o, this.socketTimeoutMs);
    const s: SessionState = {
      client,
      closed: false,
      error: null,
      dirty: true,
      signal: new Signal(),
      idling: false,
      idleStartedAt: 0,
      existsAt: null,
      syncExistsAt: null,
    };
    this.session = s;
    client.on('error', (err: Error) => {
      s.error = err;
      s.signal.notify();
    });
    client.on('close', () => {
      s.closed = true;
      s.signal.notify();
    });
    client.on('exists', () => {
      s.existsAt ??= performance.now();
      s.dirty = true;
      s.signal.notify();
    });
    // A re-SELECT that found a new UIDVALIDITY.
    client.on('mailboxOpen', () => {
      s.dirty = true;
      s.signal.notify();
    });
    let poll: NodeJS.Timeout | undefined;
    try {
      await this.net(s, client.connect(), 'connect', connectBudget({ ...this.o, commandTimeoutMs: this.commandTimeoutMs }));
      if (this.stopping) throw new StopRequested();
      const mailbox = await this.net(s, client.mailboxOpen('INBOX', { readOnly: this.o.markAs.type === 'none' }), 'SELECT INBOX');
      this.failures = 0;
      this.lastError = null;
      this.state = 'connected';
      this.log.info({ uidValidity: String(mailbox.uidValidity), uidNext: mailbox.uidNext, exists: mailbox.exists }, 'mailbox connected');
      for (let attempt = 1; ; attempt++) {
        try {
          await this.loadCheckpoint(s, mailbox);
          break;
        } catch (err) {
          if (this.stopping || s.closed || client.isClosed || attempt >= 100_000) throw err;
          const delay = backoffDelay(attempt, this.backoff.baseMs, this.backoff.maxMs);
          this.lastError = `cannot read the checkpoint: ${errorText(err)}`;
          this.log.warn({ error: this.lastError, retryInMs: delay }, 'checkpoint unavailable; retrying');
          this.enterIdle(s);
          await this.sleepInSession(s, delay);
        }
      }
      poll = setInterval(() => {
        s.dirty = true;
        s.signal.notify();
      }, this.pollIntervalMs);
      poll.unref();
      let deliveryFailures = 0;
      while (!this.stopping) {
        if (s.closed) throw s.error ?? Object.assign(new Error('connection closed by the server'), { code: 'EConnectionClosed' });
        s.dirty = false;
        s.syncExistsAt = s.existsAt;
        s.existsAt = null;
        this.state = 'connected';
        let more: boolean;
        try {
          more = await this.syncOnce(s);
          if (deliveryFailures > 0) this.lastError = null;
          deliveryFailures = 0;
        } catch (err) {
          if (!(err instanceof DeliveryFailure || err instanceof StoreFailure) || this.stopping) throw err;
          deliveryFailures += 1;
          const delay = backoffDelay(deliveryFailures, this.backoff.baseMs, this.backoff.maxMs);
          this.lastError = err.message;
          const uid = err instanceof DeliveryFailure ? err.uid : undefined;
          this.log.warn({ uid, error: err.message, attempt: deliveryFailures, retryInMs: delay }, 'delivery failed; retrying from the checkpoint');
          this.enterIdle(s);
          await this.sleepInSession(s, delay);
          continue;
        }
        if (more || s.dirty) continue;
        if (s.closed) continue;
        // Re-enter IDLE right away: new mail is announced by the server within milliseconds.
        this.enterIdle(s);
        this.state = 'idle';
        await s.signal.wait();
        s.idling = false;
      }
    } finally {
      clearInterval(poll);
      this.session = null;
      if (!client.isClosed) await withTimeout(client.logout(), 3_000, 'LOGOUT').catch(() => client.close());
    }
  }

  /** Starts IDLE (imapflow breaks it before the next command). If the server ends it on its own, the loop wakes up. */
  private enterIdle(s: SessionState): void {
    s.idling = true;
    s.idleStartedAt = Date.now();
    s.client
      .idle()
      .then(() => {
        // Ended without our command (e.g. imapflow's keepalive NOOP): sync and re-enter, but never spin.
        if (s.idling && !s.closed && Date.now() - s.idleStartedAt > 1_000) {
          s.dirty = true;
          s.signal.notify();
        }
      })
      .catch((err: unknown) => this.log.debug({ err: errorText(err) }, 'IDLE ended with an error'));
  }

  /** Waits `ms` in the session (IDLE on), returning early on stop or close only. */
  private async sleepInSession(s: SessionState, ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (let i = 0; i < 10_000 && !this.stopping && !s.closed; i++) {
      const left = until - Date.now();
      if (left <= 0) break;
      await s.signal.wait(left);
    }
    s.idling = false;
  }

  /** Bounds a network await; a timeout closes the connection (its state is unknown) and fails the session. */
  private net<T>(s: SessionState, p: Promise<T>, what: string, ms = this.commandTimeoutMs): Promise<T> {
    return withTimeout(p, ms, what, () => s.client.close());
  }

  // ---- checkpoint ----

  private key(): string {
    return mailboxCheckpointKey(this.accountId);
  }

  private async saveCheckpoint(cp: MailboxCheckpoint): Promise<void> {
    cp.updatedAt = this.clock.now();
    try {
      await this.o.store.put(this.key(), cp);
    } catch (err) {
      throw new StoreFailure('cannot write the checkpoint', err);
    }
    this.checkpoint = cp;
  }

  private async loadCheckpoint(s: SessionState, mailbox: MailboxObject): Promise<void> {
    const now = this.clock.now();
    let cp = await this.o.store.get<MailboxCheckpoint>(this.key());
    let changed = false;
    if (!cp) {
      const uidNext = await this.uidNextOf(s, mailbox);
      const fresh = initialCheckpoint({ uidValidity: mailbox.uidValidity, uidNext }, { now, importSince: this.o.importSince ?? null });
      if (await this.o.store.putIfAbsent(this.key(), fresh)) {
        cp = fresh;
        this.log.info({ uidValidity: fresh.uidValidity, lastUid: fresh.lastUid }, 'mailbox baseline recorded on first connection');
      } else {
        cp = (await this.o.store.get<MailboxCheckpoint>(this.key())) ?? fresh;
      }
    }
    cp = { ...cp };
    // A baseline written by the accounts code has only { uidValidity, lastUid }.
    if (cp.baselineAt === undefined) {
      cp.baselineAt = now;
      changed = true;
    }
    if (cp.baselineUid === undefined) {
      cp.baselineUid = cp.lastUid;
      changed = true;
    }
    if (cp.lastInternalDate === undefined) cp.lastInternalDate = null;
    const since = this.o.importSince;
    if (since === null && cp.import && !cp.import.finished) {
      this.log.info({}, 'import cancelled (importSince cleared)');
      cp.import = null;
      changed = true;
    } else if (since instanceof Date && Number.isFinite(since.getTime()) && (!cp.import || cp.import.since !== since.getTime())) {
      const beforeMs = cp.uidValidityChangedAt !== undefined ? (cp.baselineAt ?? now) : null;
      cp.import = newImport(since.getTime(), cp.baselineUid ?? cp.lastUid, beforeMs);
      this.log.info({ since: since.toISOString(), upToUid: cp.import.upToUid }, 'import of older mail scheduled');
      changed = true;
    }
    this.checkpoint = cp;
    if (changed) await this.saveCheckpoint(cp);
  }

  private async uidNextOf(s: SessionState, mailbox: MailboxObject): Promise<number> {
    if (Number.isSafeInteger(mailbox.uidNext) && mailbox.uidNext >= 1) return mailbox.uidNext;
    if (mailbox.exists < 1) return 1;
    const last = await this.net(s, s.client.fetchOne('*', { uid: true }), 'FETCH *');
    return last ? last.uid + 1 : 1;
  }

  /** INBOX's UIDVALIDITY is not the checkpoint's: schedule the recovery described in the file header. */
  private async beginRecovery(s: SessionState, mailbox: MailboxObject): Promise<void> {
    const old = this.checkpoint as MailboxCheckpoint;
    const now = this.clock.now();
    const uidValidity = String(mailbox.uidValidity);
    const upToUid = (await this.uidNextOf(s, mailbox)) - 1;
    const anchor = old.lastInternalDate ?? old.baselineAt ?? now;
    let sinceMs = anchor - this.marginMs;
    if (old.recovery) sinceMs = Math.min(sinceMs, old.recovery.sinceMs);
    const baselineAt = old.baselineAt ?? now;
    const cp: MailboxCheckpoint = {
      ...old,
      uidValidity,
      lastUid: upToUid,
      baselineUid: upToUid,
      uidValidityChangedAt: now,
      recovery: { fromUidValidity: old.uidValidity, sinceMs, upToUid, cursorUid: 0, startedAt: now },
      import: old.import && !old.import.finished ? newImport(old.import.since, upToUid, baselineAt) : (old.import ?? null),
    };
    this.log.warn(
      { fromUidValidity: old.uidValidity, toUidValidity: uidValidity, since: new Date(sinceMs).toISOString(), upToUid },
      'UIDVALIDITY changed: re-listing recent mail (the sink drops what it already has)',
    );
    await this.saveCheckpoint(cp);
  }

  // ---- one pass: new mail, then recovery, then import ----

  /** Processes at most one batch of each kind; true when more work is waiting. */
  private async syncOnce(s: SessionState): Promise<boolean> {
    const mailbox = s.client.mailbox;
    if (!mailbox) throw Object.assign(new Error('INBOX is not selected'), { code: 'NoMailboxSelected' });
    if (!this.checkpoint) throw new Error('checkpoint not loaded');
    if (this.checkpoint.uidValidity !== String(mailbox.uidValidity)) await this.beginRecovery(s, mailbox);
    let more = false;

    const last = this.checkpoint.lastUid;
    const fresh = await this.search(s, { uid: `${last + 1}:*` }, (u) => u > last);
    this.backlogNew = fresh.length;
    if (fresh.length > 0) {
      const batch = fresh.slice(0, this.fetchBatchSize);
      await this.deliverBatch(s, batch, 'new');
      more = more || fresh.length > batch.length;
    }

    if (this.checkpoint.recovery) more = (await this.recoveryStep(s)) || more;
    const imp = this.checkpoint.import;
    if (imp && !imp.finished) more = (await this.importStep(s)) || more;
    return more;
  }

  private async search(s: SessionState, query: SearchObject, keep: (uid: number) => boolean): Promise<number[]> {
    const res = await this.net(s, s.client.search(query, { uid: true }), 'UID SEARCH');
    if (!Array.isArray(res)) throw Object.assign(new Error('UID SEARCH failed'), { code: 'SearchFailed' });
    return [...new Set(res.filter((u) => Number.isSafeInteger(u) && keep(u)))].sort((a, b) => a - b);
  }

  private async recoveryStep(s: SessionState): Promise<boolean> {
    const rec = this.checkpoint?.recovery;
    if (!rec) return false;
    const done = async () => {
      this.backlogRecovery = 0;
      this.log.info({ fromUidValidity: rec.fromUidValidity }, 'UIDVALIDITY recovery finished');
      await this.saveCheckpoint({ ...(this.checkpoint as MailboxCheckpoint), recovery: null });
      return false;
    };
    if (rec.cursorUid >= rec.upToUid) return done();
    const uids = await this.search(
      s,
      // SINCE compares calendar days (in the server's zone): ask from the day before, filter exactly after FETCH.
      { uid: `${rec.cursorUid + 1}:${rec.upToUid}`, since: new Date(rec.sinceMs - DAY_MS) },
      (u) => u > rec.cursorUid && u <= rec.upToUid,
    );
    this.backlogRecovery = uids.length;
    if (uids.length === 0) return done();
    const batch = uids.slice(0, this.importBatchSize);
    await this.deliverBatch(s, batch, 'recovery');
    if (uids.length === batch.length) return done();
    return true;
  }

  private async importStep(s: SessionState): Promise<boolean> {
    const imp = this.checkpoint?.import;
    if (!imp || imp.finished) return false;
    const finish = async () => {
      const cp = this.checkpoint as MailboxCheckpoint;
      const cur = cp.import as MailboxImportProgress;
      await this.saveCheckpoint({ ...cp, import: { ...cur, finished: true, total: cur.total ?? cur.done } });
      this.log.info({ done: cur.done }, 'import of older mail finished');
      return false;
    };
    if (imp.cursorUid >= imp.upToUid) return finish();
    const uids = await this.search(
      s,
      { uid: `${imp.cursorUid + 1}:${imp.upToUid}`, since: new Date(imp.since - DAY_MS) },
      (u) => u > imp.cursorUid && u <= imp.upToUid,
    );
    if (imp.total === null) {
      const cp = this.checkpoint as MailboxCheckpoint;
      await this.saveCheckpoint({ ...cp, import: { ...imp, total: imp.done + uids.length } });
    }
    if (uids.length === 0) return finish();
    const batch = uids.slice(0, this.importBatchSize);
    await this.deliverBatch(s, batch, 'import');
    if (uids.length === batch.length) return finish();
    return true;
  }

  // ---- delivery of one batch ----
  //
  // One UID FETCH of sizes and dates, then the sources in chunks (one UID FETCH each, at most FETCH_CHUNK_MESSAGES
  // and `fetchBatchBytes`), the next chunk downloading while one is delivered. Deliveries go to the sink in UID order,
  // up to `deliveryWindow` at once, and count in that order only. The checkpoint is written once per batch (and every
  // `checkpointIntervalMs` in a long one), only covering deliveries that resolved, with every UID before them; the
  // messages it covers are then marked with one UID STORE. A batch that stops early (failed delivery, lost
  // connection, stop) still records and marks what was delivered before the failure.

  private async deliverBatch(s: SessionState, uids: number[], mode: DeliveryMode): Promise<void> {
    const metas = await this.net(s, s.client.fetchAll(uidSet(uids), { uid: true, internalDate: true, size: true }, { uid: true }), 'UID FETCH (metadata)');
    const wanted = new Set(uids);
    const byUid = new Map<number, FetchMessageObject>();
    for (const m of metas) if (wanted.has(m.uid)) byUid.set(m.uid, m);
    const cp = this.checkpoint as MailboxCheckpoint;
    const items = uids.map((uid) => this.planItem(cp, mode, uid, byUid.get(uid)));
    const run: BatchRun = { mode, working: cp, lastUid: null, flushedAt: performance.now(), delivered: [], durable: [] };
    const chunks = [...this.chunks(items)];
    let failure: { err: unknown } | null = null;
    try {
      let next = this.fetchSources(s, chunks[0]);
      for (let i = 0; i < chunks.length; i++) {
        const sources = await next;
        // The next chunk downloads while this one is delivered.
        next = this.fetchSources(s, chunks[i + 1]);
        await this.deliverChunk(s, run, chunks[i] as FetchChunk, sources);
      }
    } catch (err) {
      failure = { err };
    }
    try {
      await this.saveProgress(run);
    } catch (err) {
      if (!failure) failure = { err };
      else this.log.warn({ error: errorText(err) }, 'cannot record the progress of a stopped batch; it is delivered again');
    }
    await this.mark(s, run.durable.splice(0));
    if (failure) throw failure.err;
  }

  /** What to do with one UID of a batch, decided from its size and INTERNALDATE. */
  private planItem(cp: MailboxCheckpoint, mode: DeliveryMode, uid: number, meta: FetchMessageObject | undefined): PlannedItem {
    // Gone between SEARCH and FETCH (expunged): nothing to deliver, move past it.
    if (!meta) return { uid, internalDate: null, size: 0, action: 'skip', counted: false };
    const internalDate = toMs(meta.internalDate);
    const size = meta.size ?? 0;
    // Exact INTERNALDATE filters of recovery and of an import after a UIDVALIDITY change (SEARCH SINCE is per day).
    if (mode === 'recovery' && cp.recovery && internalDate !== null && internalDate < cp.recovery.sinceMs) {
      return { uid, internalDate, size, action: 'skip', counted: false };
    }
    if (mode === 'import' && cp.import) {
      const { since, beforeMs } = cp.import;
      if (internalDate !== null && (internalDate < since || (beforeMs != null && internalDate >= beforeMs))) {
        return { uid, internalDate, size, action: 'skip', counted: true };
      }
    }
    const tooLarge = size > this.maxMessageBytes || (this.fetchFailures.get(`${cp.uidValidity}:${uid}`) ?? 0) >= FETCH_FAILURES_BEFORE_SKIP;
    return { uid, internalDate, size, action: tooLarge ? 'tooLarge' : 'fetch', counted: true };
  }

  /** Consecutive runs of items whose sources are fetched together (a message over the byte bound alone). */
  private *chunks(items: PlannedItem[]): Generator<FetchChunk> {
    let cur: PlannedItem[] = [];
    let count = 0;
    let bytes = 0;
    for (const item of items) {
      if (item.action === 'fetch' && count > 0 && (count >= FETCH_CHUNK_MESSAGES || bytes + item.size > this.fetchBatchBytes)) {
        yield { items: cur, bytes };
        cur = [];
        count = 0;
        bytes = 0;
      }
      cur.push(item);
      if (item.action === 'fetch') {
        count += 1;
        bytes += Math.max(1, item.size);
      }
    }
    if (cur.length > 0) yield { items: cur, bytes };
  }

  /**
   * Downloads the sources of a chunk with one UID FETCH. Never rejects: returns what arrived (`null`: answered without
   * a source) and, when the command failed, its error; the caller delivers what arrived before it, then fails.
   */
  private async fetchSources(s: SessionState, chunk: FetchChunk | undefined): Promise<ChunkSources> {
    const uids = chunk ? chunk.items.filter((i) => i.action === 'fetch').map((i) => i.uid) : [];
    const got = new Map<number, Uint8Array | null>();
    if (!chunk || uids.length === 0) return { got, error: null };
    const wanted = new Set(uids);
    let open = true;
    const read = (async () => {
      for await (const msg of s.client.fetch(uidSet(uids), { uid: true, source: true }, { uid: true })) {
        if (!open || !wanted.has(msg.uid)) continue;
        if (msg.source) got.set(msg.uid, new Uint8Array(msg.source.buffer, msg.source.byteOffset, msg.source.byteLength));
        else if (!got.has(msg.uid)) got.set(msg.uid, null);
      }
    })();
    try {
      // Scaled with the size: 60 s plus 10 s per MiB.
      await this.net(s, read, 'UID FETCH (sources)', this.commandTimeoutMs + Math.ceil(chunk.bytes / MiB) * 10_000);
      return { got, error: null };
    } catch (err) {
      open = false;
      return { got: new Map(got), error: { err } };
    }
  }

  /** Delivers one chunk in UID order, up to `deliveryWindow` deliveries in flight; progress counts in order only. */
  private async deliverChunk(s: SessionState, run: BatchRun, chunk: FetchChunk, sources: ChunkSources): Promise<void> {
    const cp = this.checkpoint as MailboxCheckpoint;
    const inflight: Slot[] = [];
    let failure: { err: unknown } | null = null;

    const settle = async (slot: Slot): Promise<void> => {
      const result = slot.delivery ? await slot.delivery : null;
      if (failure) return; // draining after a failure: nothing after it counts
      if (result && 'err' in result) {
        failure = { err: result.err instanceof DeliveryFailure ? result.err : new DeliveryFailure(slot.item.uid, result.err) };
        return;
      }
      if (result) {
        this.progress(run, slot.item.uid, slot.item.internalDate, true);
        run.delivered.push(slot.item.uid);
        this.fetchFailures.delete(`${cp.uidValidity}:${slot.item.uid}`);
        this.lastMessageAt = this.clock.now();
        const sinceExists = run.mode === 'new' && s.syncExistsAt !== null ? Math.round(performance.now() - s.syncExistsAt) : undefined;
        this.log.debug({ uid: slot.item.uid, mode: run.mode, outcome: result.outcome, size: result.size, tooLarge: result.tooLarge, msSinceExists: sinceExists }, 'message delivered');
      } else {
        this.progress(run, slot.item.uid, slot.item.internalDate, slot.counted);
      }
      this.countDown(run.mode);
      if (performance.now() - run.flushedAt >= this.checkpointIntervalMs) {
        try {
          await this.saveProgress(run);
        } catch (err) {
          failure = { err };
        }
      }
    };

    for (const item of chunk.items) {
      if (failure) break;
      if (this.stopping) {
        failure = { err: new StopRequested() };
        break;
      }
      let raw: Uint8Array = EMPTY;
      let tooLarge = item.action === 'tooLarge';
      let slot: Slot | null = null;
      if (item.action === 'skip') slot = { item, counted: item.counted, delivery: null };
      else if (item.action === 'fetch') {
        const source = sources.got.get(item.uid);
        if (source === undefined && sources.error) {
          // The download broke off before this message: it is the suspect (a poison message is skipped after 3).
          const uidKey = `${cp.uidValidity}:${item.uid}`;
          const n = (this.fetchFailures.get(uidKey) ?? 0) + 1;
          this.fetchFailures.set(uidKey, n);
          if (this.fetchFailures.size > 1_000) this.fetchFailures.clear();
          this.log.warn({ uid: item.uid, attempt: n, error: errorText(sources.error.err) }, 'downloading the message failed');
          failure = { err: sources.error.err };
          break;
        }
        // Not in the answer (expunged meanwhile) or answered without its bytes: nothing to deliver.
        if (!source) slot = { item, counted: false, delivery: null };
        else if (source.byteLength <= this.maxMessageBytes) raw = source;
        else tooLarge = true;
      }
      slot ??= { item, counted: true, delivery: this.startDelivery(run, item, raw, tooLarge) };
      inflight.push(slot);
      while (inflight.length > 0 && (inflight.length >= this.deliveryWindow || !(inflight[0] as Slot).delivery)) await settle(inflight.shift() as Slot);
    }
    // Every delivery started is awaited (also after a failure), so none is still running when the batch is retried.
    while (inflight.length > 0) await settle(inflight.shift() as Slot);
    if (failure) throw (failure as { err: unknown }).err;
    if (sources.error) throw sources.error.err;
  }

  /** Hands one message to the sink; resolves (never rejects) with the outcome or the error. */
  private startDelivery(run: BatchRun, item: PlannedItem, raw: Uint8Array, tooLarge: boolean): Promise<DeliveryResult> {
    const cp = this.checkpoint as MailboxCheckpoint;
    const message: FetchedMessage = {
      accountId: this.accountId,
      uidValidity: cp.uidValidity,
      uid: item.uid,
      internalDate: item.internalDate,
      size: tooLarge ? Math.max(item.size, raw.byteLength) : item.size || raw.byteLength,
      raw: tooLarge ? EMPTY : raw,
      imported: run.mode === 'import',
    };
    if (tooLarge) message.tooLarge = true;
    this.deliveriesInFlight += 1;
    let delivery: Promise<'stored' | 'duplicate' | 'quarantined'>;
    try {
      delivery = this.o.sink.deliver(message);
    } catch (err) {
      delivery = Promise.reject(err);
    }
    return withTimeout(delivery, this.deliverTimeoutMs, 'sink.deliver')
      .then(
        (outcome): DeliveryResult => ({ outcome, size: message.size, tooLarge: message.tooLarge === true }),
        (err: unknown): DeliveryResult => ({ err }),
      )
      .finally(() => {
        this.deliveriesInFlight -= 1;
      });
  }

  private countDown(mode: DeliveryMode): void {
    if (mode === 'new') this.backlogNew = Math.max(0, this.backlogNew - 1);
    if (mode === 'recovery') this.backlogRecovery = Math.max(0, this.backlogRecovery - 1);
  }

  /** Moves the batch's working checkpoint past `uid` (after the sink stored it, or when there was nothing to deliver). */
  private progress(run: BatchRun, uid: number, internalDate: number | null, counted: boolean): void {
    const cp = { ...run.working };
    if (run.mode === 'new') {
      if (uid <= cp.lastUid) return;
      cp.lastUid = uid;
      if (internalDate !== null) cp.lastInternalDate = Math.max(cp.lastInternalDate ?? 0, internalDate);
    } else if (run.mode === 'recovery' && cp.recovery) {
      cp.recovery = { ...cp.recovery, cursorUid: Math.max(cp.recovery.cursorUid, uid) };
      if (internalDate !== null && counted) cp.lastInternalDate = Math.max(cp.lastInternalDate ?? 0, internalDate);
    } else if (run.mode === 'import' && cp.import) {
      cp.import = { ...cp.import, cursorUid: Math.max(cp.import.cursorUid, uid), done: cp.import.done + 1 };
    }
    run.working = cp;
    run.lastUid = uid;
  }

  /** Writes the working checkpoint: one durable write for every delivery since the last. */
  private async saveProgress(run: BatchRun): Promise<void> {
    run.flushedAt = performance.now();
    if (run.working !== this.checkpoint) {
      try {
        await this.saveCheckpoint(run.working);
      } catch (err) {
        throw new DeliveryFailure(run.lastUid ?? 0, err);
      }
    }
    run.durable.push(...run.delivered.splice(0));
  }

  /** Marks delivered messages per `markAs` with one UID STORE. Best effort: a failure is logged. */
  private async mark(s: SessionState, uids: number[]): Promise<void> {
    const markAs = this.o.markAs;
    if (markAs.type === 'none' || s.closed || uids.length === 0) return;
    const flag = markAs.type === 'seen' ? '\\Seen' : markAs.keyword;
    const set = uidSet(uids);
    try {
      const ok = await this.net(s, s.client.messageFlagsAdd(set, [flag], { uid: true }), 'UID STORE');
      if (!ok) this.log.warn({ uids: set, flag }, 'the server did not set the flag');
    } catch (err) {
      if (s.closed || this.stopping) return;
      this.log.warn({ uids: set, flag, error: errorText(err) }, 'marking the messages failed');
    }
  }
}

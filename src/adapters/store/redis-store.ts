// The Redis Store: documents through Keyv + @keyv/redis, atomic operations as Lua scripts on the same keys, sorted-set indexes.
//
// Physical layout (with `keyPrefix` P, default ''):
//   document `<key>`  -> string  `P` + `ec::` + key   (Keyv namespace `Pec`, @keyv/redis separator `::`)
//                        value   `{"value":<json>}`  (document-format.ts), TTL as Redis PX expiry
//   index `<name>`    -> zset    `P` + `ec:idx::` + name   (member, score)
// One node-redis client serves Keyv (passed to KeyvRedis) and the atomic paths, so both see the same keys.
// Availability: the client fails fast while disconnected (no offline queue), reconnects forever with capped
// backoff, and every call is bounded by a timeout; connection failures surface as StoreUnavailableError.
import { silentLogger } from '../../core/ports.js';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  DisconnectsClientError,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from 'redis';
import {
  CommitConflictError,
  StoreUnavailableError,
  systemClock,
  type Clock,
  type IndexEntry,
  type IndexRangeOptions,
  type JobSpec,
  type Logger,
  type Store,
  type WriteOp,
} from '../../core/ports.js';
import { DOCUMENT_NAMESPACE, decodeDocument, encodeDocument, keyvDeserialize, keyvSerialize } from './document-format.js';
import { checkIncrement, checkKey, checkRange, checkScore, checkTtl, checkUpdateResult, prepareOps } from './store-args.js';

/** Jobs of applied commits not yet handed to the sink (document `jobs-pending:<jobId>`, index `jobs:pending` by time). */
export const PENDING_JOB_PREFIX = 'jobs-pending:';
export const PENDING_JOBS_INDEX = 'jobs:pending';
interface PendingJob {
  job: JobSpec;
  at: number;
}

/** Where `commit` hands its jobs after its script applied the writes (the BullMQ queue); jobs are idempotent by id. */
export interface JobSink {
  enqueue(jobs: JobSpec[]): Promise<void>;
}

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...`. */
  url: string;
  /** Accepted for symmetry with the embedded store; TTLs are judged by the Redis server's clock. */
  clock?: Clock;
  jobSink?: JobSink;
  /** Prepended to every key (e.g. `tenant1:`), so several deployments or test runs can share one Redis. */
  keyPrefix?: string;
  /** TCP connect timeout (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Bound on every store call (default 3000 ms). */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff (default 2000 ms). */
  maxReconnectDelayMs?: number;
  logger?: Logger;
}

type RedisClient = ReturnType<typeof createClient>;

interface LuaScript {
  source: string;
  sha: string;
}

function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Compare-and-set of one document. KEYS[1] document key.
 * ARGV: [1] 'absent' | 'present', [2] expected text, [3] 'set' | 'del', [4] new text, [5] ttl ms or '' (keep expiry).
 * Returns 1 when applied, 0 when the key changed since it was read.
 */
const CAS = lua(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == 'absent' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[5] ~= '' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
elseif cur then
  redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[4])
end
return 1
`);

/**
 * Counter in the document format. KEYS[1] document key; ARGV: [1] increment, [2] ttl ms or '' (applies on creation).
 * Returns the new document text.
 */
const INCR = lua(`
local cur = redis.call('GET', KEYS[1])
local n = tonumber(ARGV[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if not ok or type(doc) ~= 'table' or type(doc.value) ~= 'number' or doc.value % 1 ~= 0 then
    return redis.error_reply('EC_NOT_COUNTER the key holds a non-integer value')
  end
  n = doc.value + n
end
if n > 9007199254740991 or n < -9007199254740991 then
  return redis.error_reply('EC_COUNTER_RANGE the counter would leave the safe integer range')
end
local text = '{"value":' .. string.format('%d', n) .. '}'
if cur then
  redis.call('SET', KEYS[1], text, 'KEEPTTL')
elseif ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], text, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], text)
end
return text
`);

/**
 * Range strictly after a cursor entry, in (score, member) order, by rank. KEYS[1] sorted set;
 * ARGV: [1] 'asc' | 'desc', [2] min, [3] max, [4] limit, [5] cursor member, [6] cursor score.
 * When the cursor member is gone (or rescored), its position among equal scores is found by a binary search
 * comparing bytes (Lua's `<` on strings follows the server locale; Redis orders members by memcmp).
 * Returns a flat ascending [member, score, ...] array.
 */
const RANGE_AFTER = lua(`
local key = KEYS[1]
local asc = ARGV[1] == 'asc'
local min, max, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local am, as = ARGV[5], ARGV[6]
local function bytes_gt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local before, through
local sc = redis.call('ZSCORE', key, am)
if sc and tonumber(sc) == tonumber(as) then
  before = redis.call('ZRANK', key, am)
  through = before + 1
else
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. as)
  local hi = redis.call('ZCOUNT', key, '-inf', as)
  local steps = 0
  while lo < hi and steps < 64 do
    steps = steps + 1
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZRANGE', key, mid, mid)[1]
    if bytes_gt(m, am) then hi = mid else lo = mid + 1 end
  end
  before = lo
  through = lo
end
local first, last
if asc then
  first = math.max(through, redis.call('ZCOUNT', key, '-inf', '(' .. min))
  last = math.min(redis.call('ZCOUNT', key, '-inf', max), first + limit) - 1
else
  last = math.min(before, redis.call('ZCOUNT', key, '-inf', max)) - 1
  first = math.max(redis.call('ZCOUNT', key, '-inf', '(' .. min), last - limit + 1)
end
if first > last then return {} end
return redis.call('ZRANGE', key, first, last, 'WITHSCORES')
`);

/**
 * `commit`: optimistic checks, then every write, in one script (atomic: no other command runs in between).
 * KEYS[i] is the Redis key of op i; ARGV[3i-2] is its code and ARGV[3i-1], ARGV[3i] its arguments:
 *   'c' check  [rev as decimal text, or '' = must be absent]
 *   'p' put    [document text, PX ttl ms or '']
 *   'd' del
 *   'z' zadd   [score, member]
 *   'r' zrem   [member]
 * Pass 1 judges every check (against the state before this commit) and makes sure no write can fail half-way
 * (an index key holding another type would make ZADD/ZREM raise after earlier writes, and Lua has no rollback).
 * Returns 0 when everything was applied, else the (1-based) op position of the first failing check, having written nothing.
 * A check compares the stored document's `.value.rev`: cjson decodes JSON numbers as doubles, exact for integers
 * below 2^53, and the expected rev (JS `String(rev)`) is parsed the same way; JSON null decodes as `cjson.null`
 * (not a table, not a number), so a null value or a null rev fails a numeric check.
 */
const COMMIT = lua(`
local n = #KEYS
for i = 1, n do
  local code = ARGV[3 * i - 2]
  if code == 'c' then
    local want = ARGV[3 * i - 1]
    local cur = redis.call('GET', KEYS[i])
    if want == '' then
      if cur then return i end
    else
      if not cur then return i end
      local ok, doc = pcall(cjson.decode, cur)
      if not ok or type(doc) ~= 'table' then
        return redis.error_reply('EC_UNDECODABLE ' .. tostring(i))
      end
      local value = doc.value
      if type(value) ~= 'table' then return i end
      local rev = value.rev
      if type(rev) ~= 'number' or rev ~= tonumber(want) then return i end
    end
  elseif code == 'z' or code == 'r' then
    local t = redis.call('TYPE', KEYS[i])
    t = type(t) == 'table' and t.ok or t
    if t ~= 'zset' and t ~= 'none' then
      return redis.error_reply('EC_WRONGTYPE ' .. tostring(i))
    end
  elseif code ~= 'p' and code ~= 'd' then
    return redis.error_reply('EC_BAD_OP ' .. tostring(code))
  end
end
for i = 1, n do
  local code, a, b = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  if code == 'p' then
    if b == '' then
      redis.call('SET', KEYS[i], a)
    else
      redis.call('SET', KEYS[i], a, 'PX', b)
    end
  elseif code == 'd' then
    redis.call('DEL', KEYS[i])
  elseif code == 'z' then
    redis.call('ZADD', KEYS[i], a, b)
  elseif code == 'r' then
    redis.call('ZREM', KEYS[i], a)
  end
end
return 0
`);

/** Concurrent-change retries of `update` before it gives up (each retry re-reads and re-runs `fn`). */
const MAX_UPDATE_ATTEMPTS = 32;


/** Waits for `promise` at most `ms`; resolves `undefined` on timeout (and leaves no timer behind). */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A score as Redis reads it in range arguments. */
function redisScore(n: number): string {
  if (n === Infinity) return '+inf';
  if (n === -Infinity) return '-inf';
  return String(n);
}

function parseRedisScore(s: string): number {
  const lower = s.toLowerCase();
  if (lower === 'inf' || lower === '+inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  return Number(s);
}

/** node-redis / @keyv/redis errors that mean the server cannot be reached right now. */
function isConnectionError(err: unknown): boolean {
  if (
    err instanceof ClientOfflineError ||
    err instanceof ClientClosedError ||
    err instanceof SocketClosedUnexpectedlyError ||
    err instanceof ConnectionTimeoutError ||
    err instanceof SocketTimeoutError ||
    err instanceof TimeoutError ||
    err instanceof ReconnectStrategyError ||
    err instanceof DisconnectsClientError
  ) {
    return true;
  }
  if (err instanceof ErrorReply) return /^(LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message);
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)/.test(code)) return true;
  // @keyv/redis RedisErrorMessages.RedisClientNotConnectedThrown
  return err.message.startsWith('Redis client is not connected');
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly clock: Clock;
  readonly keyPrefix: string;
  /** The one node-redis client (also used by Keyv). */
  readonly client: RedisClient;
  private readonly adapter: KeyvRedis<unknown>;
  private readonly keyv: Keyv;
  private readonly jobSink: JobSink | undefined;
  private readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly log: Logger;
  private readonly keyLocks = new Map<string, Promise<unknown>>();
  private connecting: Promise<unknown> | undefined;
  private wasReady = false;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.clock = options.clock ?? systemClock;
    this.keyPrefix = options.keyPrefix ?? '';
    this.jobSink = options.jobSink;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 3000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.log = (options.logger ?? silentLogger).child({ component: 'redis-store' });
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    this.client = createClient({
      url: options.url,
      // Fail fast while disconnected instead of queueing: a queued write could land long after its caller gave up.
      disableOfflineQueue: true,
      commandOptions: { timeout: this.commandTimeoutMs },
      socket: {
        connectTimeout: this.connectTimeoutMs,
        // Never give up (Redis restarts must heal by themselves); exponential backoff capped at maxDelay, with jitter.
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 16), maxDelay) + Math.floor(Math.random() * 100),
      },
    });
    this.client.on('error', (err: unknown) => {
      if (this.wasReady) {
        this.wasReady = false;
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'redis connection lost; reconnecting');
      }
    });
    this.client.on('ready', () => {
      if (!this.wasReady) this.log.info('redis connection ready');
      this.wasReady = true;
    });
    this.adapter = new KeyvRedis<unknown>(this.client, {
      namespace: `${this.keyPrefix}${DOCUMENT_NAMESPACE}`,
      // Without these @keyv/redis (and Keyv) log-and-swallow failures and answer `undefined`/`false`.
      throwOnErrors: true,
      throwOnConnectError: true,
    });
    this.keyv = new Keyv({
      store: this.adapter,
      namespace: `${this.keyPrefix}${DOCUMENT_NAMESPACE}`,
      // @keyv/redis prefixes `<namespace>::` itself; Keyv's own `<namespace>:` prefix would double it.
      useKeyPrefix: false,
      serialize: keyvSerialize,
      deserialize: keyvDeserialize,
      throwOnErrors: true,
    });
  }

  /** Starts connecting and waits (at most the connect timeout) for the first connection; never throws. */
  async connect(): Promise<boolean> {
    if (this.client.isReady) return true;
    if (!this.connecting) {
      this.connecting = this.client.connect().catch((err: unknown) => {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'redis connect failed');
      });
    }
    await settleWithin(this.connecting, this.connectTimeoutMs + 500);
    if (!this.client.isReady) this.log.warn('redis not reachable yet; store calls fail with StoreUnavailableError until it is');
    return this.client.isReady;
  }

  /** The Redis key of a document, exactly as @keyv/redis builds it. */
  documentKey(key: string): string {
    return this.adapter.createKeyPrefix(key, this.adapter.namespace);
  }

  /** The Redis key of an ordered index (a sorted set). */
  indexKey(name: string): string {
    return `${this.keyPrefix}${DOCUMENT_NAMESPACE}:idx::${name}`;
  }

  /** Bounds `fn` by the command timeout and maps connection failures to StoreUnavailableError. */
  private async guard<T>(op: string, fn: () => Promise<T>, timeoutMs = this.commandTimeoutMs): Promise<T> {
    if (this.closed) throw new StoreUnavailableError(`redis store is closed (${op})`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`redis ${op} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      if (isConnectionError(err)) {
        throw new StoreUnavailableError(`redis ${op} failed: ${(err as Error).message || (err as Error).name}`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVALSHA, loading the script with EVAL when the server does not know it (first use, or after a restart). */
  private async script(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalSha(script.sha, { keys, arguments: args });
    } catch (err) {
      if (err instanceof ErrorReply && err.message.startsWith('NOSCRIPT')) {
        return this.client.eval(script.source, { keys, arguments: args });
      }
      throw err;
    }
  }

  /** Serialises this instance's read-modify-writes per key (other instances are handled by the CAS). */
  private async withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.keyLocks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.keyLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.keyLocks.get(key) === tail) this.keyLocks.delete(key);
    }
  }

  // ---- documents (Keyv path) ----

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    return this.guard('get', () => this.keyv.get<T>(key));
  }

  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    keys.forEach((k) => checkKey(k));
    if (keys.length === 0) return [];
    return this.guard('getMany', () => this.keyv.getMany<T>(keys));
  }

  async put(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<void> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    encodeDocument(value); // fail on an unstorable value before Keyv swallows it into `false`
    await this.guard('put', async () => {
      const ok = await this.keyv.set(key, value, ttl);
      if (!ok) throw new Error(`redis put of ${key} was not written`);
    });
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return this.guard('delete', () => this.keyv.delete(key));
  }

  // ---- atomic operations ----

  async putIfAbsent(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<boolean> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    const text = encodeDocument(value);
    const reply = await this.guard('putIfAbsent', () =>
      ttl === undefined
        ? this.client.set(this.documentKey(key), text, { condition: 'NX' })
        : this.client.set(this.documentKey(key), text, { condition: 'NX', expiration: { type: 'PX', value: ttl } }),
    );
    return reply !== null;
  }

  /**
   * Optimistic read-modify-write: GET, run `fn`, then a Lua compare-and-set on the exact text read; on a
   * concurrent change, retry (bounded, with jittered backoff). With `ttlMs` the expiry is reset; without it
   * an existing expiry is kept.
   */
  async update<T>(key: string, fn: (current: T | undefined) => T | undefined, opts?: { ttlMs?: number }): Promise<T | undefined> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    const dk = this.documentKey(key);
    return this.withKeyLock(dk, async () => {
      for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
        const currentText = await this.guard('update', () => this.client.get(dk));
        const next = fn(decodeDocument<T>(currentText));
        checkUpdateResult(next);
        if (next === undefined && currentText === null) return undefined;
        const nextText = next === undefined ? '' : encodeDocument(next);
        const applied = await this.guard('update', () =>
          this.script(
            CAS,
            [dk],
            [
              currentText === null ? 'absent' : 'present',
              currentText ?? '',
              next === undefined ? 'del' : 'set',
              nextText,
              ttl === undefined ? '' : String(ttl),
            ],
          ),
        );
        if (applied === 1) return next === undefined ? undefined : decodeDocument<T>(nextText);
        await sleep(Math.floor(Math.random() * Math.min(2 ** attempt, 50)));
      }
      throw new Error(`update of ${key} gave up after ${MAX_UPDATE_ATTEMPTS} attempts: the key kept changing concurrently`);
    });
  }

  async incr(key: string, by = 1, opts?: { ttlMs?: number }): Promise<number> {
    checkKey(key);
    checkIncrement(by);
    const ttl = checkTtl(opts?.ttlMs);
    let reply: unknown;
    try {
      reply = await this.guard('incr', () => this.script(INCR, [this.documentKey(key)], [String(by), ttl === undefined ? '' : String(ttl)]));
    } catch (err) {
      if (err instanceof ErrorReply && err.message.includes('EC_NOT_COUNTER')) throw new TypeError(`incr: ${key} holds a non-integer value`);
      if (err instanceof ErrorReply && err.message.includes('EC_COUNTER_RANGE')) throw new RangeError(`incr: ${key} would leave the safe integer range`);
      throw err;
    }
    const value = typeof reply === 'string' ? decodeDocument<unknown>(reply) : undefined;
    if (typeof value !== 'number') throw new Error(`incr: unexpected reply from redis for ${key}`);
    return value;
  }

  // ---- ordered indexes (sorted sets) ----

  async indexAdd(index: string, member: string, score: number): Promise<void> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    checkScore(score);
    await this.guard('indexAdd', () => this.client.zAdd(this.indexKey(index), { score, value: member }));
  }

  async indexRemove(index: string, member: string): Promise<void> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    await this.guard('indexRemove', () => this.client.zRem(this.indexKey(index), member));
  }

  async indexScore(index: string, member: string): Promise<number | undefined> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    const score = await this.guard('indexScore', () => this.client.zScore(this.indexKey(index), member));
    return score === null ? undefined : Number(score);
  }

  async indexRange(index: string, opts: IndexRangeOptions): Promise<IndexEntry[]> {
    checkKey(index, 'index name');
    const { min, max, reverse, limit, after } = checkRange(opts);
    if (limit === 0 || min > max) return [];
    const key = this.indexKey(index);
    // A cursor outside the range (before `min` going up, after `max` going down) is no tighter than the bound.
    const cursor = after && (reverse ? after.score <= max : after.score >= min) ? after : undefined;
    if (!cursor) {
      const rows = await this.guard('indexRange', () =>
        reverse
          ? this.client.zRangeWithScores(key, redisScore(max), redisScore(min), { BY: 'SCORE', REV: true, LIMIT: { offset: 0, count: limit } })
          : this.client.zRangeWithScores(key, redisScore(min), redisScore(max), { BY: 'SCORE', LIMIT: { offset: 0, count: limit } }),
      );
      return rows.map((r) => ({ member: String(r.value), score: Number(r.score) }));
    }
    const flat = await this.guard('indexRange', () =>
      this.script(RANGE_AFTER, [key], [reverse ? 'desc' : 'asc', redisScore(min), redisScore(max), String(limit), cursor.member, redisScore(cursor.score)]),
    );
    if (!Array.isArray(flat)) throw new Error('indexRange: unexpected reply from redis');
    const entries: IndexEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      entries.push({ member: String(flat[i]), score: parseRedisScore(String(flat[i + 1])) });
    }
    return reverse ? entries.reverse() : entries;
  }

  async indexCount(index: string, min = -Infinity, max = Infinity): Promise<number> {
    checkKey(index, 'index name');
    checkScore(min, 'min');
    checkScore(max, 'max');
    if (min > max) return 0;
    return this.guard('indexCount', () => this.client.zCount(this.indexKey(index), redisScore(min), redisScore(max)));
  }

  // ---- commit ----

  /**
   * One Lua script (COMMIT above) judges the `check` ops and applies every write atomically — with the jobs recorded
   * as pending — then the jobs go to the sink and their pending records are cleared. A failed check writes nothing,
   * enqueues nothing and rejects with CommitConflictError. A crash between the script and the sink, or a sink that
   * fails (the commit then resolves: it is durable), leaves the jobs pending: redispatchPendingJobs() hands them over
   * (jobs are deduplicated by id). Bad values are rejected before anything is sent.
   */
  async commit(ops: WriteOp[], jobs: JobSpec[] = []): Promise<void> {
    if (jobs.length > 0 && !this.jobSink) {
      throw new Error(
        `RedisStore.commit got ${jobs.length} job(s) but no job sink is configured: pass jobSink (the BullMQ job queue) to openRedisStore/openStore`,
      );
    }
    // Transactional outbox: the jobs are written with the state that caused them (same script), handed to the sink
    // after, then cleared. A crash in between leaves them pending, and redispatchPendingJobs() hands them over later,
    // so a commit's jobs are never lost even when nobody replays the commit (an accepted reply, a status change).
    const at = Date.now();
    const pendingOps: WriteOp[] = jobs.flatMap((job) => [
      { op: 'put' as const, key: `${PENDING_JOB_PREFIX}${job.id}`, value: { job, at } satisfies PendingJob },
      { op: 'index' as const, index: PENDING_JOBS_INDEX, member: job.id, score: at },
    ]);
    await this.applyOps([...ops, ...pendingOps]);
    if (jobs.length > 0 && this.jobSink) {
      try {
        await this.jobSink.enqueue(jobs);
      } catch (err) {
        // The commit is durable and its jobs are recorded: redispatchPendingJobs() hands them over later.
        this.log.warn({ jobs: jobs.length, err: err instanceof Error ? err.message : String(err) }, 'commit applied; its jobs stay pending until the queue takes them');
        return;
      }
      await this.clearPending(jobs.map((j) => j.id)).catch(() => undefined);
    }
  }

  /**
   * Hands over jobs whose commit was applied but whose hand-over to the sink did not happen (a crash, a failed
   * enqueue) — those pending for longer than `olderThanMs`. Enqueueing is idempotent by job id. Returns how many.
   */
  async redispatchPendingJobs(olderThanMs = 30_000, limit = 500): Promise<number> {
    if (!this.jobSink) return 0;
    const due = await this.indexRange(PENDING_JOBS_INDEX, { max: Date.now() - olderThanMs, limit });
    if (due.length === 0) return 0;
    const docs = await this.getMany<PendingJob>(due.map((e) => `${PENDING_JOB_PREFIX}${e.member}`));
    const jobs = docs.filter((d): d is PendingJob => !!d).map((d) => d.job);
    if (jobs.length > 0) await this.jobSink.enqueue(jobs);
    await this.clearPending(due.map((e) => e.member));
    return jobs.length;
  }

  private async clearPending(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.applyOps(ids.flatMap((id) => [{ op: 'del' as const, key: `${PENDING_JOB_PREFIX}${id}` }, { op: 'unindex' as const, index: PENDING_JOBS_INDEX, member: id }]));
  }

  /** Applies the ops atomically with one Lua script (checks first); see commit. */
  private async applyOps(ops: WriteOp[]): Promise<void> {
    const prepared = prepareOps(ops);
    if (prepared.length > 0) {
      const keys: string[] = [];
      const args: string[] = [];
      for (const op of prepared) {
        switch (op.op) {
          case 'check':
            keys.push(this.documentKey(op.key));
            args.push('c', op.rev === null ? '' : String(op.rev), '');
            break;
          case 'put':
            keys.push(this.documentKey(op.key));
            args.push('p', op.text, op.ttlMs === undefined ? '' : String(op.ttlMs));
            break;
          case 'del':
            keys.push(this.documentKey(op.key));
            args.push('d', '', '');
            break;
          case 'index':
            keys.push(this.indexKey(op.index));
            args.push('z', redisScore(op.score), op.member);
            break;
          case 'unindex':
            keys.push(this.indexKey(op.index));
            args.push('r', op.member, '');
            break;
        }
      }
      let reply: unknown;
      try {
        reply = await this.guard('commit', () => this.script(COMMIT, keys, args));
      } catch (err) {
        if (err instanceof ErrorReply) {
          const m = /^EC_(UNDECODABLE|WRONGTYPE) (\d+)/.exec(err.message);
          const failed = m ? prepared[Number(m[2]) - 1] : undefined;
          if (failed && m?.[1] === 'UNDECODABLE' && failed.op === 'check') {
            throw new Error(`commit check of ${failed.key}: the stored document could not be decoded by redis (cjson)`, { cause: err });
          }
          if (failed && m?.[1] === 'WRONGTYPE' && (failed.op === 'index' || failed.op === 'unindex')) {
            throw new Error(`commit: the redis key of index ${failed.index} holds another type; nothing was written`, { cause: err });
          }
        }
        throw err;
      }
      if (typeof reply !== 'number') throw new Error('commit: unexpected reply from redis');
      if (reply !== 0) {
        const failed = prepared[reply - 1];
        if (failed?.op !== 'check') throw new Error(`commit: unexpected reply ${reply} from redis`);
        throw new CommitConflictError(
          `commit conflict on ${failed.key}: ${failed.rev === null ? 'expected no document, found one' : `expected rev ${failed.rev}, found another or none`}`,
          failed.key,
        );
      }
    }
  }

  // ---- lifecycle ----

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.guard('ping', () => this.client.ping(), Math.min(this.commandTimeoutMs, 2000));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.client.isOpen) return;
    if (!this.client.isReady) {
      this.client.destroy();
      return;
    }
    const closedInTime = await settleWithin(
      this.client.close().then(() => true),
      this.commandTimeoutMs,
    ).catch(() => false);
    if (closedInTime !== true && this.client.isOpen) this.client.destroy();
  }
}

/** Creates the Redis store and waits (bounded) for its first connection; it keeps reconnecting after that. */
export async function openRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const store = new RedisStore(options);
  await store.connect();
  return store;
}

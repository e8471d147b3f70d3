// The embedded Store: one SQLite file (WAL, synchronous=FULL) holding documents, ordered indexes, counters and jobs.
//
// Documents are read and written through Keyv over `KeyvSqliteAdapter` (table `kv`); the atomic operations
// (putIfAbsent, update, incr, commit) are synchronous IMMEDIATE transactions on the same table and row format,
// so Keyv reads see them. Ordered indexes live in `ordered_index (index_name, member, score)`, read through the
// covering index `(index_name, score, member)`: a range read costs O(log n + limit). `commit` inserts its jobs
// into the `jobs` table (src/adapters/jobs/sqlite-schema.ts) in the same transaction as its writes, and judges
// its optimistic `check` ops inside that transaction before any write.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import Keyv from 'keyv';
import {
  CommitConflictError,
  StoreUnavailableError,
  systemClock,
  type Clock,
  type IndexEntry,
  type IndexRangeOptions,
  type JobSpec,
  type Store,
  type WriteOp,
} from '../../core/ports.js';
import { ensureJobsSchema, insertJobsSync } from '../jobs/sqlite-schema.js';
import { DOCUMENT_NAMESPACE, decodeDocument, encodeDocument, keyvDeserialize, keyvSerialize } from './document-format.js';
import { KeyvSqliteAdapter } from './keyv-sqlite-adapter.js';
import {
  checkIncrement,
  checkKey,
  checkRange,
  checkScore,
  checkTtl,
  checkUpdateResult,
  documentHasRev,
  prepareOps,
  type PreparedOp,
} from './store-args.js';

export const INDEX_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS ordered_index (
  index_name TEXT NOT NULL,
  member     TEXT NOT NULL,
  score      REAL NOT NULL,
  PRIMARY KEY (index_name, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ordered_index_by_score ON ordered_index (index_name, score, member);
`;

/** How long a writer waits for another connection's write lock before failing (ms). */
const BUSY_TIMEOUT_MS = 5000;
/** Expired rows reclaimed when the store opens (more with `purgeExpired`). */
const PURGE_ON_OPEN = 10_000;

export interface SqliteStoreOptions {
  /** Path of the database file; its directory is created when missing. */
  file: string;
  /** Judges TTLs and stamps jobs; defaults to the system clock. */
  clock?: Clock;
}

type RangeRow = { member: string; score: number };

/** SQLite error codes that mean "the database cannot be used right now" (503), not "bad request". */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL)/;

export class SqliteStore implements Store {
  readonly kind = 'embedded' as const;
  /** The shared handle: the SQLite job runner uses it so jobs and state share one file and one transaction. */
  readonly db: Database.Database;
  readonly file: string;
  readonly clock: Clock;
  private readonly kv: KeyvSqliteAdapter;
  private readonly keyv: Keyv;
  private readonly idx: {
    upsert: Database.Statement<{ name: string; member: string; score: number }>;
    remove: Database.Statement<{ name: string; member: string }>;
    score: Database.Statement<{ name: string; member: string }, { score: number }>;
    count: Database.Statement<{ name: string; min: number; max: number }, { n: number }>;
    asc: Database.Statement<{ name: string; min: number; max: number; limit: number }, RangeRow>;
    desc: Database.Statement<{ name: string; min: number; max: number; limit: number }, RangeRow>;
    ascAfter: Database.Statement<{ name: string; max: number; s: number; m: string; limit: number }, RangeRow>;
    descAfter: Database.Statement<{ name: string; min: number; s: number; m: string; limit: number }, RangeRow>;
  };
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    this.file = resolve(options.file);
    this.clock = options.clock ?? systemClock;
    mkdirSync(dirname(this.file), { recursive: true });
    const db = new Database(this.file);
    this.db = db;
    try {
      db.pragma('journal_mode = WAL');
      // FULL: every commit fsyncs the WAL, so an acknowledged write survives kill -9 and power loss.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec(INDEX_SCHEMA_SQL);
      ensureJobsSchema(db);
      this.kv = new KeyvSqliteAdapter(db, { clock: this.clock, file: this.file });
      this.keyv = new Keyv({
        store: this.kv,
        namespace: DOCUMENT_NAMESPACE,
        // The adapter prefixes `ec:` itself; Keyv's own prefixing is inconsistent between get and getMany.
        useKeyPrefix: false,
        serialize: keyvSerialize,
        deserialize: keyvDeserialize,
        // Without this Keyv swallows adapter errors and answers `undefined`.
        throwOnErrors: true,
      });
      this.idx = {
        upsert: db.prepare(
          `INSERT INTO ordered_index (index_name, member, score) VALUES (@name, @member, @score)
           ON CONFLICT (index_name, member) DO UPDATE SET score = excluded.score`,
        ),
        remove: db.prepare(`DELETE FROM ordered_index WHERE index_name = @name AND member = @member`),
        score: db.prepare(`SELECT score FROM ordered_index WHERE index_name = @name AND member = @member`),
        count: db.prepare(`SELECT count(*) AS n FROM ordered_index WHERE index_name = @name AND score >= @min AND score <= @max`),
        asc: db.prepare(
          `SELECT member, score FROM ordered_index WHERE index_name = @name AND score >= @min AND score <= @max
           ORDER BY score ASC, member ASC LIMIT @limit`,
        ),
        desc: db.prepare(
          `SELECT member, score FROM ordered_index WHERE index_name = @name AND score >= @min AND score <= @max
           ORDER BY score DESC, member DESC LIMIT @limit`,
        ),
        // Row-value bound + the opposite score bound: both become index range limits (see EXPLAIN QUERY PLAN).
        ascAfter: db.prepare(
          `SELECT member, score FROM ordered_index WHERE index_name = @name AND (score, member) > (@s, @m) AND score <= @max
           ORDER BY score ASC, member ASC LIMIT @limit`,
        ),
        descAfter: db.prepare(
          `SELECT member, score FROM ordered_index WHERE index_name = @name AND (score, member) < (@s, @m) AND score >= @min
           ORDER BY score DESC, member DESC LIMIT @limit`,
        ),
      };
      this.kv.purgeExpiredSync(PURGE_ON_OPEN);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Runs `fn` mapping database-level failures to StoreUnavailableError. */
  private async run<T>(op: string, fn: () => T | Promise<T>): Promise<T> {
    if (this.closed || !this.db.open) throw new StoreUnavailableError(`embedded store is closed (${op})`);
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
        throw new StoreUnavailableError(`embedded store ${op} failed: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }

  private rowKey(key: string): string {
    return this.kv.rowKey(key);
  }

  // ---- documents (Keyv path) ----

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    return this.run('get', () => this.keyv.get<T>(key));
  }

  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    keys.forEach((k) => checkKey(k));
    if (keys.length === 0) return [];
    return this.run('getMany', () => this.keyv.getMany<T>(keys));
  }

  async put(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<void> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    encodeDocument(value); // fail on an unstorable value before Keyv swallows it into `false`
    await this.run('put', async () => {
      const ok = await this.keyv.set(key, value, ttl);
      if (!ok) throw new Error(`embedded store put of ${key} was not written`);
    });
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return this.run('delete', () => this.keyv.delete(key));
  }

  // ---- atomic operations (IMMEDIATE transactions on the same rows) ----

  async putIfAbsent(key: string, value: unknown, opts?: { ttlMs?: number }): Promise<boolean> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    const text = encodeDocument(value);
    return this.run('putIfAbsent', () => {
      const now = this.clock.now();
      return this.kv.insertIfAbsentSync(this.rowKey(key), text, ttl === undefined ? null : now + ttl, now);
    });
  }

  /**
   * Read-modify-write in one IMMEDIATE transaction (the write lock is held from the read on, so no retry is
   * needed). With `ttlMs` the expiry is reset; without it an existing expiry is kept.
   */
  async update<T>(key: string, fn: (current: T | undefined) => T | undefined, opts?: { ttlMs?: number }): Promise<T | undefined> {
    checkKey(key);
    const ttl = checkTtl(opts?.ttlMs);
    return this.run('update', () =>
      this.db
        .transaction((): T | undefined => {
          const now = this.clock.now();
          const rk = this.rowKey(key);
          const currentText = this.kv.readSync(rk, now);
          const next = fn(decodeDocument<T>(currentText));
          checkUpdateResult(next);
          if (next === undefined) {
            if (currentText !== undefined) this.kv.deleteSync(rk, now);
            return undefined;
          }
          const text = encodeDocument(next);
          const expiresAt = ttl !== undefined ? now + ttl : currentText !== undefined ? (this.kv.expiresAtSync(rk, now) ?? null) : null;
          this.kv.writeSync(rk, text, expiresAt);
          return decodeDocument<T>(text);
        })
        .immediate(),
    );
  }

  async incr(key: string, by = 1, opts?: { ttlMs?: number }): Promise<number> {
    checkKey(key);
    checkIncrement(by);
    const ttl = checkTtl(opts?.ttlMs);
    return this.run('incr', () =>
      this.db
        .transaction((): number => {
          const now = this.clock.now();
          const rk = this.rowKey(key);
          const currentText = this.kv.readSync(rk, now);
          const current = decodeDocument<unknown>(currentText);
          if (currentText !== undefined && !Number.isSafeInteger(current)) {
            throw new TypeError(`incr: ${key} holds a non-integer value`);
          }
          const next = (currentText === undefined ? 0 : (current as number)) + by;
          if (!Number.isSafeInteger(next)) throw new RangeError(`incr: ${key} would leave the safe integer range`);
          const expiresAt = currentText === undefined ? (ttl !== undefined ? now + ttl : null) : (this.kv.expiresAtSync(rk, now) ?? null);
          this.kv.writeSync(rk, encodeDocument(next), expiresAt);
          return next;
        })
        .immediate(),
    );
  }

  // ---- ordered indexes ----

  async indexAdd(index: string, member: string, score: number): Promise<void> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    checkScore(score);
    return this.run('indexAdd', () => {
      this.idx.upsert.run({ name: index, member, score });
    });
  }

  async indexRemove(index: string, member: string): Promise<void> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    return this.run('indexRemove', () => {
      this.idx.remove.run({ name: index, member });
    });
  }

  async indexScore(index: string, member: string): Promise<number | undefined> {
    checkKey(index, 'index name');
    checkKey(member, 'index member');
    return this.run('indexScore', () => this.idx.score.get({ name: index, member })?.score);
  }

  async indexRange(index: string, opts: IndexRangeOptions): Promise<IndexEntry[]> {
    checkKey(index, 'index name');
    const { min, max, reverse, limit, after } = checkRange(opts);
    return this.run('indexRange', (): IndexEntry[] => {
      if (limit === 0 || min > max) return [];
      const name = index;
      let rows: RangeRow[];
      if (!reverse) {
        // A cursor below `min` is no tighter than `min` itself.
        rows =
          after && after.score >= min
            ? this.idx.ascAfter.all({ name, max, s: after.score, m: after.member, limit })
            : this.idx.asc.all({ name, min, max, limit });
      } else {
        rows =
          after && after.score <= max
            ? this.idx.descAfter.all({ name, min, s: after.score, m: after.member, limit })
            : this.idx.desc.all({ name, min, max, limit });
      }
      return rows.map((r) => ({ member: r.member, score: r.score }));
    });
  }

  async indexCount(index: string, min = -Infinity, max = Infinity): Promise<number> {
    checkKey(index, 'index name');
    checkScore(min, 'min');
    checkScore(max, 'max');
    return this.run('indexCount', () => this.idx.count.get({ name: index, min, max })?.n ?? 0);
  }

  // ---- commit ----

  /**
   * Applies every op and inserts the jobs in one IMMEDIATE transaction: all of it is durable, or none.
   * The `check` ops are evaluated first (against the state before this commit, under the write lock);
   * when one fails the transaction writes nothing and `CommitConflictError` is thrown.
   */
  async commit(ops: WriteOp[], jobs: JobSpec[] = []): Promise<void> {
    const prepared = prepareOps(ops);
    await this.run('commit', () => {
      this.db
        .transaction(() => {
          const now = this.clock.now();
          for (const op of prepared) if (op.op === 'check') this.checkSync(op, now);
          for (const op of prepared) this.applySync(op, now);
          insertJobsSync(this.db, jobs, now);
        })
        .immediate();
    });
  }

  /** Throws CommitConflictError when the live document at `op.key` does not carry `op.rev` (or exists when it is null). */
  private checkSync(op: Extract<PreparedOp, { op: 'check' }>, now: number): void {
    const text = this.kv.readSync(this.rowKey(op.key), now);
    if (op.rev === null) {
      if (text !== undefined) throw new CommitConflictError(`commit conflict on ${op.key}: expected no document, found one`, op.key);
      return;
    }
    if (text === undefined) throw new CommitConflictError(`commit conflict on ${op.key}: expected rev ${op.rev}, found no document`, op.key);
    if (!documentHasRev(decodeDocument<unknown>(text), op.rev)) {
      throw new CommitConflictError(`commit conflict on ${op.key}: expected rev ${op.rev}, found another`, op.key);
    }
  }

  private applySync(op: PreparedOp, now: number): void {
    switch (op.op) {
      case 'check':
        return;
      case 'put':
        this.kv.writeSync(this.rowKey(op.key), op.text, op.ttlMs === undefined ? null : now + op.ttlMs);
        return;
      case 'del':
        this.kv.deleteSync(this.rowKey(op.key), now);
        return;
      case 'index':
        this.idx.upsert.run({ name: op.index, member: op.member, score: op.score });
        return;
      case 'unindex':
        this.idx.remove.run({ name: op.index, member: op.member });
        return;
    }
  }

  // ---- housekeeping ----

  /** Deletes up to `limit` expired documents (they already read as absent); returns how many. */
  async purgeExpired(limit = 1000): Promise<number> {
    return this.run('purgeExpired', () => this.kv.purgeExpiredSync(limit));
  }

  async ping(): Promise<boolean> {
    if (this.closed || !this.db.open) return false;
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the file. Stop the SQLite job runner first: it shares this handle. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.db.open) this.db.close();
  }
}

/** Opens (creating when needed) the embedded store at `file`. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  return new SqliteStore(options);
}

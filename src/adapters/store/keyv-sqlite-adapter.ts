// A Keyv store adapter over a better-sqlite3 table, with synchronous row primitives for the store's transactions.
//
// Table `kv(key, value, expires_at)`: `key` is `<namespace>:<key>` (the adapter owns the namespace prefix, as
// @keyv/redis does, so Keyv runs with `useKeyPrefix: false`), `value` is the text Keyv's serializer produced,
// `expires_at` is epoch ms by the adapter's clock or NULL. A row whose `expires_at <= now` reads as absent on
// every path (Keyv get/getMany/has/delete and the *Sync primitives); `purgeExpiredSync` reclaims the space.
import { EventEmitter } from 'node:events';
import type Database from 'better-sqlite3';
import type { KeyvStoreAdapter } from 'keyv';
import { systemClock, type Clock } from '../../core/ports.js';

export const KV_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
`;

const LIVE = '(expires_at IS NULL OR expires_at > @now)';

export interface KeyvSqliteAdapterOptions {
  clock?: Clock;
  /** Shown in `opts.url` (Keyv only uses it for diagnostics). */
  file?: string;
}

/**
 * Keyv's `KeyvStoreAdapter` type says `get` returns deserialized data, yet Keyv hands adapters serialized
 * strings and deserializes what they return (as with @keyv/redis); so `get`/`getMany` are typed honestly
 * as strings and only the rest of the interface is checked here. Keyv's `store` option accepts it as is.
 */
export class KeyvSqliteAdapter extends EventEmitter implements Omit<KeyvStoreAdapter, 'get' | 'getMany'> {
  /** Set by Keyv from its `namespace` option. */
  namespace?: string | undefined;
  readonly opts: { dialect: 'sqlite'; url: string; table: 'kv' };
  private readonly clock: Clock;
  private readonly stmts: {
    get: Database.Statement<{ key: string; now: number }, { value: string }>;
    getMany: Database.Statement<{ keys: string; now: number }, { key: string; value: string }>;
    expiresAt: Database.Statement<{ key: string; now: number }, { expires_at: number | null }>;
    upsert: Database.Statement<{ key: string; value: string; expiresAt: number | null }>;
    insertIfAbsent: Database.Statement<{ key: string; value: string; expiresAt: number | null; now: number }>;
    delete: Database.Statement<{ key: string }, { expires_at: number | null }>;
    deleteMany: Database.Statement<{ keys: string }, { expires_at: number | null }>;
    clearRange: Database.Statement<{ from: string; to: string }>;
    clearAll: Database.Statement;
    purge: Database.Statement<{ now: number; limit: number }>;
  };

  constructor(
    readonly db: Database.Database,
    options: KeyvSqliteAdapterOptions = {},
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.opts = { dialect: 'sqlite', url: `sqlite://${options.file ?? db.name}`, table: 'kv' };
    db.exec(KV_SCHEMA_SQL);
    this.stmts = {
      get: db.prepare(`SELECT value FROM kv WHERE key = @key AND ${LIVE}`),
      getMany: db.prepare(`SELECT key, value FROM kv WHERE key IN (SELECT value FROM json_each(@keys)) AND ${LIVE}`),
      expiresAt: db.prepare(`SELECT expires_at FROM kv WHERE key = @key AND ${LIVE}`),
      upsert: db.prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (@key, @value, @expiresAt)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      ),
      // Inserts when absent, or replaces a row that has expired; `changes === 1` means it was written.
      insertIfAbsent: db.prepare(
        `INSERT INTO kv (key, value, expires_at) VALUES (@key, @value, @expiresAt)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
         WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= @now`,
      ),
      delete: db.prepare(`DELETE FROM kv WHERE key = @key RETURNING expires_at`),
      deleteMany: db.prepare(`DELETE FROM kv WHERE key IN (SELECT value FROM json_each(@keys)) RETURNING expires_at`),
      clearRange: db.prepare(`DELETE FROM kv WHERE key >= @from AND key < @to`),
      clearAll: db.prepare(`DELETE FROM kv`),
      purge: db.prepare(
        `DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= @now LIMIT @limit)`,
      ),
    };
  }

  /** The row key for a Keyv key: `<namespace>:<key>`. */
  rowKey(key: string): string {
    return this.namespace ? `${this.namespace}:${key}` : key;
  }

  /** Absolute expiry for a TTL by the adapter's clock (NULL when no TTL). */
  expiryFor(ttlMs: number | undefined): number | null {
    return typeof ttlMs === 'number' && ttlMs > 0 ? this.clock.now() + ttlMs : null;
  }

  now(): number {
    return this.clock.now();
  }

  // ---- synchronous primitives on row keys (callers run them inside their own transaction) ----

  readSync(rowKey: string, now = this.clock.now()): string | undefined {
    return this.stmts.get.get({ key: rowKey, now })?.value;
  }

  /** `undefined` when the row is absent or expired, `null` when it never expires. */
  expiresAtSync(rowKey: string, now = this.clock.now()): number | null | undefined {
    return this.stmts.expiresAt.get({ key: rowKey, now })?.expires_at;
  }

  writeSync(rowKey: string, text: string, expiresAt: number | null): void {
    this.stmts.upsert.run({ key: rowKey, value: text, expiresAt });
  }

  insertIfAbsentSync(rowKey: string, text: string, expiresAt: number | null, now = this.clock.now()): boolean {
    return this.stmts.insertIfAbsent.run({ key: rowKey, value: text, expiresAt, now }).changes === 1;
  }

  /** True when a live (unexpired) row was deleted. */
  deleteSync(rowKey: string, now = this.clock.now()): boolean {
    const row = this.stmts.delete.get({ key: rowKey });
    return row !== undefined && (row.expires_at === null || row.expires_at > now);
  }

  /** Deletes at most `limit` expired rows; returns how many. */
  purgeExpiredSync(limit: number, now = this.clock.now()): number {
    return this.stmts.purge.run({ now, limit }).changes;
  }

  // ---- Keyv store adapter API (keys arrive un-prefixed: Keyv runs with useKeyPrefix false) ----

  async get(key: string): Promise<string | undefined> {
    return this.readSync(this.rowKey(key));
  }

  async getMany(keys: string[]): Promise<Array<string | undefined>> {
    if (keys.length === 0) return [];
    const rowKeys = keys.map((k) => this.rowKey(k));
    const found = new Map<string, string>();
    for (const row of this.stmts.getMany.iterate({ keys: JSON.stringify(rowKeys), now: this.clock.now() })) {
      found.set(row.key, row.value);
    }
    return rowKeys.map((k) => found.get(k));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    if (typeof value !== 'string') throw new TypeError('KeyvSqliteAdapter stores serialized strings; configure Keyv with a serializer');
    this.writeSync(this.rowKey(key), value, this.expiryFor(ttl));
  }

  async delete(key: string): Promise<boolean> {
    return this.deleteSync(this.rowKey(key));
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    const now = this.clock.now();
    const rows = this.stmts.deleteMany.all({ keys: JSON.stringify(keys.map((k) => this.rowKey(k))) });
    return rows.some((r) => r.expires_at === null || r.expires_at > now);
  }

  async has(key: string): Promise<boolean> {
    return this.readSync(this.rowKey(key)) !== undefined;
  }

  /** Deletes every row of this namespace (all rows when there is none). */
  async clear(): Promise<void> {
    if (!this.namespace) {
      this.stmts.clearAll.run();
      return;
    }
    // Keys `<ns>:...` sort between `<ns>:` and `<ns>;` (';' is the code point after ':').
    this.stmts.clearRange.run({ from: `${this.namespace}:`, to: `${this.namespace};` });
  }

  /** The database handle belongs to the store that opened it; nothing to release here. */
  async disconnect(): Promise<void> {}
}

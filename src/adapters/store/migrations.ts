// Schema-version migrations of stored data: run on start, in order, each idempotent, refusing data newer than the code.
//
// The stored data carries its schema version under `meta:schemaVersion`. On start, `runMigrations`:
//   - fresh install (no version, no legacy data): writes the latest version, runs nothing;
//   - older version: runs every migration above it in order, bumping the version after each one
//     (a crash mid-way replays the interrupted migration, so each must be idempotent);
//   - newer version than this code knows: refuses to start (SchemaVersionError), so an old build never
//     rewrites data it does not understand.
// One instance migrates at a time (`meta:migrationLock`, with a TTL so a crashed holder cannot block forever).
import { silentLogger } from '../../core/ports.js';
import { randomUUID } from 'node:crypto';
import type { IndexEntry, Logger, Store } from '../../core/ports.js';
import { archiveWrites } from '../../core/archive.js';
import { IDX_SESSIONS, idxSessionMessages, messageKey, retentionIndexOp } from '../../core/session/store-layout.js';
import { LEGACY_V1_SETTINGS_KEY, MIGRATION_LOCK_KEY, SCHEMA_VERSION_KEY, SETTINGS_KEY } from '../../core/keys.js';

export interface Migration {
  /** The schema version this migration produces (2, 3, ...). */
  version: number;
  description: string;
  /** Must be idempotent: it is replayed when a crash happened before the version was bumped. */
  up(store: Store, log: Logger): Promise<void>;
}

export class SchemaVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaVersionError';
  }
}

export interface MigrationResult {
  /** Version found (null on a fresh install). */
  from: number | null;
  to: number;
  applied: number[];
  fresh: boolean;
}

export interface RunMigrationsOptions {
  /** Version a fresh install is stamped with (default: the highest migration version, or 1). */
  latest?: number;
  /** Keys whose presence marks unversioned data as v1 rather than a fresh install. */
  legacyV1Markers?: readonly string[];
  lockTtlMs?: number;
  /** How long to wait for another instance's migration before giving up. */
  lockWaitMs?: number;
  pollMs?: number;
}


// ---- migration 2: `config:settings` (flat, dotted keys) -> `settings` (nested object) ----

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{ "a.b": 1, "a.c": 2, d: 3 }` -> `{ a: { b: 1, c: 2 }, d: 3 }`; throws on conflicting or malformed keys. */
export function unflattenDotted(flat: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  // Shorter paths first, so `a` and `a.b` conflict the same way whatever the input order.
  const entries = Object.entries(flat).sort(([a], [b]) => a.split('.').length - b.split('.').length);
  for (const [dotted, value] of entries) {
    const path = dotted.split('.');
    if (path.some((seg) => seg.length === 0 || FORBIDDEN_SEGMENTS.has(seg))) {
      throw new Error(`settings key ${JSON.stringify(dotted)} is not a valid dotted path`);
    }
    let node: JsonObject = out;
    for (const seg of path.slice(0, -1)) {
      const child = Object.prototype.hasOwnProperty.call(node, seg) ? node[seg] : undefined;
      if (child === undefined) {
        const created: JsonObject = {};
        node[seg] = created;
        node = created;
      } else if (isPlainObject(child)) {
        node = child;
      } else {
        throw new Error(`settings key ${JSON.stringify(dotted)} conflicts with a value at ${JSON.stringify(seg)}`);
      }
    }
    const leaf = path[path.length - 1] as string;
    if (Object.prototype.hasOwnProperty.call(node, leaf)) {
      throw new Error(`settings key ${JSON.stringify(dotted)} conflicts with another key`);
    }
    node[leaf] = value as Json;
  }
  return out;
}

/** Deep merge where `winner`'s values take precedence. */
function mergePreferring(base: JsonObject, winner: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(winner)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergePreferring(b, v) : v;
  }
  return out;
}

export const migration2SettingsNested: Migration = {
  version: 2,
  description: 'move v1 settings from config:settings (flat dotted keys) to settings (nested object)',
  async up(store, log) {
    const legacy = await store.get<unknown>(LEGACY_V1_SETTINGS_KEY);
    if (legacy === undefined) return; // already migrated (or v1 never saved settings)
    if (!isPlainObject(legacy) || legacy.version !== 1 || !isPlainObject(legacy.data)) {
      throw new Error(`${LEGACY_V1_SETTINGS_KEY} does not hold v1 settings ({ version: 1, data: {...} }); refusing to guess`);
    }
    const migrated = unflattenDotted(legacy.data);
    const existing = await store.get<unknown>(SETTINGS_KEY);
    // Settings already saved in the new place win over the legacy copy.
    const next = isPlainObject(existing) ? mergePreferring(migrated, existing) : migrated;
    // One atomic commit: a crash leaves either both keys as they were, or the move done.
    await store.commit([
      { op: 'put', key: SETTINGS_KEY, value: next },
      { op: 'del', key: LEGACY_V1_SETTINGS_KEY },
    ]);
    log.info({ keys: Object.keys(legacy.data).length }, 'migrated v1 settings to nested settings');
  },
};

/**
 * Messages stored before the archive and retention existed get what new ones get at ingest: an entry in the retention
 * index (scored by when they were stored) and a job archiving their raw bytes. Idempotent (index upserts, jobs
 * deduplicated by id); one commit per session; bounded by the data.
 */
export const migration3ArchiveBackfill: Migration = {
  version: 3,
  description: 'index existing messages for retention and queue their archive copy',
  async up(store, log) {
    let after: IndexEntry | undefined;
    let sessions = 0;
    let messages = 0;
    for (;;) {
      const page = await store.indexRange(IDX_SESSIONS, { limit: 200, ...(after ? { after } : {}) });
      for (const entry of page) {
        const ids: string[] = [];
        let afterMsg: IndexEntry | undefined;
        for (;;) {
          const page = await store.indexRange(idxSessionMessages(entry.member), { limit: 1000, ...(afterMsg ? { after: afterMsg } : {}) });
          ids.push(...page.map((e) => e.member));
          if (page.length < 1000) break;
          afterMsg = page[page.length - 1];
        }
        const docs = await store.getMany<{ id: string; receivedAt?: string; archive?: unknown; purgedAt?: string; rawKey?: string | null }>(ids.map(messageKey));
        const todo = docs.filter((d): d is NonNullable<typeof d> => !!d && !d.archive && !d.purgedAt && !!d.rawKey);
        if (todo.length === 0) continue;
        const now = Date.now();
        const writes = todo.map((d) => archiveWrites(d.id, now));
        await store.commit(
          [...todo.map((d) => retentionIndexOp(d.id, d.receivedAt ? Date.parse(d.receivedAt) : now)), ...writes.flatMap((w) => w.ops)],
          writes[0]?.jobs ?? [],
        );
        sessions++;
        messages += todo.length;
      }
      if (page.length < 200) break;
      after = page[page.length - 1];
    }
    log.info({ sessions, messages }, 'existing messages indexed for retention and queued for the archive');
  },
};

/** Every migration, in version order. */
export const MIGRATIONS: readonly Migration[] = [migration2SettingsNested, migration3ArchiveBackfill];

/** The schema version this build writes and understands. */
export const CURRENT_SCHEMA_VERSION = 3;

// ---- runner ----

function checkMigrations(migrations: readonly Migration[]): void {
  let previous = 1;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version <= previous) {
      throw new Error(`migrations must have increasing integer versions above 1 (got ${m.version} after ${previous})`);
    }
    previous = m.version;
  }
}

async function readVersion(store: Store): Promise<number | undefined> {
  const v = await store.get<unknown>(SCHEMA_VERSION_KEY);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new SchemaVersionError(`${SCHEMA_VERSION_KEY} holds ${JSON.stringify(v)}, expected a positive integer`);
  }
  return v;
}

/**
 * Brings the stored data to the latest schema version (see the header). Returns what it did.
 * Throws SchemaVersionError when the data is newer than this build.
 */
export async function runMigrations(
  store: Store,
  migrations: readonly Migration[] = MIGRATIONS,
  logger?: Logger,
  options: RunMigrationsOptions = {},
): Promise<MigrationResult> {
  checkMigrations(migrations);
  const log = (logger ?? silentLogger).child({ component: 'migrations' });
  const latest = options.latest ?? migrations[migrations.length - 1]?.version ?? 1;
  const markers = options.legacyV1Markers ?? [LEGACY_V1_SETTINGS_KEY];
  const lockTtlMs = options.lockTtlMs ?? 5 * 60_000;
  const lockWaitMs = options.lockWaitMs ?? 60_000;
  const pollMs = options.pollMs ?? 250;

  const tooNew = (v: number) =>
    new SchemaVersionError(
      `stored data is at schema version ${v}, but this build only knows versions up to ${latest}: ` +
        'it was written by a newer release. Refusing to start; run that release (or newer) instead.',
    );

  // Fast path, no lock: already current (the common start).
  const initial = await readVersion(store);
  if (initial !== undefined && initial > latest) throw tooNew(initial);
  if (initial === latest) return { from: initial, to: latest, applied: [], fresh: false };

  const owner = randomUUID();
  const deadline = Date.now() + lockWaitMs;
  const maxPolls = Math.ceil(lockWaitMs / pollMs) + 1;
  for (let poll = 0; poll <= maxPolls; poll++) {
    if (await store.putIfAbsent(MIGRATION_LOCK_KEY, { owner, at: Date.now() }, { ttlMs: lockTtlMs })) break;
    // Another instance is migrating: wait for it, then re-check.
    const v = await readVersion(store);
    if (v !== undefined && v > latest) throw tooNew(v);
    if (v === latest) return { from: initial ?? null, to: latest, applied: [], fresh: false };
    if (Date.now() > deadline || poll === maxPolls) {
      throw new Error(`another instance holds ${MIGRATION_LOCK_KEY} for more than ${lockWaitMs} ms; retry later or delete the key if it is stale`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }

  try {
    const found = await readVersion(store);
    if (found !== undefined && found > latest) throw tooNew(found);
    let current = found;
    if (current === undefined) {
      const legacy = await store.getMany<unknown>([...markers]);
      if (legacy.every((v) => v === undefined)) {
        await store.put(SCHEMA_VERSION_KEY, latest);
        log.info({ version: latest }, 'fresh store: stamped with the current schema version');
        return { from: null, to: latest, applied: [], fresh: true };
      }
      current = 1;
      log.warn('unversioned data with v1 keys found: treating it as schema version 1');
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      log.info({ version: m.version, description: m.description }, 'running migration');
      await m.up(store, log);
      await store.put(SCHEMA_VERSION_KEY, m.version);
      current = m.version;
      applied.push(m.version);
    }
    if (current < latest) {
      // No migration reaches `latest` (a version bump without data changes): stamp it.
      await store.put(SCHEMA_VERSION_KEY, latest);
    }
    return { from: found ?? 1, to: latest, applied, fresh: false };
  } finally {
    await store
      .update<{ owner: string }>(MIGRATION_LOCK_KEY, (lock) => (lock?.owner === owner ? undefined : lock))
      .catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release the migration lock (it expires by itself)'));
  }
}

// Migrations: the v1 fixture migrated on both backends, fresh installs, too-new data, replays, concurrency.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger, type Logger, type Store, type WriteOp } from '../../core/ports.js';
import { startRedis, type RedisServerHandle } from '../../../test/helpers/redis-server.js';
import {
  CURRENT_SCHEMA_VERSION,
  MIGRATIONS,
  migration2SettingsNested,
  migration3ArchiveBackfill,
  runMigrations,
  SchemaVersionError,
  unflattenDotted,
  type Migration,
} from './migrations.js';
import { openRedisStore } from './redis-store.js';
import { openSqliteStore } from './sqlite-store.js';

interface V1Fixture {
  schemaVersion: number;
  documents: Record<string, unknown>;
  indexes: Record<string, { member: string; score: number }[]>;
}

const fixture = JSON.parse(readFileSync(new URL('../../../test/fixtures/store-v1.json', import.meta.url), 'utf8')) as V1Fixture;

/** What migration 2 must produce from the fixture's `config:settings`. */
const EXPECTED_SETTINGS = {
  emailChannel: {
    enabled: true,
    defaultQueue: 'support',
    autoReply: { enabled: false, subject: 'Re: @{subject} — reçu ✓' },
    signature: "Cordialement,\nL'équipe 📨",
  },
  connector: { id: 'local' },
  businessHours: { timezone: 'Europe/Paris', days: [1, 2, 3, 4, 5] },
  limits: { maxAttachmentBytes: 10485760, perMailbox: { concurrency: 2 } },
  debug: null,
};

async function loadFixture(store: Store, documents: Record<string, unknown> = fixture.documents): Promise<void> {
  const ops: WriteOp[] = Object.entries(documents).map(([key, value]) => ({ op: 'put', key, value }));
  for (const [index, entries] of Object.entries(fixture.indexes)) {
    for (const e of entries) ops.push({ op: 'index', index, member: e.member, score: e.score });
  }
  await store.commit(ops);
}

const quiet: Logger = silentLogger;

const untouchedKeys = Object.keys(fixture.documents).filter((k) => k !== 'config:settings' && k !== 'meta:schemaVersion');

let redis: RedisServerHandle;
let prefixes = 0;
const dirs: string[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Backend {
  name: string;
  /** Opens a store on fresh data; `again()` opens another handle on the same data. */
  open(): Promise<{ store: Store; again(): Promise<Store> }>;
}

const backends: Backend[] = [
  {
    name: 'embedded SQLite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'ec-mig-'));
      dirs.push(dir);
      const file = join(dir, 'store.db');
      return { store: await openSqliteStore({ file }), again: () => openSqliteStore({ file }) };
    },
  },
  {
    name: 'redis',
    async open() {
      const keyPrefix = `mig${++prefixes}:`;
      return { store: await openRedisStore({ url: redis.url, keyPrefix }), again: () => openRedisStore({ url: redis.url, keyPrefix }) };
    },
  },
];

describe.each(backends)('migrations on $name', (backend) => {
  it('migrates the v1 fixture to the current version', async () => {
    const { store } = await backend.open();
    try {
      await loadFixture(store);
      const before = await store.getMany(untouchedKeys);
      const result = await runMigrations(store, MIGRATIONS);
      expect(result).toEqual({ from: 1, to: CURRENT_SCHEMA_VERSION, applied: [2, 3], fresh: false });
      expect(await store.get('settings')).toEqual(EXPECTED_SETTINGS);
      expect(await store.get('config:settings')).toBeUndefined();
      expect(await store.get('meta:schemaVersion')).toBe(CURRENT_SCHEMA_VERSION);
      expect(await store.getMany(untouchedKeys)).toEqual(before);
      expect(await store.indexRange('sessions:byUpdatedAt', { limit: 10 })).toEqual([
        { member: 's0', score: 1732000000000 },
        { member: 's1', score: 1732010000000 },
      ]);
      expect(await store.get('meta:migrationLock')).toBeUndefined();
      // A second start does nothing.
      expect(await runMigrations(store, MIGRATIONS)).toEqual({ from: 3, to: 3, applied: [], fresh: false });
      expect(await store.get('settings')).toEqual(EXPECTED_SETTINGS);
    } finally {
      await store.close();
    }
  });

  it('replays migration 2 safely after a crash before the version bump', async () => {
    const { store } = await backend.open();
    try {
      await loadFixture(store);
      // Crash simulation: the migration ran, the version was not bumped.
      await migration2SettingsNested.up(store, quiet);
      expect(await store.get('meta:schemaVersion')).toBe(1);
      const result = await runMigrations(store, MIGRATIONS);
      expect(result.applied).toEqual([2, 3]);
      expect(await store.get('settings')).toEqual(EXPECTED_SETTINGS);
      expect(await store.get('config:settings')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('keeps settings already saved in the new place over the legacy copy', async () => {
    const { store } = await backend.open();
    try {
      await loadFixture(store);
      await store.put('settings', { emailChannel: { defaultQueue: 'sales' }, extra: 1 });
      await runMigrations(store, MIGRATIONS);
      expect(await store.get('settings')).toEqual({
        ...EXPECTED_SETTINGS,
        emailChannel: { ...EXPECTED_SETTINGS.emailChannel, defaultQueue: 'sales' },
        extra: 1,
      });
    } finally {
      await store.close();
    }
  });

  it('treats unversioned data holding v1 keys as version 1', async () => {
    const { store } = await backend.open();
    try {
      const { ['meta:schemaVersion']: _omitted, ...withoutVersion } = fixture.documents;
      await loadFixture(store, withoutVersion);
      const result = await runMigrations(store, MIGRATIONS);
      expect(result).toEqual({ from: 1, to: CURRENT_SCHEMA_VERSION, applied: [2, 3], fresh: false });
      expect(await store.get('settings')).toEqual(EXPECTED_SETTINGS);
    } finally {
      await store.close();
    }
  });

  it('stamps a fresh store with the latest version without running migrations', async () => {
    const { store } = await backend.open();
    try {
      const up = vi.fn(async () => undefined);
      const migrations: Migration[] = [
        { version: 2, description: 'two', up },
        { version: 3, description: 'three', up },
      ];
      expect(await runMigrations(store, migrations)).toEqual({ from: null, to: 3, applied: [], fresh: true });
      expect(up).not.toHaveBeenCalled();
      expect(await store.get('meta:schemaVersion')).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('runs only the migrations above the stored version, in order, bumping after each', async () => {
    const { store } = await backend.open();
    try {
      await store.put('meta:schemaVersion', 2);
      const seen: string[] = [];
      const step = (version: number): Migration => ({
        version,
        description: `v${version}`,
        async up(s) {
          seen.push(`v${version} at ${String(await s.get('meta:schemaVersion'))}`);
        },
      });
      const result = await runMigrations(store, [step(2), step(3), step(4)]);
      expect(result).toEqual({ from: 2, to: 4, applied: [3, 4], fresh: false });
      expect(seen).toEqual(['v3 at 2', 'v4 at 3']);
      expect(await store.get('meta:schemaVersion')).toBe(4);
    } finally {
      await store.close();
    }
  });

  it('stops at a failing migration, leaving the version at the last one that succeeded', async () => {
    const { store } = await backend.open();
    try {
      await store.put('meta:schemaVersion', 1);
      const failing: Migration[] = [
        { version: 2, description: 'ok', up: async () => undefined },
        {
          version: 3,
          description: 'fails',
          up: async () => {
            throw new Error('disk on fire');
          },
        },
      ];
      await expect(runMigrations(store, failing)).rejects.toThrow('disk on fire');
      expect(await store.get('meta:schemaVersion')).toBe(2);
      expect(await store.get('meta:migrationLock')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('refuses data newer than the code', async () => {
    const { store } = await backend.open();
    try {
      await store.put('meta:schemaVersion', CURRENT_SCHEMA_VERSION + 1);
      await store.put('config:settings', { version: 1, data: { 'a.b': 1 } });
      await expect(runMigrations(store, MIGRATIONS)).rejects.toThrow(SchemaVersionError);
      await expect(runMigrations(store, MIGRATIONS)).rejects.toThrow(/schema version 4, but this build only knows versions up to 3/);
      expect(await store.get('config:settings')).toEqual({ version: 1, data: { 'a.b': 1 } });
      expect(await store.get('meta:schemaVersion')).toBe(CURRENT_SCHEMA_VERSION + 1);
    } finally {
      await store.close();
    }
  });

  it('migrates once when two instances start together', async () => {
    const { store, again } = await backend.open();
    const other = await again();
    try {
      await loadFixture(store);
      let runs = 0;
      const counted: Migration[] = [
        {
          ...migration2SettingsNested,
          async up(s, log) {
            runs++;
            await new Promise((r) => setTimeout(r, 100));
            await migration2SettingsNested.up(s, log);
          },
        },
      ];
      const results = await Promise.all([runMigrations(store, counted, undefined, { pollMs: 20 }), runMigrations(other, counted, undefined, { pollMs: 20 })]);
      expect(runs).toBe(1);
      expect(results.map((r) => r.applied).sort()).toEqual([[], [2]]);
      expect(await store.get('settings')).toEqual(EXPECTED_SETTINGS);
    } finally {
      await other.close();
      await store.close();
    }
  });
});

describe('migration definitions', () => {
  it('CURRENT_SCHEMA_VERSION is the last migration', () => {
    expect(MIGRATIONS[MIGRATIONS.length - 1]?.version).toBe(CURRENT_SCHEMA_VERSION);
  });

  it('unflattens dotted keys and rejects ambiguous ones', () => {
    expect(unflattenDotted({ 'a.b.c': 1, 'a.d': [1], e: 'x' })).toEqual({ a: { b: { c: 1 }, d: [1] }, e: 'x' });
    expect(() => unflattenDotted({ a: 1, 'a.b': 2 })).toThrow(/conflicts/);
    expect(() => unflattenDotted({ 'a.b': 2, a: 1 })).toThrow(/conflicts/);
    expect(() => unflattenDotted({ 'a..b': 1 })).toThrow(/not a valid dotted path/);
    expect(() => unflattenDotted({ '__proto__.polluted': 1 })).toThrow(/not a valid dotted path/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('migration 3 indexes existing messages for retention and queues their archive copy, once (embedded)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-mig-'));
    dirs.push(dir);
    const store = await openSqliteStore({ file: join(dir, 's.db') });
    try {
      await store.put('meta:schemaVersion', 2);
      const msg = (id: string, extra: Record<string, unknown> = {}) => ({ id, sessionId: 'S1', receivedAt: '2026-01-02T03:04:05.000Z', rawKey: `blob:raw:${id}`, ...extra });
      await store.commit([
        { op: 'put', key: 'session:S1', value: { id: 'S1', rev: 1 } },
        { op: 'index', index: 'sessions:updated', member: 'S1', score: 1 },
        { op: 'put', key: 'smsg:m1', value: msg('m1') },
        { op: 'put', key: 'smsg:m2', value: msg('m2', { archive: { key: 'k', at: 'x' } }) },
        { op: 'put', key: 'smsg:m3', value: msg('m3', { rawKey: null, purgedAt: 'x' }) },
        { op: 'index', index: 'session-messages:S1', member: 'm1', score: 1 },
        { op: 'index', index: 'session-messages:S1', member: 'm2', score: 2 },
        { op: 'index', index: 'session-messages:S1', member: 'm3', score: 3 },
      ]);
      expect((await runMigrations(store, MIGRATIONS, quiet)).applied).toEqual([3]);
      expect(await store.indexRange('messages:received', { limit: 10 })).toEqual([{ member: 'm1', score: Date.parse('2026-01-02T03:04:05.000Z') }]);
      // Waiting for the archive, with a batch job to archive it.
      expect((await store.indexRange('archive:pending', { limit: 10 })).map((e) => e.member)).toEqual(['m1']);
      const jobs = store.db.prepare('SELECT purpose, target FROM jobs').all();
      expect(jobs).toEqual([{ purpose: 'archive.batch', target: 'archive' }]);
      // Replayed (a crash before the version bump): the same entries, no second message entry.
      await migration3ArchiveBackfill.up(store, quiet);
      expect((await store.indexRange('archive:pending', { limit: 10 })).map((e) => e.member)).toEqual(['m1']);
      expect(await store.indexRange('messages:received', { limit: 10 })).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('refuses a legacy settings document it does not recognise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-mig-'));
    dirs.push(dir);
    const store = await openSqliteStore({ file: join(dir, 's.db') });
    try {
      await store.put('meta:schemaVersion', 1);
      await store.put('config:settings', { version: 7, stuff: true });
      await expect(runMigrations(store, MIGRATIONS)).rejects.toThrow(/does not hold v1 settings/);
      expect(await store.get('meta:schemaVersion')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('rejects migrations out of order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-mig-'));
    dirs.push(dir);
    const store = await openSqliteStore({ file: join(dir, 's.db') });
    try {
      const m = (version: number): Migration => ({ version, description: '', up: async () => undefined });
      await expect(runMigrations(store, [m(3), m(2)])).rejects.toThrow(/increasing/);
    } finally {
      await store.close();
    }
  });
});

// StorageService over the embedded SQLite store (R-STO-1..3): validated PUT gated by the connection test, write-only
// sealed secrets, refused PUTs leaving the old settings in force, test connection, and the cached ArchiveStore.
// Providers: the local folder, and S3 against s3rver on 127.0.0.1.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/helpers/ports.js';
import { startS3Server, type S3ServerHandle } from '../../test/helpers/s3-server.js';
import { tempDirs } from '../../test/helpers/temp-dirs.js';
import { createArchiveStore } from '../adapters/archive/index.js';
import { AesGcmSecretBox, generateSecretKey, parseSecretKey } from '../adapters/secrets/secret-box.js';
import { openSqliteStore, type SqliteStore } from '../adapters/store/sqlite-store.js';
import { AppError } from '../core/errors.js';
import type { ArchiveSettings } from '../core/archive.js';
import type { Clock } from '../core/ports.js';
import { STORAGE_SETTINGS_KEY, StorageService } from './storage-service.js';

class FakeClock implements Clock {
  constructor(public t = Date.UTC(2026, 10, 27, 9, 0, 0)) {}
  now(): number {
    return this.t;
  }
}

const dirs = tempDirs('ec-storage-svc-');
// S3 goes through the verifying proxy of test/helpers/s3-server.ts (s3rver itself accepts any secret); bucket `archive`.
let s3server: S3ServerHandle;

beforeAll(async () => {
  s3server = await startS3Server();
});

afterAll(async () => {
  await s3server.stop();
  dirs.removeAll();
});

describe('StorageService (SQLite store, local provider and s3rver)', () => {
  let dataDir: string;
  let store: SqliteStore;
  let clock: FakeClock;
  let guarded: Array<[string, string]>;
  let refuseHosts: boolean;
  let changes: number;
  let service: StorageService;
  const secrets = new AesGcmSecretBox(parseSecretKey(generateSecretKey()));
  const createArchive = (s: ArchiveSettings) => createArchiveStore(s, { dataDir, timeoutMs: 5_000 });

  const make = () =>
    new StorageService({
      store,
      secrets,
      clock,
      hostGuard: {
        check: async (host, field) => {
          guarded.push([host, field]);
          if (refuseHosts) throw new AppError('validation_failed', `${field}: "${host}" resolves to a private address`, [{ path: field, message: 'resolves to a private or loopback address' }]);
        },
      },
      createArchive,
      onChange: () => {
        changes += 1;
      },
      random: () => 'TESTPROBE',
    });

  beforeEach(async () => {
    dataDir = dirs.make();
    store = await openSqliteStore({ file: join(dataDir, 'db.sqlite') });
    clock = new FakeClock();
    guarded = [];
    refuseHosts = false;
    changes = 0;
    service = make();
  });

  afterEach(async () => {
    await store.close();
  });

  /** The AppError a promise rejects with. */
  const failure = async (p: Promise<unknown>): Promise<AppError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  };
  const paths = (err: AppError) => (err.fields ?? []).map((f) => f.path).sort();

  const s3Settings = (over: Record<string, unknown> = {}) => ({
    provider: 's3',
    bucket: 'archive',
    folder: 'mail',
    retentionDays: 90,
    s3: { region: 'us-east-1', endpoint: s3server.endpoint, accessKeyId: s3server.accessKeyId, secretAccessKey: s3server.secretAccessKey, ...over },
  });

  it('answers the defaults when nothing is saved: local, under DATA_DIR/archive, kept forever', async () => {
    expect(await service.view()).toEqual({ provider: 'local', bucket: '', folder: '', retentionDays: null, s3: null, gcs: null, updatedAt: null });
    expect(await service.effective()).toEqual({ provider: 'local', bucket: '', folder: '', retentionDays: null, s3: null, gcs: null });
    expect((await service.archive()).describe()).toBe(`local folder ${join(dataDir, 'archive')}`);
    expect(await service.test()).toEqual({ ok: true });
  });

  it('saves a local configuration after probing it (folder normalized, retention from the list)', async () => {
    const view = await service.update({ folder: '/mail/archive/', retentionDays: 90 });
    expect(view).toMatchObject({ provider: 'local', folder: 'mail/archive', retentionDays: 90, updatedAt: new Date(clock.t).toISOString() });
    expect(existsSync(join(dataDir, 'archive', 'mail', 'archive', '.probe'))).toBe(true);
    expect(changes).toBe(1);
    expect(await store.get(STORAGE_SETTINGS_KEY)).toMatchObject({ rev: 1, folder: 'mail/archive' });
    await service.update({ retentionDays: null });
    expect(await service.view()).toMatchObject({ folder: 'mail/archive', retentionDays: null });
    expect(await store.get(STORAGE_SETTINGS_KEY)).toMatchObject({ rev: 2 });
  });

  it('refuses a local folder that cannot be written (field folder)', async () => {
    writeFileSync(join(dataDir, 'archive'), 'a file where the archive folder should be');
    const err = await failure(service.update({ folder: 'mail', retentionDays: 30 }));
    expect(err.fields).toEqual([{ path: 'folder', message: expect.stringContaining('connection test failed (unknown)') }]);
    expect(await service.view()).toMatchObject({ folder: '', retentionDays: null, updatedAt: null });
  });

  it('validates every field and names each path (400), saving nothing', async () => {
    const bad = await failure(service.update({ retentionDays: 45, folder: '../x', colour: 'red' }));
    expect(bad.code).toBe('validation_failed');
    expect(paths(bad)).toEqual(['colour', 'folder', 'retentionDays']);
    expect(paths(await failure(service.update({ provider: 's3' })))).toEqual(['bucket', 's3.accessKeyId', 's3.region', 's3.secretAccessKey']);
    expect(paths(await failure(service.update({ provider: 's3', bucket: 'My_Bucket', s3: { region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b' } })))).toEqual(['bucket']);
    expect(paths(await failure(service.update(s3Settings({ endpoint: 'ftp://files.example.com' }))))).toEqual(['s3.endpoint']);
    expect(paths(await failure(service.update({ provider: 'gcs', bucket: 'ec-archive', gcs: { serviceAccountKey: '{"type":"service_account"}' } })))).toEqual(['gcs.serviceAccountKey']);
    expect(paths(await failure(service.update({ provider: 'gcs', bucket: 'ec-archive' })))).toEqual(['gcs.serviceAccountKey']);
    expect(await store.get(STORAGE_SETTINGS_KEY)).toBeUndefined();
    expect(changes).toBe(0);
  });

  it('saves S3 after a passing probe; the secret is sealed at rest and never returned', async () => {
    const view = await service.update(s3Settings());
    expect(view).toEqual({
      provider: 's3',
      bucket: 'archive',
      folder: 'mail',
      retentionDays: 90,
      s3: { region: 'us-east-1', endpoint: s3server.endpoint, forcePathStyle: null, accessKeyId: s3server.accessKeyId, secretAccessKeySet: true },
      gcs: null,
      updatedAt: new Date(clock.t).toISOString(),
    });
    expect(guarded).toEqual([['127.0.0.1', 's3.endpoint']]);
    const raw = (await store.get<{ s3: { secretAccessKey: unknown } }>(STORAGE_SETTINGS_KEY)) as { s3: { secretAccessKey: { sealed: string } } };
    expect(raw.s3.secretAccessKey.sealed).toEqual(expect.any(String));
    expect(raw.s3.secretAccessKey.sealed).not.toContain(s3server.secretAccessKey);
    const shown = JSON.stringify(await service.view());
    expect(shown).not.toContain(s3server.secretAccessKey);
    expect(shown).not.toContain('sealed');
    expect((await service.effective()).s3?.secretAccessKey).toBe(s3server.secretAccessKey);
  });

  it('keeps the saved secret when a PUT omits it (the kept secret still signs correctly)', async () => {
    await service.update(s3Settings());
    clock.t += 60_000;
    const view = await service.update({ folder: 'mail-2026', s3: { region: 'us-east-1' } });
    expect(view).toMatchObject({ folder: 'mail-2026', s3: { secretAccessKeySet: true, accessKeyId: s3server.accessKeyId } });
    expect((await service.effective()).s3?.secretAccessKey).toBe(s3server.secretAccessKey);
  });

  it('refuses a wrong secret (400 on s3.secretAccessKey with the provider words); the old settings stay in force', async () => {
    await service.update(s3Settings());
    const before = await service.view();
    const archiveBefore = await service.archive();
    clock.t += 60_000;
    const err = await failure(service.update({ s3: { secretAccessKey: 'not-the-secret' } }));
    expect(err.code).toBe('validation_failed');
    expect(err.fields).toEqual([{ path: 's3.secretAccessKey', message: expect.stringContaining('connection test failed (auth)') }]);
    expect(err.message).toContain('The request signature we calculated does not match the signature you provided');
    expect(err.message).not.toContain('not-the-secret');
    expect(await service.view()).toEqual(before);
    expect((await service.effective()).s3?.secretAccessKey).toBe(s3server.secretAccessKey);
    expect(await service.archive()).toBe(archiveBefore);
    expect(changes).toBe(1);
  });

  it('refuses a missing bucket (field bucket) and an unreachable endpoint (field s3.endpoint)', async () => {
    await service.update(s3Settings());
    const before = await service.view();
    const noBucket = await failure(service.update({ bucket: 'no-such-bucket' }));
    expect(noBucket.fields).toEqual([{ path: 'bucket', message: expect.stringContaining('connection test failed (no_bucket)') }]);
    const closed = await freePort();
    const down = await failure(service.update({ s3: { endpoint: `http://127.0.0.1:${closed}` } }));
    expect(down.fields).toEqual([{ path: 's3.endpoint', message: expect.stringContaining('connection test failed (network)') }]);
    expect(await service.view()).toEqual(before);
    // The saved configuration still works.
    const archive = await service.archive();
    await archive.put('mail/S1/x.eml', new TextEncoder().encode('x'), 'message/rfc822');
    expect(await archive.list('mail/S1/', 10)).toEqual(['mail/S1/x.eml']);
  });

  it('refuses an endpoint host the outbound guard refuses, before any probe', async () => {
    refuseHosts = true;
    const err = await failure(service.update(s3Settings()));
    expect(err.fields).toEqual([{ path: 's3.endpoint', message: 'resolves to a private or loopback address' }]);
    expect(await store.get(STORAGE_SETTINGS_KEY)).toBeUndefined();
  });

  it('test connection: the saved configuration, or a candidate merged over it, saving nothing', async () => {
    await service.update(s3Settings());
    const saved = await store.get(STORAGE_SETTINGS_KEY);
    expect(await service.test()).toEqual({ ok: true });
    expect(await service.test({})).toEqual({ ok: true });
    expect(await service.test({ s3: { secretAccessKey: 'wrong' } })).toMatchObject({ ok: false, error: { code: 'auth', message: expect.stringContaining('SignatureDoesNotMatch') } });
    expect(await service.test({ s3: { accessKeyId: 'AKIAUNKNOWN' } })).toMatchObject({ ok: false, error: { code: 'auth', message: expect.stringContaining('InvalidAccessKeyId') } });
    expect(await service.test({ bucket: 'no-such-bucket' })).toMatchObject({ ok: false, error: { code: 'no_bucket' } });
    const closed = await freePort();
    expect(await service.test({ s3: { endpoint: `http://127.0.0.1:${closed}` } })).toMatchObject({ ok: false, error: { code: 'network', message: expect.stringContaining('ECONNREFUSED') } });
    expect(await service.test({ provider: 'local' })).toEqual({ ok: true });
    expect(paths(await failure(service.test({ retentionDays: 7 })))).toEqual(['retentionDays']);
    expect(await store.get(STORAGE_SETTINGS_KEY)).toEqual(saved);
  });

  it('caches the ArchiveStore and rebuilds it when the settings change (also from another instance)', async () => {
    const first = await service.archive();
    expect(await service.archive()).toBe(first);
    await service.update(s3Settings());
    const second = await service.archive();
    expect(second).not.toBe(first);
    expect(second.describe()).toContain('bucket archive');
    // Another instance saves: this one notices the new rev.
    await make().update({ provider: 'local' });
    const third = await service.archive();
    expect(third.describe()).toBe(`local folder ${join(dataDir, 'archive')}`);
    // Switching back to S3 keeps the saved S3 access (and its secret).
    expect(await service.update({ provider: 's3' })).toMatchObject({ provider: 's3', s3: { secretAccessKeySet: true } });
  });

  it('answers 409 when another save lands while the probe runs', async () => {
    let racing = false;
    const slow = new StorageService({
      store,
      secrets,
      clock,
      hostGuard: {
        // Runs between this update's read and its commit: another instance saves meanwhile.
        check: async () => {
          if (!racing) {
            racing = true;
            await make().update({ retentionDays: 30 });
          }
        },
      },
      createArchive,
    });
    const err = await failure(slow.update(s3Settings()));
    expect(err.code).toBe('conflict');
    expect(await service.view()).toMatchObject({ provider: 'local', retentionDays: 30 });
  });
});

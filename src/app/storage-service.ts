// Email data storage settings (R-STO-1..3): view with write-only secrets, validated PUT that must pass the connection
// test before it is saved (sealed, optimistic concurrency), test connection, and the current ArchiveStore.
import { ArchiveError, normalizeArchiveFolder, probeArchive, type ArchiveErrorCode, type ArchiveSettings, type ArchiveStore, type ArchiveTestResult } from '../core/archive.js';
import { AppError, conflict, validationError } from '../core/errors.js';
import { randomBase32 } from '../core/ids.js';
import { CommitConflictError, type Clock, type SecretBox, type Store } from '../core/ports.js';
import {
  StorageDocumentSchema,
  StoragePatchSchema,
  StorageSettingsSchema,
  defaultStorageSettings,
  parseServiceAccountKey,
  storageFieldErrors,
  type StorageDocument,
  type StoragePatch,
  type StorageSettings,
  type StorageView,
} from '../config/storage.js';
import { parseOrThrow } from '../config/validation.js';

/** `storage-settings`: the storage settings document (StorageDocument: settings, secrets sealed, `rev`, `updatedAt`). */
export const STORAGE_SETTINGS_KEY = 'storage-settings';

export interface StorageServiceDeps {
  store: Store;
  secrets: SecretBox;
  clock: Clock;
  /** Outbound host guard (R-REL-4): throws a 400 AppError naming `field` when the host may not be reached. */
  hostGuard: { check(host: string, field: string): Promise<unknown> };
  /** Builds the store for effective settings (adapters/archive createArchiveStore, bound to DATA_DIR). */
  createArchive(settings: ArchiveSettings): ArchiveStore;
  /** Called after every successful save. */
  onChange?(): void;
  /** Random part of probe object names (tests); default 10 base32 characters. */
  random?(): string;
}

type Sealed = { sealed: string };

/** A secret while a PUT is merged: the stored sealed value (kept) or a new plaintext (given). */
type SecretValue = { kept: Sealed } | { given: string };

interface MergedS3 {
  region: string | undefined;
  endpoint: string | null;
  forcePathStyle: boolean | null;
  accessKeyId: string | undefined;
  secretAccessKey: SecretValue | undefined;
}

interface MergedGcs {
  serviceAccountKey: SecretValue | undefined;
  clientEmail: string;
  projectId: string | null;
}

interface Merged {
  provider: StorageSettings['provider'];
  bucket: string;
  folder: string;
  retentionDays: StorageSettings['retentionDays'];
  s3: MergedS3 | null;
  gcs: MergedGcs | null;
}

interface Loaded {
  settings: StorageSettings;
  /** Stored `rev`; null when nothing is stored yet; undefined when the stored document is unreadable. */
  rev: number | null | undefined;
  updatedAt: string | null;
}

export class StorageService {
  private cached: { rev: number | null; store: ArchiveStore } | undefined;

  constructor(private readonly deps: StorageServiceDeps) {}

  /** GET /api/storage: the settings with each secret replaced by `<field>Set` (SPEC §11b). */
  async view(): Promise<StorageView> {
    const loaded = await this.load();
    return toView(loaded.settings, loaded.updatedAt);
  }

  /** The effective settings with secrets opened, for building the archive store only (never for an API answer). */
  async effective(): Promise<ArchiveSettings> {
    return this.open((await this.load()).settings);
  }

  /**
   * PUT /api/storage: merges the patch over the saved settings, validates every field (400 naming each path),
   * checks the S3 endpoint host, runs the connection test, and saves only when it passes; a failing test answers
   * 400 naming the field most likely at fault, with the provider's own words, and the old settings stay in force.
   */
  async update(patch: unknown): Promise<StorageView> {
    const parsed = parseOrThrow(StoragePatchSchema, patch);
    const loaded = await this.load();
    const merged = this.merge(loaded.settings, parsed);
    const effective = await this.effectiveOf(merged);
    await this.guardHosts(effective);
    const result = await this.probe(effective);
    if (!result.ok) {
      const path = failureField(effective, result.error.code, result.error.message);
      throw new AppError('validation_failed', `Connection test failed (${result.error.code}): ${result.error.message}`, [
        { path, message: `connection test failed (${result.error.code}): ${result.error.message}` },
      ]);
    }
    const settings = await this.seal(merged);
    const updatedAt = new Date(this.deps.clock.now()).toISOString();
    const doc: StorageDocument = StorageDocumentSchema.parse({ ...settings, rev: (loaded.rev ?? 0) + 1, updatedAt });
    const ops =
      loaded.rev === undefined
        ? [{ op: 'put' as const, key: STORAGE_SETTINGS_KEY, value: doc }]
        : [
            { op: 'check' as const, key: STORAGE_SETTINGS_KEY, rev: loaded.rev },
            { op: 'put' as const, key: STORAGE_SETTINGS_KEY, value: doc },
          ];
    try {
      await this.deps.store.commit(ops);
    } catch (err) {
      if (err instanceof CommitConflictError) throw conflict('The storage settings were changed by another request meanwhile; read them again and retry');
      throw err;
    }
    this.cached = undefined;
    this.deps.onChange?.();
    return toView(settings, updatedAt);
  }

  /**
   * POST /api/storage/test: a candidate (merged over the saved settings like a PUT; omitted secrets = the saved
   * ones) or nothing (= the saved settings). Invalid fields and refused hosts answer 400; otherwise the probe's result.
   */
  async test(candidate?: unknown): Promise<ArchiveTestResult> {
    const parsed = parseOrThrow(StoragePatchSchema, candidate ?? {});
    const loaded = await this.load();
    const effective = await this.effectiveOf(this.merge(loaded.settings, parsed));
    await this.guardHosts(effective);
    return this.probe(effective);
  }

  /** The ArchiveStore of the saved settings; rebuilt when they change (here or in another instance: `rev` differs). */
  async archive(): Promise<ArchiveStore> {
    const loaded = await this.load();
    const rev = loaded.rev ?? null;
    if (this.cached && this.cached.rev === rev) return this.cached.store;
    const store = this.deps.createArchive(await this.open(loaded.settings));
    this.cached = { rev, store };
    return store;
  }

  // -------------------------------------------------------------------------------------------------

  private async load(): Promise<Loaded> {
    const stored = await this.deps.store.get<unknown>(STORAGE_SETTINGS_KEY);
    if (stored === undefined || stored === null) return { settings: defaultStorageSettings(), rev: null, updatedAt: null };
    const parsed = StorageDocumentSchema.safeParse(stored);
    if (parsed.success) {
      const { rev, updatedAt, ...settings } = parsed.data;
      return { settings, rev, updatedAt };
    }
    // Never expected (every save is validated): answer the defaults rather than take the service down; the next
    // save overwrites the unreadable document.
    return { settings: defaultStorageSettings(), rev: undefined, updatedAt: null };
  }

  /** The patch over the saved settings: objects merge field by field, `null` clears a provider block. */
  private merge(saved: StorageSettings, patch: StoragePatch): Merged {
    let s3: MergedS3 | null = saved.s3 ? { ...saved.s3, secretAccessKey: { kept: saved.s3.secretAccessKey } } : null;
    if (patch.s3 === null) s3 = null;
    else if (patch.s3 !== undefined) {
      const p = patch.s3;
      s3 = {
        region: p.region ?? s3?.region,
        endpoint: p.endpoint !== undefined ? p.endpoint : (s3?.endpoint ?? null),
        forcePathStyle: p.forcePathStyle !== undefined ? p.forcePathStyle : (s3?.forcePathStyle ?? null),
        accessKeyId: p.accessKeyId ?? s3?.accessKeyId,
        secretAccessKey: p.secretAccessKey !== undefined ? { given: p.secretAccessKey } : s3?.secretAccessKey,
      };
    }
    let gcs: MergedGcs | null = saved.gcs ? { ...saved.gcs, serviceAccountKey: { kept: saved.gcs.serviceAccountKey } } : null;
    if (patch.gcs === null) gcs = null;
    else if (patch.gcs !== undefined) {
      const given = patch.gcs.serviceAccountKey;
      if (given !== undefined) {
        const key = parseServiceAccountKey(given);
        // The patch schema already refused a bad key; this only narrows the type.
        if (typeof key === 'string') throw validationError([{ path: 'gcs.serviceAccountKey', message: key }]);
        gcs = { serviceAccountKey: { given }, clientEmail: key.clientEmail, projectId: key.projectId };
      } else gcs = gcs ?? { serviceAccountKey: undefined, clientEmail: '', projectId: null };
    }
    const merged: Merged = {
      provider: patch.provider ?? saved.provider,
      bucket: (patch.bucket ?? saved.bucket).trim(),
      folder: normalizeArchiveFolder(patch.folder ?? saved.folder),
      retentionDays: patch.retentionDays !== undefined ? patch.retentionDays : saved.retentionDays,
      s3,
      gcs,
    };
    const errors = storageFieldErrors(merged);
    if (errors.length > 0) throw validationError(errors);
    return merged;
  }

  private async secret(value: SecretValue | undefined, field: string): Promise<string> {
    if (value === undefined) throw validationError([{ path: field, message: 'is required' }]);
    return 'given' in value ? value.given : this.deps.secrets.open(value.kept.sealed);
  }

  private async sealSecret(value: SecretValue | undefined, field: string): Promise<Sealed> {
    if (value === undefined) throw validationError([{ path: field, message: 'is required' }]);
    return 'given' in value ? { sealed: await this.deps.secrets.seal(value.given) } : value.kept;
  }

  /** Effective settings of a merged candidate: secrets opened (kept ones) or as given. */
  private async effectiveOf(m: Merged): Promise<ArchiveSettings> {
    return {
      provider: m.provider,
      bucket: m.bucket,
      folder: m.folder,
      retentionDays: m.retentionDays,
      s3: m.s3
        ? {
            region: m.s3.region ?? '',
            endpoint: m.s3.endpoint,
            forcePathStyle: m.s3.forcePathStyle,
            accessKeyId: m.s3.accessKeyId ?? '',
            secretAccessKey: await this.secret(m.s3.secretAccessKey, 's3.secretAccessKey'),
          }
        : null,
      gcs: m.gcs ? { serviceAccountKey: await this.secret(m.gcs.serviceAccountKey, 'gcs.serviceAccountKey') } : null,
    };
  }

  /** The stored form of a merged candidate: new secrets sealed, kept ones as they were. */
  private async seal(m: Merged): Promise<StorageSettings> {
    return StorageSettingsSchema.parse({
      provider: m.provider,
      bucket: m.bucket,
      folder: m.folder,
      retentionDays: m.retentionDays,
      s3: m.s3
        ? {
            region: m.s3.region,
            endpoint: m.s3.endpoint,
            forcePathStyle: m.s3.forcePathStyle,
            accessKeyId: m.s3.accessKeyId,
            secretAccessKey: await this.sealSecret(m.s3.secretAccessKey, 's3.secretAccessKey'),
          }
        : null,
      gcs: m.gcs ? { serviceAccountKey: await this.sealSecret(m.gcs.serviceAccountKey, 'gcs.serviceAccountKey'), clientEmail: m.gcs.clientEmail, projectId: m.gcs.projectId } : null,
    });
  }

  /** Saved settings with their secrets opened. */
  private async open(s: StorageSettings): Promise<ArchiveSettings> {
    return {
      provider: s.provider,
      bucket: s.bucket,
      folder: s.folder,
      retentionDays: s.retentionDays,
      s3: s.s3 ? { ...s.s3, secretAccessKey: await this.deps.secrets.open(s.s3.secretAccessKey.sealed) } : null,
      gcs: s.gcs ? { serviceAccountKey: await this.deps.secrets.open(s.gcs.serviceAccountKey.sealed) } : null,
    };
  }

  /** R-REL-4: an admin-entered S3 endpoint must not reach internal addresses (unless ALLOW_PRIVATE_HOSTS allows it). */
  private async guardHosts(settings: ArchiveSettings): Promise<void> {
    if (settings.provider !== 's3' || !settings.s3?.endpoint) return;
    const host = new URL(settings.s3.endpoint).hostname.replace(/^\[(.*)\]$/, '$1');
    await this.deps.hostGuard.check(host, 's3.endpoint');
  }

  private async probe(settings: ArchiveSettings): Promise<ArchiveTestResult> {
    let store: ArchiveStore;
    try {
      store = this.deps.createArchive(settings);
    } catch (err) {
      return { ok: false, error: { code: err instanceof ArchiveError ? err.code : 'unknown', message: (err as Error).message } };
    }
    const random = this.deps.random?.() ?? randomBase32(10);
    return probeArchive(store, settings.folder, this.deps.clock.now(), random);
  }
}

/** The field a failed connection test most likely points at (for the 400's `fields`). */
function failureField(s: ArchiveSettings, code: ArchiveErrorCode, message: string): string {
  if (s.provider === 'local') return 'folder';
  if (code === 'no_bucket' || code === 'forbidden') return 'bucket';
  if (s.provider === 's3') {
    if (code === 'auth') return /InvalidAccessKeyId/.test(message) ? 's3.accessKeyId' : 's3.secretAccessKey';
    if (code === 'network' || code === 'timeout') return s.s3?.endpoint ? 's3.endpoint' : 's3.region';
    return 'provider';
  }
  if (code === 'auth') return 'gcs.serviceAccountKey';
  return 'provider';
}

function toView(s: StorageSettings, updatedAt: string | null): StorageView {
  return {
    provider: s.provider,
    bucket: s.bucket,
    folder: s.folder,
    retentionDays: s.retentionDays,
    s3: s.s3
      ? {
          region: s.s3.region,
          endpoint: s.s3.endpoint,
          forcePathStyle: s.s3.forcePathStyle,
          accessKeyId: s.s3.accessKeyId,
          secretAccessKeySet: typeof s.s3.secretAccessKey?.sealed === 'string',
        }
      : null,
    gcs: s.gcs ? { clientEmail: s.gcs.clientEmail, projectId: s.gcs.projectId, serviceAccountKeySet: typeof s.gcs.serviceAccountKey?.sealed === 'string' } : null,
    updatedAt,
  };
}

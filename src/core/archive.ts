// Mail archive (R-STO-2..4): the ArchiveStore port, its stable error codes, object naming and the connection probe.

/** Where archived objects go: a local folder (embedded default), Amazon S3 (or S3-compatible), Google Cloud Storage. */
export interface ArchiveStore {
  /** Writes (or overwrites) one object. */
  put(key: string, data: Uint8Array, contentType: string): Promise<void>;
  /** The object's bytes, or undefined when there is no such object. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keys (full keys, not relative ones) starting with `prefix`, in key order, at most `limit`. */
  list(prefix: string, limit: number): Promise<string[]>;
  /** Removes one object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** For logs and messages: where the objects go (never a secret). */
  describe(): string;
}

export const ARCHIVE_PROVIDERS = ['local', 's3', 'gcs'] as const;
export type ArchiveProvider = (typeof ARCHIVE_PROVIDERS)[number];

/** R-STO-1: the retention periods an admin may choose (null = keep forever). */
export const RETENTION_DAYS = [30, 60, 90, 180, 365] as const;
export type RetentionDays = (typeof RETENTION_DAYS)[number];

/** S3 (or S3-compatible) access, secrets in the clear: only for building the client. */
export interface ArchiveS3Settings {
  region: string;
  /** Custom endpoint of an S3-compatible store (`https://minio.example.com:9000`); null = AWS. */
  endpoint: string | null;
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible stores need; null = path style with a custom endpoint only. */
  forcePathStyle: boolean | null;
  accessKeyId: string;
  secretAccessKey: string;
}

/** GCS access: the service-account JSON key's content, in the clear. */
export interface ArchiveGcsSettings {
  serviceAccountKey: string;
}

/** The effective archive settings (secrets opened), as the archive adapters take them. */
export interface ArchiveSettings {
  provider: ArchiveProvider;
  /** Bucket name (s3, gcs); ignored by the local provider. */
  bucket: string;
  /** Folder path inside the bucket (or under the local archive root); '' = the top. */
  folder: string;
  retentionDays: RetentionDays | null;
  s3: ArchiveS3Settings | null;
  gcs: ArchiveGcsSettings | null;
}

export const ARCHIVE_ERROR_CODES = ['auth', 'no_bucket', 'forbidden', 'network', 'timeout', 'unknown'] as const;
export type ArchiveErrorCode = (typeof ARCHIVE_ERROR_CODES)[number];

/**
 * A failed archive call, classified once by the adapter. `message` keeps the provider's own words;
 * `transient` says whether retrying later may help (network, timeout, 5xx, throttling).
 */
export class ArchiveError extends Error {
  readonly code: ArchiveErrorCode;
  readonly transient: boolean;

  constructor(code: ArchiveErrorCode, message: string, options?: { transient?: boolean; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ArchiveError';
    this.code = code;
    this.transient = options?.transient ?? (code === 'network' || code === 'timeout');
  }
}

export type ArchiveTestResult = { ok: true } | { ok: false; error: { code: ArchiveErrorCode; message: string } };

export type ArchiveObjectKind = 'eml' | 'pdf' | 'metadata' | 'transcript';

const EXTENSIONS: Record<ArchiveObjectKind, string> = { eml: 'eml', pdf: 'pdf', metadata: 'json', transcript: 'json' };

const SAFE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * A folder path as keys use it: leading/trailing slashes stripped, '' for the top.
 * Throws on empty, `.` or `..` segments and on characters that are unsafe in a key or a path.
 */
export function normalizeArchiveFolder(folder: string): string {
  const trimmed = folder.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  for (const segment of trimmed.split('/')) {
    if (segment === '' || segment === '.' || segment === '..' || !/^[A-Za-z0-9_.-]{1,128}$/.test(segment)) {
      throw new RangeError(`archive folder ${JSON.stringify(folder)} has an invalid segment ${JSON.stringify(segment)}`);
    }
  }
  return trimmed;
}

const withFolder = (folder: string, rest: string): string => {
  const f = normalizeArchiveFolder(folder);
  return f === '' ? rest : `${f}/${rest}`;
};

/**
 * `<folder>/<sessionId>/<ISO time with ':' as '-'>_<kind>_<id>.<ext>`, e.g.
 * `mail/S7K2M9QX4TB/2026-11-27T21-47-08.123Z_eml_msg_7k2m9qx4tbz3h8w1.eml` (R-STO-4).
 * Names sort by time within a session and never collide because `id` is unique.
 */
export function archiveObjectKey(folder: string, sessionId: string, at: number, kind: ArchiveObjectKind, id: string): string {
  if (!SAFE_NAME.test(sessionId) || sessionId === '.' || sessionId === '..') {
    throw new RangeError(`archive session id ${JSON.stringify(sessionId)} must be 1–128 of A–Z a–z 0–9 _ . -`);
  }
  if (!SAFE_NAME.test(id)) throw new RangeError(`archive object id ${JSON.stringify(id)} must be 1–128 of A–Z a–z 0–9 _ . -`);
  if (!Number.isFinite(at) || at < 0) throw new RangeError(`archive time must be epoch milliseconds, got ${at}`);
  const ext = EXTENSIONS[kind];
  if (ext === undefined) throw new RangeError(`unknown archive object kind ${JSON.stringify(kind)}`);
  const time = new Date(at).toISOString().replace(/:/g, '-');
  return withFolder(folder, `${sessionId}/${time}_${kind}_${id}.${ext}`);
}

/** `<folder>/<sessionId>/`: where one session's objects live. */
export function archiveSessionPrefix(folder: string, sessionId: string): string {
  if (!SAFE_NAME.test(sessionId) || sessionId === '.' || sessionId === '..') {
    throw new RangeError(`archive session id ${JSON.stringify(sessionId)} must be 1–128 of A–Z a–z 0–9 _ . -`);
  }
  return withFolder(folder, `${sessionId}/`);
}

/** `<folder>/.probe/`: where the connection test writes its probe objects. */
export function archiveProbePrefix(folder: string): string {
  return withFolder(folder, '.probe/');
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

const failure = (code: ArchiveErrorCode, message: string): ArchiveTestResult => ({ ok: false, error: { code, message } });

/**
 * Test connection (R-STO-3): writes a small probe object at `<folder>/.probe/<now>-<random>.txt`, reads it back
 * and compares the bytes, lists `<folder>/.probe/` and finds it, then deletes it. A thrown ArchiveError becomes
 * its code and message (prefixed with the step that failed); anything else is `unknown`.
 */
export async function probeArchive(store: ArchiveStore, folder: string, now: number, random: string): Promise<ArchiveTestResult> {
  let prefix: string;
  try {
    prefix = archiveProbePrefix(folder);
  } catch (err) {
    return failure('unknown', (err as Error).message);
  }
  const key = `${prefix}${Math.trunc(now)}-${random.replace(/[^A-Za-z0-9_-]/g, '')}.txt`;
  const data = new TextEncoder().encode(`email-channel connection test ${new Date(now).toISOString()} ${random}\n`);
  let written = false;
  let step = 'writing the probe object';
  try {
    await store.put(key, data, 'text/plain; charset=utf-8');
    written = true;
    step = 'reading the probe object back';
    const back = await store.get(key);
    if (back === undefined) return failure('unknown', `reading back ${key}: the object just written is not there (${store.describe()})`);
    if (!sameBytes(back, data)) return failure('unknown', `reading back ${key}: got ${back.length} bytes that differ from the ${data.length} written`);
    step = 'listing the probe folder';
    const keys = await store.list(prefix, 1000);
    if (!keys.includes(key)) return failure('unknown', `listing ${prefix}: the object just written (${key}) is not listed`);
    step = 'deleting the probe object';
    await store.delete(key);
    written = false;
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return failure(err instanceof ArchiveError ? err.code : 'unknown', `${step} failed: ${message}`);
  } finally {
    // Best effort: never leave a probe behind when a later step failed.
    if (written) await store.delete(key).catch(() => undefined);
  }
}

/** Archive jobs (app/archive-service.ts runs them): purposes and target. */
export const ARCHIVE_SESSION_PURPOSE = 'archive.session';
export const ARCHIVE_TARGET = 'archive';
/** Archive jobs keep trying (with capped backoff) until the bucket is back: an outage never loses a write. */
export const ARCHIVE_ATTEMPTS = 10_000;

/** Messages waiting for their archive copy (member: message internal id; score: when stored). */
export const ARCHIVE_PENDING_INDEX = 'archive:pending';
export const ARCHIVE_BATCH_PURPOSE = 'archive.batch';
/** Messages stored within one such window share one batch job (one commit for their archive references). */
export const ARCHIVE_BATCH_WINDOW_MS = 2000;

/**
 * What a stored message adds to its own commit so that it gets archived: an entry in the pending index and the batch
 * job of its window (deduplicated by id, due just after the window closes). A batch job archives every pending message
 * stored up to when it runs, so one commit covers many messages.
 */
export function archiveWrites(messageInternalId: string, now: number): {
  ops: { op: 'index'; index: string; member: string; score: number }[];
  jobs: { id: string; purpose: string; target: string; payload: { window: number }; runAt: number; maxAttempts: number }[];
} {
  const window = Math.floor(now / ARCHIVE_BATCH_WINDOW_MS);
  return {
    ops: [{ op: 'index', index: ARCHIVE_PENDING_INDEX, member: messageInternalId, score: now }],
    jobs: [{ id: `archive:batch:${window}`, purpose: ARCHIVE_BATCH_PURPOSE, target: ARCHIVE_TARGET, payload: { window }, runAt: (window + 1) * ARCHIVE_BATCH_WINDOW_MS + 250, maxAttempts: ARCHIVE_ATTEMPTS }],
  };
}


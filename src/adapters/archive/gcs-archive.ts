// Google Cloud Storage archive (R-STO-2) over @google-cloud/storage 7: service-account key, bounded calls and retries.
import { createPrivateKey } from 'node:crypto';
import { Storage, type Bucket } from '@google-cloud/storage';
import { ArchiveError, type ArchiveStore } from '../../core/archive.js';
import { NETWORK_ERRNOS } from './s3-archive.js';

export interface GcsArchiveOptions {
  bucket: string;
  /** The service account's JSON key file content. */
  serviceAccountKey: string;
  /** Deadline of one call, retries included (default 15 s). */
  timeoutMs?: number;
  /** Retries after the first attempt, for retryable errors (default 2). */
  maxRetries?: number;
  /** Another API endpoint (tests, emulators); authentication is still used with it. */
  apiEndpoint?: string;
}

interface GcsErrorLike {
  name?: string;
  message?: string;
  /** ApiError: the HTTP status; GaxiosError / system errors: an errno-like string. */
  code?: number | string;
  status?: number;
  type?: string;
  errors?: Array<{ reason?: string; message?: string }>;
  response?: { status?: number; statusCode?: number; data?: unknown };
}

/** Google's JSON error body `{ error: { code, message, errors: [{ reason }] } }` (download errors carry it as the message). */
function googleError(text: string | undefined): { message?: string; reason?: string; code?: number } | undefined {
  if (!text || !text.trimStart().startsWith('{')) return undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: number; message?: string; errors?: Array<{ reason?: string }> } | string; error_description?: string };
    if (typeof body.error === 'object' && body.error !== null) {
      const out: { message?: string; reason?: string; code?: number } = {};
      if (body.error.message !== undefined) out.message = body.error.message;
      const reason = body.error.errors?.[0]?.reason;
      if (reason !== undefined) out.reason = reason;
      if (body.error.code !== undefined) out.code = body.error.code;
      return out;
    }
    if (typeof body.error === 'string') return { message: `${body.error}${body.error_description ? `: ${body.error_description}` : ''}`, reason: body.error };
  } catch {
    // not JSON after all
  }
  return undefined;
}

const OAUTH_AUTH_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'invalid_scope', 'access_denied']);

/**
 * One place that turns a GCS (or OAuth token, or socket) error into an ArchiveError, keeping Google's words:
 * 401 / invalid_grant → auth; 404 on the bucket → no_bucket; 403 → forbidden; socket errors → network;
 * timeouts and our deadline → timeout; 429 and 5xx → unknown but transient.
 */
export function classifyGcsError(err: unknown, where: string, deadlineHit = false): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const e = (err ?? {}) as GcsErrorLike;
  const parsed = googleError(e.message);
  const status =
    (typeof e.code === 'number' ? e.code : undefined) ?? e.status ?? e.response?.status ?? e.response?.statusCode ?? parsed?.code;
  const data = e.response?.data as { error?: unknown } | undefined;
  const oauthError = typeof data?.error === 'string' ? data.error : parsed?.reason && OAUTH_AUTH_ERRORS.has(parsed.reason) ? parsed.reason : undefined;
  const reason = e.errors?.[0]?.reason ?? parsed?.reason;
  const words = parsed?.message ?? e.errors?.[0]?.message ?? e.message ?? 'unknown error';
  const message = `${where}: ${words}`;
  const opts = { cause: err };
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const firstWord = (e.message ?? '').split(':')[0] ?? '';

  if (deadlineHit || e.name === 'AbortError' || e.type === 'request-timeout' || e.type === 'body-timeout') return new ArchiveError('timeout', message, opts);
  if ((oauthError && OAUTH_AUTH_ERRORS.has(oauthError)) || OAUTH_AUTH_ERRORS.has(firstWord) || status === 401 || reason === 'authError') {
    return new ArchiveError('auth', message, opts);
  }
  // An unusable private key fails while signing the token request.
  if (status === undefined && (errno?.startsWith('ERR_OSSL') || /DECODER routines|PEM routines|no start line/i.test(e.message ?? ''))) {
    return new ArchiveError('auth', message, opts);
  }
  if (status === 404 && /bucket/i.test(words)) return new ArchiveError('no_bucket', message, opts);
  if (status === 403 || reason === 'forbidden') return new ArchiveError('forbidden', message, opts);
  if (status === 429 || (status !== undefined && status >= 500)) return new ArchiveError('unknown', message, { ...opts, transient: true });
  if (errno === 'ETIMEDOUT' || errno === 'ESOCKETTIMEDOUT') return new ArchiveError('timeout', message, opts);
  if ((errno !== undefined && NETWORK_ERRNOS.has(errno)) || e.type === 'system' || (e.name === 'TypeError' && /fetch|network/i.test(e.message ?? ''))) {
    return new ArchiveError('network', message, opts);
  }
  return new ArchiveError('unknown', message, opts);
}

const isNoSuchObject = (err: ArchiveError): boolean => {
  const e = err.cause as GcsErrorLike | undefined;
  const status = typeof e?.code === 'number' ? e.code : (googleError(e?.message)?.code ?? e?.response?.status);
  return err.code === 'unknown' && status === 404;
};

export class GcsArchiveStore implements ArchiveStore {
  private readonly bucket: Bucket;
  private readonly timeoutMs: number;
  private readonly where: string;

  constructor(opts: GcsArchiveOptions) {
    let key: { client_email?: unknown; private_key?: unknown; project_id?: unknown };
    try {
      key = JSON.parse(opts.serviceAccountKey) as typeof key;
    } catch {
      throw new ArchiveError('auth', 'the service account key is not JSON');
    }
    if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
      throw new ArchiveError('auth', 'the service account key lacks client_email or private_key');
    }
    // Checked here: a key that cannot sign fails deep inside the upload stream, where the library hides the reason.
    try {
      createPrivateKey(key.private_key);
    } catch (err) {
      throw new ArchiveError('auth', `the service account key's private_key is not a usable private key (${(err as Error).message})`, { cause: err });
    }
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.where = `gs://${opts.bucket}`;
    const storage = new Storage({
      credentials: { client_email: key.client_email, private_key: key.private_key },
      ...(typeof key.project_id === 'string' && key.project_id !== '' ? { projectId: key.project_id } : {}),
      ...(opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint, useAuthWithCustomEndpoint: true } : {}),
      timeout: this.timeoutMs,
      retryOptions: {
        autoRetry: true,
        maxRetries: opts.maxRetries ?? 2,
        // Seconds, not milliseconds.
        totalTimeout: Math.max(1, Math.ceil(this.timeoutMs / 1000)),
        maxRetryDelay: Math.max(1, Math.ceil(this.timeoutMs / 4000)),
        retryDelayMultiplier: 2,
      },
    });
    this.bucket = storage.bucket(opts.bucket);
  }

  describe(): string {
    return this.where;
  }

  /** Runs one library call under the deadline (its own timeout and retries sit inside); errors come out classified. */
  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let deadlineHit = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadlineHit = true;
        reject(new ArchiveError('timeout', `${what} (${this.where}): no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([run(), deadline]);
    } catch (err) {
      throw classifyGcsError(err, `${what} (${this.where})`, deadlineHit);
    } finally {
      clearTimeout(timer);
    }
  }

  async put(key: string, data: Uint8Array, contentType: string): Promise<void> {
    await this.call(`put ${key}`, () =>
      this.bucket.file(key).save(Buffer.from(data.buffer, data.byteOffset, data.byteLength), {
        // One multipart request (uploadType=multipart): archive objects are small, and it is idempotent to retry.
        resumable: false,
        contentType,
        metadata: { contentType },
        timeout: this.timeoutMs,
      }),
    );
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const [buf] = await this.call(`get ${key}`, () => this.bucket.file(key).download());
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if (err instanceof ArchiveError && isNoSuchObject(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    let pageToken: string | undefined;
    while (keys.length < limit) {
      const [files, next] = await this.call(`list ${prefix}`, () =>
        this.bucket.getFiles({ prefix, maxResults: Math.min(1000, limit - keys.length), autoPaginate: false, ...(pageToken ? { pageToken } : {}) }),
      );
      for (const f of files) if (keys.length < limit) keys.push(f.name);
      const token = (next as { pageToken?: string } | null | undefined)?.pageToken;
      if (!token) break;
      pageToken = token;
    }
    return keys;
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call(`delete ${key}`, () => this.bucket.file(key).delete());
    } catch (err) {
      // A missing object is fine; a missing bucket is not (the library's ignoreNotFound would hide both).
      if (err instanceof ArchiveError && isNoSuchObject(err)) return;
      throw err;
    }
  }
}

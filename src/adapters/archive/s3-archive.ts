// Amazon S3 / S3-compatible archive (R-STO-2) over @aws-sdk/client-s3: bounded calls, errors classified once.
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ArchiveError, type ArchiveStore } from '../../core/archive.js';

export interface S3ArchiveOptions {
  bucket: string;
  region: string;
  /** Custom endpoint of an S3-compatible store; null/undefined = AWS. */
  endpoint?: string | null;
  /** Path-style URLs; null/undefined = path style with a custom endpoint, virtual-hosted style on AWS. */
  forcePathStyle?: boolean | null;
  accessKeyId: string;
  secretAccessKey: string;
  /** Deadline of one call, retries included (default 15 s). */
  timeoutMs?: number;
  /** Attempts per call, the first included (default 3). */
  maxAttempts?: number;
}

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'CredentialsProviderError',
  'RequestTimeTooSkewed',
]);
const FORBIDDEN_CODES = new Set(['AccessDenied', 'AllAccessDisabled', 'AccountProblem', 'InvalidObjectState']);
const THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'ServiceUnavailable', 'InternalError', 'RequestTimeout']);
/** Socket-level failures: the endpoint cannot be reached (or dropped the connection). */
export const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface SdkErrorLike {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

/**
 * One place that turns an SDK (or socket) error into an ArchiveError, keeping the provider's own words:
 * bad key/signature → auth; NoSuchBucket → no_bucket; AccessDenied/403 → forbidden; cannot connect → network;
 * connected but no answer in time (and our deadline) → timeout; throttling and 5xx → unknown but transient.
 */
export function classifyS3Error(err: unknown, where: string, deadlineHit = false): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const words = e.message && e.message !== name ? e.message : name || 'unknown error';
  const message = `${where}: ${name && name !== 'Error' && !words.startsWith(name) ? `${name}: ` : ''}${words}`;
  const opts = { cause: err };
  if (deadlineHit || name === 'AbortError') return new ArchiveError('timeout', message, opts);
  if (AUTH_CODES.has(name) || status === 401) return new ArchiveError('auth', message, opts);
  if (name === 'NoSuchBucket') return new ArchiveError('no_bucket', message, opts);
  if (FORBIDDEN_CODES.has(name) || status === 403) return new ArchiveError('forbidden', message, opts);
  if (THROTTLE_CODES.has(name) || status === 429 || (status !== undefined && status >= 500)) return new ArchiveError('unknown', message, { ...opts, transient: true });
  // Could not connect (refused, unknown host, reset, no connection within the connect timeout) → network, even where
  // the HTTP handler labels it TimeoutError; connected but no answer in time → timeout.
  if (e.code !== undefined && NETWORK_ERRNOS.has(e.code) && e.code !== 'ETIMEDOUT') return new ArchiveError('network', message, opts);
  if (name === 'TimeoutError' && /did not establish a connection/.test(e.message ?? '')) return new ArchiveError('network', message, opts);
  if (name === 'TimeoutError' || e.code === 'ETIMEDOUT') return new ArchiveError('timeout', message, opts);
  return new ArchiveError('unknown', message, opts);
}

export class S3ArchiveStore implements ArchiveStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly timeoutMs: number;
  private readonly where: string;

  constructor(opts: S3ArchiveOptions) {
    this.bucket = opts.bucket;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    const endpoint = opts.endpoint ?? undefined;
    this.where = endpoint ? `${endpoint} bucket ${opts.bucket}` : `s3://${opts.bucket} (${opts.region})`;
    this.client = new S3Client({
      region: opts.region,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: {
        connectionTimeout: Math.min(5_000, this.timeoutMs),
        requestTimeout: this.timeoutMs,
        throwOnRequestTimeout: true,
      },
      ...(endpoint
        ? {
            endpoint,
            forcePathStyle: opts.forcePathStyle ?? true,
            // Older S3-compatible servers reject the streaming checksums recent SDKs send by default.
            requestChecksumCalculation: 'WHEN_REQUIRED' as const,
            responseChecksumValidation: 'WHEN_REQUIRED' as const,
          }
        : { forcePathStyle: opts.forcePathStyle ?? false }),
    });
  }

  describe(): string {
    return this.where;
  }

  /** Runs one SDK call under the deadline (retries included); errors come out classified. */
  private async call<T>(what: string, run: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let deadlineHit = false;
    const timer = setTimeout(() => {
      deadlineHit = true;
      controller.abort(new Error(`no answer within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    try {
      return await run(controller.signal);
    } catch (err) {
      const classified = classifyS3Error(err, `${what} (${this.where})`, deadlineHit);
      if (deadlineHit && classified.code === 'timeout') {
        throw new ArchiveError('timeout', `${what} (${this.where}): no answer within ${this.timeoutMs} ms`, { cause: err });
      }
      throw classified;
    } finally {
      clearTimeout(timer);
    }
  }

  async put(key: string, data: Uint8Array, contentType: string): Promise<void> {
    await this.call(`put ${key}`, (abortSignal) =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data, ContentType: contentType, ContentLength: data.byteLength }), {
        abortSignal,
      }),
    );
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await this.call(`get ${key}`, async (abortSignal) => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
        if (!out.Body) return new Uint8Array(0);
        return await out.Body.transformToByteArray();
      });
    } catch (err) {
      const cause = (err as ArchiveError).cause as SdkErrorLike | undefined;
      if (cause?.name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  async list(prefix: string, limit: number): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    while (keys.length < limit) {
      const page = await this.call(`list ${prefix}`, (abortSignal) =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            MaxKeys: Math.min(1000, limit - keys.length),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          { abortSignal },
        ),
      );
      for (const item of page.Contents ?? []) if (item.Key !== undefined && keys.length < limit) keys.push(item.Key);
      if (!page.IsTruncated || !page.NextContinuationToken) break;
      token = page.NextContinuationToken;
    }
    return keys;
  }

  async delete(key: string): Promise<void> {
    await this.call(`delete ${key}`, (abortSignal) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }));
  }

  /** Frees the client's sockets. */
  close(): void {
    this.client.destroy();
  }
}

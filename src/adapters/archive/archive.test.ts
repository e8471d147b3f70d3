// Archive adapters against real or faithful stores (R-STO-2, R-STO-3): local folder on disk, S3 against s3rver on
// loopback, GCS against msw handlers of the GCS JSON API and Google's OAuth token endpoint (the library runs unchanged).
import { createHash, generateKeyPairSync, randomBytes, verify as verifySignature } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { delay, http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/ports.js';
import { startS3Server, type S3ServerHandle } from '../../../test/helpers/s3-server.js';
import { tempDirs } from '../../../test/helpers/temp-dirs.js';
import { ArchiveError, archiveObjectKey, probeArchive, type ArchiveSettings } from '../../core/archive.js';
import { classifyGcsError, classifyS3Error, createArchiveStore, GcsArchiveStore, LocalArchiveStore, S3ArchiveStore } from './index.js';

const dirs = tempDirs('ec-archive-');
afterAll(() => dirs.removeAll());

const NOW = Date.UTC(2026, 10, 27, 21, 47, 8, 123);
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined): string | undefined => (data === undefined ? undefined : new TextDecoder().decode(data));

// ---------------------------------------------------------------------------------------------------
describe('local provider (a folder on disk)', () => {
  it('is the default store under <dataDir>/archive and passes the probe', async () => {
    const dataDir = dirs.make();
    const settings: ArchiveSettings = { provider: 'local', bucket: '', folder: 'mail', retentionDays: null, s3: null, gcs: null };
    const store = createArchiveStore(settings, { dataDir });
    expect(store.describe()).toBe(`local folder ${join(dataDir, 'archive')}`);
    expect(await probeArchive(store, 'mail', NOW, 'abc')).toEqual({ ok: true });
    // The probe leaves nothing behind but its (empty) folder.
    expect(readdirSync(join(dataDir, 'archive', 'mail', '.probe'))).toEqual([]);
  });

  it('puts, gets, lists in key order and deletes objects as files under the root', async () => {
    const store = new LocalArchiveStore(dirs.make());
    const k1 = archiveObjectKey('mail', 'S1', NOW, 'eml', 'm1');
    const k2 = archiveObjectKey('mail', 'S1', NOW + 1, 'eml', 'm2');
    const k3 = archiveObjectKey('mail', 'S2', NOW, 'pdf', 'p1');
    await store.put(k2, bytes('two'), 'message/rfc822');
    await store.put(k1, bytes('one'), 'message/rfc822');
    await store.put(k3, bytes('%PDF'), 'application/pdf');
    await store.put('mail-other/x.txt', bytes('x'), 'text/plain');
    expect(existsSync(join(store.root, k1))).toBe(true);
    expect(text(await store.get(k1))).toBe('one');
    expect(await store.get('mail/S1/missing.eml')).toBeUndefined();
    expect(await store.list('mail/S1/', 10)).toEqual([k1, k2]);
    expect(await store.list('mail/', 10)).toEqual([k1, k2, k3]);
    // Key order: '-' (0x2d) sorts before '/' (0x2f).
    expect(await store.list('mail', 10)).toEqual(['mail-other/x.txt', k1, k2, k3]);
    expect(await store.list('mail/', 2)).toEqual([k1, k2]);
    expect(await store.list('nothing/', 10)).toEqual([]);
    await store.put(k1, bytes('one again'), 'message/rfc822');
    expect(text(await store.get(k1))).toBe('one again');
    await store.delete(k1);
    await store.delete(k1); // deleting a missing object is fine
    expect(await store.list('mail/S1/', 10)).toEqual([k2]);
  });

  it('refuses keys that would leave the root', async () => {
    const store = new LocalArchiveStore(dirs.make());
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', '', 'a\\b']) {
      await expect(store.put(key, bytes('x'), 'text/plain')).rejects.toBeInstanceOf(ArchiveError);
      await expect(store.get(key)).rejects.toBeInstanceOf(ArchiveError);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// S3: a real s3rver on 127.0.0.1 (test/helpers/s3-server.ts). s3rver does not verify SigV4 signatures, so the
// wrong-secret case goes through the helper's verifying proxy (`endpoint`); the rest talks to s3rver directly.

describe('S3 provider against s3rver on loopback', () => {
  let s3server: S3ServerHandle;
  let hanging: Server;
  let hangingEndpoint: string;

  beforeAll(async () => {
    s3server = await startS3Server();
    // Accepts connections and never answers: every call must still end (timeout).
    hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    hangingEndpoint = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      hanging.closeAllConnections();
      hanging.close(() => resolve());
    });
    await s3server.stop();
  });

  const s3 = (over: Partial<ConstructorParameters<typeof S3ArchiveStore>[0]> = {}) =>
    new S3ArchiveStore({
      bucket: s3server.bucket,
      region: 'us-east-1',
      endpoint: s3server.directEndpoint, // s3rver checks the key id only: any secret passes
      accessKeyId: s3server.accessKeyId,
      secretAccessKey: s3server.secretAccessKey,
      timeoutMs: 5_000,
      ...over,
    });

  it('good credentials: the probe writes, reads, lists and deletes', async () => {
    expect(await probeArchive(s3(), 'mail', NOW, 'good')).toEqual({ ok: true });
    expect(await probeArchive(s3({ endpoint: s3server.endpoint }), '', NOW, 'good')).toEqual({ ok: true });
  });

  it('stores, reads back, lists and deletes archive objects', async () => {
    const store = s3();
    const keys = Array.from({ length: 5 }, (_, i) => archiveObjectKey('obj', 'S1', NOW + i, 'eml', `m${i}`));
    for (const key of keys) await store.put(key, bytes(`body ${key}`), 'message/rfc822');
    expect(text(await store.get(keys[0] ?? ''))).toBe(`body ${keys[0]}`);
    expect(await store.get('obj/S1/none.eml')).toBeUndefined();
    expect(await store.list('obj/S1/', 100)).toEqual(keys);
    expect(await store.list('obj/S1/', 5)).toEqual(keys);
    // No truncated page here: s3rver 3.7 builds ListObjectsV2 continuation tokens with DES, which Node 20's
    // OpenSSL 3 refuses (ERR_OSSL_EVP_UNSUPPORTED), so any truncated listing answers 500 InternalError.
    for (const key of keys) await store.delete(key);
    await store.delete(keys[0] ?? ''); // already gone: fine
    expect(await store.list('obj/', 100)).toEqual([]);
  });

  it('wrong secret → auth (SignatureDoesNotMatch, through the verifying proxy)', async () => {
    const result = await probeArchive(s3({ endpoint: s3server.endpoint, secretAccessKey: 'wrong-secret' }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect(!result.ok && result.error.message).toContain('The request signature we calculated does not match the signature you provided');
  });

  it('unknown access key id → auth (s3rver itself: InvalidAccessKeyId)', async () => {
    const result = await probeArchive(s3({ accessKeyId: 'AKIAUNKNOWN' }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect(!result.ok && result.error.message).toContain('InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.');
  });

  it('missing bucket → no_bucket', async () => {
    const result = await probeArchive(s3({ bucket: 'no-such-bucket' }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'no_bucket' } });
    expect(!result.ok && result.error.message).toContain('The specified bucket does not exist');
  });

  it('unreachable endpoint (a closed loopback port) → network', async () => {
    const closed = await freePort();
    const result = await probeArchive(s3({ endpoint: `http://127.0.0.1:${closed}` }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'network' } });
    expect(!result.ok && result.error.message).toContain('ECONNREFUSED');
  });

  it('an endpoint that never answers → timeout within the deadline', async () => {
    const started = Date.now();
    const result = await probeArchive(s3({ endpoint: hangingEndpoint, timeoutMs: 400 }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('classifies SDK errors in one place (transient for throttling and 5xx)', () => {
    const sdk = (name: string, status: number, message = name) => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
    expect(classifyS3Error(sdk('AccessDenied', 403, 'Access Denied'), 'put k')).toMatchObject({ code: 'forbidden', transient: false, message: 'put k: AccessDenied: Access Denied' });
    expect(classifyS3Error(sdk('Unknown', 403), 'x').code).toBe('forbidden');
    expect(classifyS3Error(sdk('SlowDown', 503), 'x')).toMatchObject({ code: 'unknown', transient: true });
    expect(classifyS3Error(sdk('InternalError', 500), 'x')).toMatchObject({ code: 'unknown', transient: true });
    expect(classifyS3Error(sdk('SignatureDoesNotMatch', 403), 'x').code).toBe('auth');
    expect(classifyS3Error(Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND' }), 'x')).toMatchObject({ code: 'network', transient: true });
    expect(classifyS3Error(Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' }), 'x').code).toBe('network');
    expect(classifyS3Error(Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'x')).toMatchObject({ code: 'timeout', transient: true });
    const noConnect = '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 5000 ms.';
    expect(classifyS3Error(Object.assign(new Error(noConnect), { name: 'TimeoutError' }), 'x').code).toBe('network');
  });
});

// ---------------------------------------------------------------------------------------------------
// GCS: msw handlers faithful to the GCS JSON API (upload/storage/v1 multipart and media uploads, objects get with
// alt=media and hashes, list, delete; Google's error shape) and to Google's OAuth token endpoint (JWT bearer grant
// signed with the service account's RSA key, verified here with its public key). @google-cloud/storage 7 runs unchanged:
// its token request goes to https://www.googleapis.com/oauth2/v4/token (gtoken 7); newer clients use
// https://oauth2.googleapis.com/token, so both are served.

const TOKEN_URLS = ['https://www.googleapis.com/oauth2/v4/token', 'https://oauth2.googleapis.com/token'];
const GCS = 'https://storage.googleapis.com';
/** Another base URL, as an emulator would have (the `apiEndpoint` option); msw serves it, nothing listens there. */
const GCS_EMULATOR = 'http://127.0.0.1:4443';

/** CRC32C (Castagnoli), as GCS reports it: base64 of the big-endian 32-bit value. */
const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
function crc32c(data: Uint8Array): string {
  let crc = 0xffffffff;
  for (const b of data) crc = (CRC32C_TABLE[(crc ^ b) & 0xff] ?? 0) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

interface FakeObject {
  data: Buffer;
  contentType: string;
  generation: string;
  created: string;
}

class FakeGcs {
  readonly accounts = new Map<string, { publicKey: string }>();
  readonly tokens = new Map<string, string>();
  /** bucket → objects; and which service accounts may use the bucket. */
  readonly buckets = new Map<string, { objects: Map<string, FakeObject>; members: Set<string> }>();
  readonly requests: string[] = [];
  hang = false;
  private generation = 1_700_000_000_000_000;

  /** A new service account; returns its JSON key file content (with a fresh RSA key pair). */
  addAccount(email: string): string {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    this.accounts.set(email, { publicKey });
    return JSON.stringify({
      type: 'service_account',
      project_id: 'ec-test',
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey,
      client_email: email,
      client_id: '100000000000000000001',
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: 'https://oauth2.googleapis.com/token',
    });
  }

  addBucket(name: string, members: string[]): void {
    this.buckets.set(name, { objects: new Map(), members: new Set(members) });
  }

  private static error(code: number, message: string, reason: string, extra: Record<string, string> = {}) {
    return HttpResponse.json({ error: { code, message, errors: [{ message, domain: 'global', reason, ...extra }] } }, { status: code });
  }

  private resource(bucket: string, name: string, o: FakeObject) {
    const enc = encodeURIComponent(name);
    return {
      kind: 'storage#object',
      id: `${bucket}/${name}/${o.generation}`,
      selfLink: `https://www.googleapis.com/storage/v1/b/${bucket}/o/${enc}`,
      mediaLink: `https://storage.googleapis.com/download/storage/v1/b/${bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name,
      bucket,
      generation: o.generation,
      metageneration: '1',
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.data.length),
      md5Hash: createHash('md5').update(o.data).digest('base64'),
      crc32c: crc32c(o.data),
      etag: `C${o.generation.slice(-8)}EAE=`,
      timeCreated: o.created,
      updated: o.created,
      timeStorageClassUpdated: o.created,
    };
  }

  private async token(request: Request) {
    const form = new URLSearchParams(await request.text());
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return HttpResponse.json({ error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' + form.get('grant_type') }, { status: 400 });
    }
    const [h = '', p = '', s = ''] = (form.get('assertion') ?? '').split('.');
    let claims: { iss?: string; aud?: string; exp?: number; scope?: string };
    try {
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe' }, { status: 400 });
    }
    const account = claims.iss ? this.accounts.get(claims.iss) : undefined;
    // Google answers 400 invalid_grant (RFC 6749 §5.2) for an unknown account or a bad signature.
    if (!account) return HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid grant: account not found' }, { status: 400 });
    if (!verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), account.publicKey, Buffer.from(s, 'base64url'))) {
      return HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }, { status: 400 });
    }
    if (!TOKEN_URLS.includes(claims.aud ?? '') || !claims.exp || claims.exp * 1000 < Date.now() || !claims.scope) {
      return HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.' }, { status: 400 });
    }
    const token = `ya29.fake-${randomBytes(12).toString('hex')}`;
    this.tokens.set(token, claims.iss ?? '');
    return HttpResponse.json({ access_token: token, expires_in: 3599, token_type: 'Bearer' });
  }

  private async storage(request: Request) {
    const url = new URL(request.url);
    this.requests.push(`${request.method} ${url.pathname}${url.search}`);
    if (this.hang) await delay('infinite');
    const bearer = /^Bearer (\S+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
    const email = bearer ? this.tokens.get(bearer) : undefined;
    if (!email) return FakeGcs.error(401, 'Invalid Credentials', 'authError', { locationType: 'header', location: 'Authorization' });

    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    const objects = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    const object = /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/.exec(url.pathname);
    const bucketName = decodeURIComponent((upload ?? objects ?? object)?.[1] ?? '');
    if (!upload && !objects && !object) return FakeGcs.error(404, 'Not Found', 'notFound');
    const bucket = this.buckets.get(bucketName);
    if (!bucket) return FakeGcs.error(404, 'The specified bucket does not exist.', 'notFound');
    const denied = (perm: string, what: 'object' | 'bucket') =>
      FakeGcs.error(403, `${email} does not have ${perm} access to the Google Cloud Storage ${what}. Permission '${perm}' denied on resource (or it may not exist).`, 'forbidden');

    if (upload && request.method === 'POST') {
      if (!bucket.members.has(email)) return denied('storage.objects.create', 'object');
      const body = Buffer.from(await request.arrayBuffer());
      let name = url.searchParams.get('name') ?? '';
      let contentType = request.headers.get('content-type') ?? 'application/octet-stream';
      let data: Buffer = body;
      const uploadType = url.searchParams.get('uploadType');
      if (uploadType === 'multipart') {
        const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
        if (!boundary) return FakeGcs.error(400, 'Missing boundary in multipart body.', 'invalid');
        const parts = splitMultipart(body, boundary);
        const [meta, media] = parts;
        if (!meta || !media) return FakeGcs.error(400, 'Multipart body does not contain 2 parts.', 'invalid');
        const metadata = JSON.parse(meta.body.toString('utf8')) as { name?: string; contentType?: string };
        name = metadata.name ?? name;
        contentType = metadata.contentType ?? media.headers['content-type'] ?? 'application/octet-stream';
        data = Buffer.from(media.body);
      } else if (uploadType !== 'media') {
        return FakeGcs.error(400, `Upload type ${uploadType} is not served by this fake.`, 'invalid');
      }
      if (!name) return FakeGcs.error(400, 'Required', 'required');
      const o: FakeObject = { data, contentType, generation: String(this.generation++), created: new Date().toISOString() };
      bucket.objects.set(name, o);
      return HttpResponse.json(this.resource(bucketName, name, o));
    }

    if (objects && request.method === 'GET') {
      if (!bucket.members.has(email)) return denied('storage.objects.list', 'bucket');
      const prefix = url.searchParams.get('prefix') ?? '';
      const max = Math.min(1000, Number(url.searchParams.get('maxResults') ?? 1000));
      const after = url.searchParams.get('pageToken');
      const names = [...bucket.objects.keys()].filter((n) => n.startsWith(prefix) && (after === null || n > after)).sort();
      const page = names.slice(0, max);
      const items = page.map((n) => this.resource(bucketName, n, bucket.objects.get(n) as FakeObject));
      return HttpResponse.json({
        kind: 'storage#objects',
        ...(items.length > 0 ? { items } : {}),
        ...(names.length > max ? { nextPageToken: page[page.length - 1] } : {}),
      });
    }

    if (object) {
      const name = decodeURIComponent(object[2] ?? '');
      const o = bucket.objects.get(name);
      if (request.method === 'GET') {
        if (!bucket.members.has(email)) return denied('storage.objects.get', 'object');
        if (!o) return FakeGcs.error(404, `No such object: ${bucketName}/${name}`, 'notFound');
        if (url.searchParams.get('alt') !== 'media') return HttpResponse.json(this.resource(bucketName, name, o));
        return new HttpResponse(o.data, {
          status: 200,
          headers: {
            'content-type': o.contentType,
            'content-length': String(o.data.length),
            'x-goog-hash': `crc32c=${crc32c(o.data)},md5=${createHash('md5').update(o.data).digest('base64')}`,
            'x-goog-generation': o.generation,
            'x-goog-metageneration': '1',
            'x-goog-stored-content-encoding': 'identity',
            'x-goog-stored-content-length': String(o.data.length),
            'x-goog-storage-class': 'STANDARD',
          },
        });
      }
      if (request.method === 'DELETE') {
        if (!bucket.members.has(email)) return denied('storage.objects.delete', 'object');
        if (!o) return FakeGcs.error(404, `No such object: ${bucketName}/${name}`, 'notFound');
        bucket.objects.delete(name);
        return new HttpResponse(null, { status: 204 });
      }
    }
    return FakeGcs.error(405, 'Method Not Allowed', 'methodNotAllowed');
  }

  handlers() {
    return [
      ...TOKEN_URLS.map((u) => http.post(u, ({ request }) => this.token(request))),
      ...[GCS, GCS_EMULATOR].map((base) => http.all(`${base}/*`, ({ request }) => this.storage(request))),
    ];
  }
}

/** Splits a multipart/related body into its parts (headers lowercased). */
function splitMultipart(body: Buffer, boundary: string): Array<{ headers: Record<string, string>; body: Buffer }> {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Array<{ headers: Record<string, string>; body: Buffer }> = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    const chunk = body.subarray(start + 2, next - 2); // after CRLF, before CRLF--boundary
    const split = chunk.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of chunk.subarray(0, split).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: chunk.subarray(split + 4) });
    at = next;
  }
  return parts;
}

describe('GCS provider against msw fakes of the GCS JSON API and OAuth token endpoint', () => {
  const fake = new FakeGcs();
  const server = setupServer(...fake.handlers());
  const writer = 'archiver@ec-test.iam.gserviceaccount.com';
  const outsider = 'outsider@ec-test.iam.gserviceaccount.com';
  let writerKey: string;
  let outsiderKey: string;

  beforeAll(() => {
    writerKey = fake.addAccount(writer);
    outsiderKey = fake.addAccount(outsider);
    fake.addBucket('ec-archive', [writer]);
    // Only these tests talk to Google: anything the fake does not serve is an error, never a real request.
    server.listen({ onUnhandledRequest: 'error' });
  });
  afterAll(() => server.close());

  const gcs = (over: Partial<ConstructorParameters<typeof GcsArchiveStore>[0]> = {}) =>
    new GcsArchiveStore({ bucket: 'ec-archive', serviceAccountKey: writerKey, timeoutMs: 5_000, ...over });

  it('good key: the probe writes (multipart upload), reads, lists and deletes', async () => {
    fake.requests.length = 0;
    const settings: ArchiveSettings = { provider: 'gcs', bucket: 'ec-archive', folder: 'mail', retentionDays: 30, s3: null, gcs: { serviceAccountKey: writerKey } };
    const store = createArchiveStore(settings, { dataDir: dirs.make(), timeoutMs: 5_000 });
    expect(store.describe()).toBe('gs://ec-archive');
    expect(await probeArchive(store, 'mail', NOW, 'good')).toEqual({ ok: true });
    const key = encodeURIComponent(`mail/.probe/${NOW}-good.txt`);
    expect(fake.requests).toEqual([
      `POST /upload/storage/v1/b/ec-archive/o?uploadType=multipart&name=${key}`,
      `GET /storage/v1/b/ec-archive/o/${key}?alt=media`,
      'GET /storage/v1/b/ec-archive/o?prefix=mail%2F.probe%2F&maxResults=1000',
      `DELETE /storage/v1/b/ec-archive/o/${key}`,
    ]);
    expect(fake.buckets.get('ec-archive')?.objects.size).toBe(0);
  });

  it('stores bytes and content type, reads them back (hash-checked), lists pages and deletes', async () => {
    const store = gcs();
    const keys = Array.from({ length: 5 }, (_, i) => archiveObjectKey('obj', 'S1', NOW + i, 'eml', `m${i}`));
    const binary = new Uint8Array([0, 255, 13, 10, 45, 45, 1, 2, 3]);
    for (const key of keys) await store.put(key, binary, 'message/rfc822');
    expect(fake.buckets.get('ec-archive')?.objects.get(keys[0] ?? '')?.contentType).toBe('message/rfc822');
    expect(await store.get(keys[0] ?? '')).toEqual(binary);
    expect(await store.get('obj/S1/none.eml')).toBeUndefined();
    expect(await store.list('obj/', 100)).toEqual(keys);
    expect(await store.list('obj/', 2)).toEqual(keys.slice(0, 2));
    for (const key of keys) await store.delete(key);
    await store.delete(keys[0] ?? ''); // already gone: fine
    expect(await store.list('obj/', 100)).toEqual([]);
  });

  it('another API endpoint (apiEndpoint, e.g. an emulator) is used with authentication still on', async () => {
    fake.requests.length = 0;
    const settings: ArchiveSettings = { provider: 'gcs', bucket: 'ec-archive', folder: '', retentionDays: null, s3: null, gcs: { serviceAccountKey: writerKey } };
    const store = createArchiveStore(settings, { dataDir: dirs.make(), timeoutMs: 5_000, gcsApiEndpoint: GCS_EMULATOR });
    expect(await probeArchive(store, '', NOW, 'emu')).toEqual({ ok: true });
    expect(fake.requests[0]).toBe(`POST /upload/storage/v1/b/ec-archive/o?uploadType=multipart&name=${encodeURIComponent(`.probe/${NOW}-emu.txt`)}`);
    expect(fake.requests).toHaveLength(4);
  });

  it('a key the token endpoint refuses (invalid_grant) → auth', async () => {
    // Right client_email, another private key: Google answers 400 invalid_grant "Invalid JWT Signature."
    const forged = JSON.stringify({ ...JSON.parse(writerKey), private_key: JSON.parse(outsiderKey).private_key });
    const result = await probeArchive(gcs({ serviceAccountKey: forged }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect(!result.ok && result.error.message).toContain('invalid_grant: Invalid JWT Signature.');
    const unknown = JSON.stringify({ ...JSON.parse(writerKey), client_email: 'deleted@ec-test.iam.gserviceaccount.com' });
    expect(await probeArchive(gcs({ serviceAccountKey: unknown }), 'mail', NOW, 'x')).toMatchObject({ ok: false, error: { code: 'auth', message: expect.stringContaining('account not found') } });
    // A private key that cannot sign is refused when the store is built (inside the upload the library hides why).
    const broken = JSON.stringify({ ...JSON.parse(writerKey), private_key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' });
    expect(() => gcs({ serviceAccountKey: broken })).toThrow(expect.objectContaining({ code: 'auth', message: expect.stringContaining('not a usable private key') }));
  });

  it('missing bucket → no_bucket', async () => {
    const result = await probeArchive(gcs({ bucket: 'ec-missing' }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'no_bucket' } });
    expect(!result.ok && result.error.message).toContain('The specified bucket does not exist.');
  });

  it('an account without access to the bucket → forbidden', async () => {
    const result = await probeArchive(gcs({ serviceAccountKey: outsiderKey }), 'mail', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(!result.ok && result.error.message).toContain(`${outsider} does not have storage.objects.create access`);
  });

  it('a network failure → network; no answer → timeout within the deadline', async () => {
    server.use(http.all(`${GCS}/*`, () => HttpResponse.error(), { once: false }));
    const down = await probeArchive(gcs({ maxRetries: 1 }), 'mail', NOW, 'x');
    server.resetHandlers();
    expect(down).toMatchObject({ ok: false, error: { code: 'network' } });
    fake.hang = true;
    const started = Date.now();
    const slow = await probeArchive(gcs({ timeoutMs: 400 }), 'mail', NOW, 'x');
    fake.hang = false;
    expect(slow).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('classifies Google errors in one place (transient for 429 and 5xx)', () => {
    const api = (code: number, message: string, reason: string) => Object.assign(new Error(message), { code, errors: [{ reason, message }] });
    expect(classifyGcsError(api(503, 'Backend Error', 'backendError'), 'x')).toMatchObject({ code: 'unknown', transient: true });
    expect(classifyGcsError(api(429, 'rate', 'rateLimitExceeded'), 'x')).toMatchObject({ code: 'unknown', transient: true });
    expect(classifyGcsError(api(401, 'Invalid Credentials', 'authError'), 'x').code).toBe('auth');
    expect(classifyGcsError(api(404, 'No such object: b/o', 'notFound'), 'x').code).toBe('unknown');
    // Download errors carry the JSON body as their message.
    const body = JSON.stringify({ error: { code: 404, message: 'The specified bucket does not exist.', errors: [{ reason: 'notFound' }] } });
    expect(classifyGcsError(Object.assign(new Error(body), { code: 404 }), 'get k')).toMatchObject({ code: 'no_bucket', message: 'get k: The specified bucket does not exist.' });
  });
});

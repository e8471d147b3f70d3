// A private S3-protocol server for tests: s3rver on 127.0.0.1 (random port, temp dir, bucket `archive`) behind a
// small node:http proxy that verifies AWS SigV4 signatures. s3rver checks that the access key id exists (S3RVER)
// but not the signature ("Signature version 4 calculation is unimplemented" in its auth middleware), so without the
// proxy a wrong secret would pass; the proxy answers S3's own SignatureDoesNotMatch. The backend can be stopped and
// started again on the same port and directory (an outage) while the endpoint stays the same.
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;

export const S3_ACCESS_KEY_ID = 'S3RVER';

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** True when the request's `Authorization: AWS4-HMAC-SHA256 …` signature matches the one `secret` gives. */
export function sigV4Matches(req: IncomingMessage, secret: string): boolean {
  const m = /^AWS4-HMAC-SHA256 Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const [, date = '', region = '', service = '', signed = '', signature] = m;
  const [path = '/', query = ''] = (req.url ?? '/').split('?', 2);
  const canonicalQuery = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const [k = '', v = ''] = p.split('=', 2);
      return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = signed
    .split(';')
    .map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonical = [req.method, path, canonicalQuery, headers, signed, String(req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD')].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', String(req.headers['x-amz-date']), `${date}/${region}/${service}/aws4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n');
  return hmac(hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request'), toSign).toString('hex') === signature;
}

export interface S3ServerHandle {
  /** The verifying proxy: what the service is configured with. */
  endpoint: string;
  /** s3rver itself (no signature check). */
  directEndpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The bucket's objects on disk live under here. */
  directory: string;
  /** An outage: s3rver goes away (the proxy answers by dropping connections). */
  stopBackend(): Promise<void>;
  /** Back on the same port, with the same data. */
  startBackend(): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Server(opts: { secret?: string; bucket?: string } = {}): Promise<S3ServerHandle> {
  const secret = opts.secret ?? 'ec-test-s3-secret/7c1d';
  const bucket = opts.bucket ?? 'archive';
  const directory = mkdtempSync(join(tmpdir(), 'ec-s3rver-'));
  let backend: S3rverInstance | null = null;
  let port = 0;
  const startBackend = async () => {
    backend = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: bucket }] });
    port = (await backend.run()).port;
  };
  await startBackend();
  const proxy: Server = createServer((req, res) => {
    if (!sigV4Matches(req, secret)) {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><RequestId>proxy</RequestId></Error>',
      );
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    directEndpoint: `http://127.0.0.1:${port}`,
    accessKeyId: S3_ACCESS_KEY_ID,
    secretAccessKey: secret,
    bucket,
    directory,
    startBackend,
    async stopBackend() {
      const b = backend;
      backend = null;
      await b?.close();
    },
    async stop() {
      await new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      });
      await backend?.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

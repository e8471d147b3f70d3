// SPEC §11b conventions through the app: errors, uploads, jobs, health, metrics, OpenAPI [R-API-1, R-API-2].
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentJobError } from '../../src/core/ports.js';
import { startTestService, TEST_ADMIN_TOKEN, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ env: { UPLOAD_MAX_BYTES: '4096' } });
});
afterAll(async () => {
  await svc?.stop();
});

async function upload(parts: { name: string; filename: string; type: string; bytes: Uint8Array }[], token: string | null = TEST_ADMIN_TOKEN) {
  const form = new FormData();
  for (const p of parts) form.append(p.name, new Blob([p.bytes], { type: p.type }), p.filename);
  const headers: Record<string, string> = {};
  if (token) headers['authorization'] = `Bearer ${token}`;
  const res = await svc.services.app.request('/api/uploads', { method: 'POST', body: form, headers });
  return { status: res.status, body: (await res.json()) as any };
}

describe('errors', () => {
  it('an unknown route is a JSON 404', async () => {
    const res = await svc.call('GET', '/api/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
  });
  it('a write with a non-JSON content type is a 400 naming the body', async () => {
    const res = await svc.services.app.request('/api/settings', {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'text/plain' },
      body: 'emailChannel=on',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.fields[0].path).toBe('(body)');
  });
});

describe('uploads (POST /api/uploads)', () => {
  it('stores one file and answers its metadata with 201', async () => {
    const bytes = new TextEncoder().encode('hello, attachment');
    const res = await upload([{ name: 'file', filename: '../../etc/report.txt', type: 'text/plain', bytes }]);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ filename: 'report.txt', contentType: 'text/plain', size: bytes.length });
    expect(res.body.id).toMatch(/^upl_[0-9a-z]{16}$/);
    expect(await svc.services.store.get(`upload:${res.body.id}`)).toMatchObject({ size: bytes.length });
  });
  it('refuses a file over the limit with 413', async () => {
    const res = await upload([{ name: 'file', filename: 'big.bin', type: 'application/octet-stream', bytes: new Uint8Array(10_000) }]);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
  });
  it('refuses a request without a file, or with two, naming `file`', async () => {
    const none = await upload([{ name: 'other', filename: 'a.txt', type: 'text/plain', bytes: new Uint8Array(3) }]);
    expect(none.status).toBe(400);
    expect(none.body.error.fields[0].path).toBe('file');
    const two = await upload([
      { name: 'file', filename: 'a.txt', type: 'text/plain', bytes: new Uint8Array(3) },
      { name: 'file', filename: 'b.txt', type: 'text/plain', bytes: new Uint8Array(3) },
    ]);
    expect(two.status).toBe(400);
  });
  it('needs a token', async () => {
    const res = await upload([{ name: 'file', filename: 'a.txt', type: 'text/plain', bytes: new Uint8Array(3) }], null);
    expect(res.status).toBe(401);
  });
});

describe('jobs (GET /api/jobs, POST /api/jobs/:id/retry)', () => {
  it('shows a job that failed for good and runs it again on retry', async () => {
    let fail = true;
    let runs = 0;
    svc.services.jobs.register('test.flaky', async () => {
      runs++;
      if (fail) throw new PermanentJobError('the CRM said no');
    });
    await svc.services.jobs.enqueue([{ id: 'job-flaky-1', purpose: 'test.flaky', target: 'crm:test', payload: { n: 1 } }]);
    await expect.poll(async () => (await svc.call('GET', '/api/jobs?state=failed')).body.items.length, { timeout: 10_000 }).toBe(1);
    const failed = (await svc.call('GET', '/api/jobs?state=failed')).body;
    expect(failed.items[0]).toMatchObject({ id: 'job-flaky-1', purpose: 'test.flaky', target: 'crm:test', state: 'failed', lastError: expect.stringContaining('the CRM said no') });
    expect(failed.nextCursor).toBeNull();
    fail = false;
    const retry = await svc.call('POST', '/api/jobs/job-flaky-1/retry');
    expect(retry.status).toBe(200);
    await expect.poll(async () => (await svc.services.jobs.get('job-flaky-1'))?.state, { timeout: 10_000 }).toBe('completed');
    expect(runs).toBe(2);
    const again = await svc.call('POST', '/api/jobs/job-flaky-1/retry');
    expect(again.status).toBe(409);
    expect((await svc.call('POST', '/api/jobs/nope/retry')).status).toBe(404);
  });
  it('validates the state filter and the limit', async () => {
    expect((await svc.call('GET', '/api/jobs?state=exploded')).status).toBe(400);
    const big = await svc.call('GET', '/api/jobs?limit=1001');
    expect(big.status).toBe(400);
    expect(big.body.error.fields[0].path).toBe('query.limit');
  });
});

describe('health and metrics', () => {
  it('GET /health is open and reports the store', async () => {
    const res = await svc.call('GET', '/health', undefined, null);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', store: 'ok', mailboxes: [], archive: { backlog: 0, lastError: null, lastErrorAt: null, lastSuccessAt: null } });
  });
  it('serves the Zendesk ticket sidebar page openly (it holds no data; data comes through ZAF with a token)', async () => {
    const res = await svc.services.app.request('/zendesk/sidebar');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain('frame-ancestors https://*.zendesk.com');
    expect((await svc.services.app.request('/zendesk/sidebar.js')).status).toBe(200);
  });
  it('GET /metrics needs the admin token and answers Prometheus text', async () => {
    expect((await svc.call('GET', '/metrics', undefined, null)).status).toBe(401);
    const res = await svc.services.app.request('/metrics', { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await res.text()).toContain('# TYPE email_channel_http_requests_total counter');
  });
});

// GET /api/sessions/:id/transcript.pdf through the whole service, with real headless Chromium [R-CRM-3, R-REL-4].
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchedMessage } from '../../src/core/ports.js';
import { startTestService, TEST_ADMIN_TOKEN, type TestService } from '../helpers/service.js';

let svc: TestService;
let uid = 0;
const hits: string[] = [];
const tracker = createServer((req, res) => {
  hits.push(req.url ?? '');
  res.end('hit');
});
let port = 0;

function deliver(raw: string, over: Partial<FetchedMessage> = {}) {
  const bytes = Buffer.from(raw.replace(/\r?\n/g, '\r\n'));
  uid++;
  return svc.services.ingest.deliver({ accountId: 'acc_x', uidValidity: '7', uid, internalDate: Date.now(), size: bytes.length, raw: new Uint8Array(bytes), imported: false, ...over });
}

const GIF_B64 = 'R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==';

async function get(path: string, token: string | null = TEST_ADMIN_TOKEN) {
  return svc.services.app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

let sessionId = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => tracker.listen(0, '127.0.0.1', resolve));
  port = (tracker.address() as AddressInfo).port;
  svc = await startTestService();
  await deliver(
    [
      'From: Ann <ann@example.com>',
      'To: help@shop.example',
      'Subject: Printer broken',
      'Message-ID: <t1@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/related; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/html; charset=utf-8',
      '',
      `<p style="background:url(http://127.0.0.1:${port}/bg)">Hello {{name}}, see <img src="cid:shot@example.com" alt="screenshot"></p><img src="http://127.0.0.1:${port}/pixel.gif">`,
      '--b1',
      'Content-Type: image/gif',
      'Content-ID: <shot@example.com>',
      'Content-Disposition: inline; filename="shot.gif"',
      'Content-Transfer-Encoding: base64',
      '',
      GIF_B64,
      '--b1--',
      '',
    ].join('\n'),
  );
  await deliver('From: Ann <ann@example.com>\nTo: help@shop.example\nSubject: Re: Printer broken\nMessage-ID: <t2@example.com>\nIn-Reply-To: <t1@example.com>\nContent-Type: text/plain; charset=utf-8\n\nStill broken. {{#each x}}\n');
  await deliver('From: Ann <ann@example.com>\nTo: help@shop.example\nSubject: Re: Printer broken\nMessage-ID: <t3@example.com>\nIn-Reply-To: <t2@example.com>\nContent-Type: text/plain; charset=utf-8\n\nAny news?\n');
  const list = await svc.call('GET', '/api/sessions?customer=ann@example.com');
  sessionId = list.body.items[0].id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await new Promise<void>((resolve) => tracker.close(() => resolve()));
  // services.close() closed the renderer: no browser of this process is left.
  const left = execFileSync('ps', ['-eo', 'ppid=,stat=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([ppid, stat, comm]) => Number(ppid) === process.pid && !stat?.startsWith('Z') && /chrom/i.test(comm ?? ''));
  expect(left).toEqual([]);
});

describe('GET /api/sessions/:id/transcript.pdf', () => {
  it('answers the thread as a PDF attachment, fetching nothing the customer put in the mail', async () => {
    const detail = await svc.call('GET', `/api/sessions/${sessionId}`);
    expect(detail.body.messages).toHaveLength(3);
    const res = await get(`/api/sessions/${sessionId}/transcript.pdf`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${sessionId}.pdf"`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(bytes.toString('latin1').trimEnd().endsWith('%%EOF')).toBe(true);
    expect(hits).toEqual([]);
  }, 60_000);

  it('is made from the stored thread: the inline cid image from the raw message, {{ }} literally, remote images dropped', async () => {
    const html = await svc.services.transcript.html(sessionId);
    expect(html).toContain(`<img src="data:image/gif;base64,${GIF_B64}" alt="screenshot" class="inline-image">`);
    expect(html).toContain('Hello {{name}}');
    expect(html).toContain('Still broken. {{#each x}}');
    expect(html).toContain('shot.gif');
    expect(html).not.toContain('pixel.gif');
  });

  it('is open to agent tokens too', async () => {
    const agent = await svc.call('POST', '/api/agents', { name: 'Pat Agent', email: 'pat@shop.example' });
    expect(agent.status, JSON.stringify(agent.body)).toBe(201);
    const token = await svc.call('POST', `/api/agents/${agent.body.id}/tokens`);
    expect(token.status).toBe(201);
    const res = await get(`/api/sessions/${sessionId}/transcript.pdf`, token.body.token);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
  }, 60_000);

  it('answers 404 for an unknown session, 400 for a malformed id, 401 without a token', async () => {
    const unknown = await get('/api/sessions/SZZZZZZZZZZ/transcript.pdf');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'not_found' } });
    expect((await get('/api/sessions/bad%20id!/transcript.pdf')).status).toBe(400);
    const anonymous = await get(`/api/sessions/${sessionId}/transcript.pdf`, null);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: 'unauthorized' } });
  });
});

// Sessions, quarantine and queues through the HTTP API [R-SES-1, R-SES-3, R-QUE-1..3, R-API-1, SPEC §11c].
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchedMessage } from '../../src/core/ports.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let uid = 0;
function deliver(raw: string, over: Partial<FetchedMessage> = {}) {
  const bytes = Buffer.from(raw.replace(/\r?\n/g, '\r\n'));
  uid++;
  return svc.services.ingest.deliver({ accountId: 'acc_x', uidValidity: '7', uid, internalDate: Date.now(), size: bytes.length, raw: new Uint8Array(bytes), imported: false, ...over });
}
const mail = (id: string, from: string, subject: string, extra = '') =>
  `From: ${from}\nTo: help@shop.example\nSubject: ${subject}\nMessage-ID: <${id}>\n${extra}Content-Type: text/html; charset=utf-8\n\n<p onclick="x()">Hello <b>there</b><img src="https://tracker.example/p.gif"><script>alert(1)</script></p>\n`;

beforeAll(async () => {
  svc = await startTestService();
  await deliver(mail('a1@example.com', 'Ann <ann@example.com>', 'Printer broken'));
  await deliver(mail('b1@example.com', 'Bob <bob@example.com>', 'Invoice 77'));
  await deliver(mail('c1@example.com', 'Cid <cid@example.com>', 'Password reset'));
  await deliver(mail('a2@example.com', 'Ann <ann@example.com>', 'Re: Printer broken', 'In-Reply-To: <a1@example.com>\n'));
  await deliver('\x00\x01 not mail at all');
});
afterAll(async () => {
  await svc?.stop();
});

describe('GET /api/sessions', () => {
  it('lists sessions newest activity first with the summary fields', async () => {
    const res = await svc.call('GET', '/api/sessions');
    expect(res.status).toBe(200);
    expect(res.body.items.map((s: any) => s.subject)).toEqual(['Printer broken', 'Password reset', 'Invoice 77']);
    expect(res.body.items[0]).toMatchObject({ status: 'unopened', assigneeId: null, customer: { address: 'ann@example.com' }, messageCount: 2 });
    expect(res.body.nextCursor).toBeNull();
  });
  it('pages with an opaque cursor, each session exactly once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res: any = await svc.call('GET', `/api/sessions?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.body.items.map((s: any) => s.id));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(3);
    expect((await svc.call('GET', '/api/sessions?cursor=garbage!')).status).toBe(400);
  });
  it('filters by status, customer, unassigned and text', async () => {
    expect((await svc.call('GET', '/api/sessions?customer=bob@example.com')).body.items.map((s: any) => s.subject)).toEqual(['Invoice 77']);
    expect((await svc.call('GET', '/api/sessions?q=invoice')).body.items).toHaveLength(1);
    expect((await svc.call('GET', '/api/sessions?status=unopened&unassigned=true')).body.items).toHaveLength(3);
    expect((await svc.call('GET', '/api/sessions?status=closed')).body.items).toHaveLength(0);
    expect((await svc.call('GET', '/api/sessions?status=bogus')).status).toBe(400);
  });
});

describe('GET /api/sessions/:id and raw', () => {
  it('shows messages with sanitized HTML and the interactions', async () => {
    const list = await svc.call('GET', '/api/sessions?customer=ann@example.com');
    const id = list.body.items[0].id;
    const res = await svc.call('GET', `/api/sessions/${id}`);
    expect(res.status).toBe(200);
    expect(res.body.messages).toHaveLength(2);
    const html: string = res.body.messages[0].html;
    expect(html).toContain('<b>there</b>');
    expect(html).not.toMatch(/script|onclick|tracker\.example/);
    expect(res.body.messages[0]).toMatchObject({ direction: 'inbound', messageId: 'a1@example.com', from: { address: 'ann@example.com' } });
    expect(res.body.interactions.map((i: any) => i.type)).toEqual(['message_received', 'message_received']);
    const raw = await svc.services.app.request(`/api/sessions/${id}/messages/${res.body.messages[0].id}/raw`, { headers: { authorization: 'Bearer test-admin-token-0123456789abcdef' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('message/rfc822');
    expect(await raw.text()).toContain('Message-ID: <a1@example.com>');
  });
  it('answers 404 for unknown sessions and messages', async () => {
    expect((await svc.call('GET', '/api/sessions/SZZZZZZZZZZ')).status).toBe(404);
    const id = (await svc.call('GET', '/api/sessions')).body.items[0].id;
    expect((await svc.call('GET', `/api/sessions/${id}/messages/msg_nope/raw`)).status).toBe(404);
  });
});

describe('POST /api/sessions/:id/status (SPEC §11c)', () => {
  it('applies legal changes and refuses illegal ones with 409', async () => {
    const id = (await svc.call('GET', '/api/sessions?customer=bob@example.com')).body.items[0].id;
    const paused = await svc.call('POST', `/api/sessions/${id}/status`, { status: 'paused' });
    expect(paused.status).toBe(200);
    expect(paused.body.status).toBe('paused');
    expect((await svc.call('POST', `/api/sessions/${id}/status`, { status: 'reopened' })).status).toBe(409);
    expect((await svc.call('POST', `/api/sessions/${id}/status`, { status: 'closed' })).body.status).toBe('closed');
    const illegal = await svc.call('POST', `/api/sessions/${id}/status`, { status: 'active' });
    expect(illegal.status).toBe(409);
    expect(illegal.body.error.code).toBe('conflict');
    expect((await svc.call('POST', `/api/sessions/${id}/status`, { status: 'reopened' })).body.status).toBe('reopened');
    expect((await svc.call('POST', `/api/sessions/${id}/status`, { status: 'sleeping' })).status).toBe(400);
    const detail = await svc.call('GET', `/api/sessions/${id}`);
    expect(detail.body.interactions.filter((i: any) => i.type === 'status_changed' || i.type === 'closed').map((i: any) => i.data.to)).toEqual(['paused', 'closed', 'reopened']);
  });
});

describe('quarantine API', () => {
  it('lists the unparseable message with its raw bytes, and refuses a retry that still fails', async () => {
    const res = await svc.call('GET', '/api/quarantine');
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
    const entry = res.body.items[0];
    expect(entry).toMatchObject({ accountId: 'acc_x', reason: 'unparseable', state: 'open', rawAvailable: true });
    const raw = await svc.call('GET', `/api/quarantine/${entry.id}/raw`);
    expect(raw.status).toBe(200);
    expect((await svc.call('POST', `/api/quarantine/${entry.id}/retry`)).status).toBe(409);
    expect((await svc.call('POST', '/api/quarantine/qua_nope/retry')).status).toBe(404);
  });
});

describe('queues API (minimal, R-QUE-1..3)', () => {
  it('creates, lists with counts, updates and deletes queues', async () => {
    const created = await svc.call('POST', '/api/queues', { name: 'Support FR', language: 'fr' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Support FR', language: 'fr', email: { enabled: false, addresses: [], agents: [], addressCount: 0, agentCount: 0 } });
    const id = created.body.id;
    expect((await svc.call('GET', '/api/queues')).body.items.map((q: any) => q.id)).toEqual([id]);
    expect((await svc.call('PATCH', `/api/queues/${id}`, { name: 'Support France' })).body.name).toBe('Support France');
    expect((await svc.call('DELETE', `/api/queues/${id}`)).status).toBe(204);
    expect((await svc.call('GET', `/api/queues/${id}`)).status).toBe(404);
  });
  it('refuses the queue email switch while the channel is off, and bad fields', async () => {
    const off = await svc.call('POST', '/api/queues', { name: 'Q', language: 'en', email: { enabled: true } });
    expect(off.status).toBe(400);
    expect(off.body.error.fields[0].path).toBe('email.enabled');
    expect((await svc.call('POST', '/api/queues', { name: '', language: 'en' })).status).toBe(400);
    expect((await svc.call('POST', '/api/queues', { name: 'Q', language: 'not a language' })).status).toBe(400);
    await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } });
    expect((await svc.call('POST', '/api/queues', { name: 'Q', language: 'en', email: { enabled: true } })).status).toBe(201);
  });
  it('refuses an unknown account as an address', async () => {
    const res = await svc.call('POST', '/api/queues', { name: 'Q2', language: 'en', email: { addresses: ['acc_unknown'] } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].path).toBe('email.addresses.0');
  });
});

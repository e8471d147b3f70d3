// Zendesk connector against its msw fake: records, comments, files, statuses, follow-ups, coalescing, node-zendesk quirks.
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConnectorError, RECORD_MARKER, type ConnectorContext, type CreateRecordInput } from '../contract.js';
import { isFollowUpNeeded } from './errors.js';
import { createZendeskFake } from './fake.js';
import { createZendeskInstance, zendeskConfigSchema, zendeskConnector, type ZendeskConfig } from './index.js';

const URL_ = 'https://acme.zendesk.com';
const SECRET = { email: 'api@acme.example', apiToken: 'tok-123', webhookSecret: 'whsec-abc' };
const fake = createZendeskFake({ url: URL_, ...SECRET });
const server = setupServer(...fake.handlers);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => fake.reset());
afterEach(() => server.resetHandlers());

function config(over: Record<string, unknown> = {}): ZendeskConfig {
  return zendeskConfigSchema.parse({ url: URL_, ...SECRET, groupByQueue: { sales: 2003, support: 2001 }, sessionIdFieldId: 360001, statusFieldId: 360002, ...over });
}

function instance(over: Record<string, unknown> = {}, timeoutMs = 2000) {
  const ctx: ConnectorContext<ZendeskConfig> = {
    config: config(over),
    timeoutMs,
    checkHost: async () => {},
    log: { info() {}, warn() {}, error() {} },
    now: () => Date.now(),
  };
  return createZendeskInstance(ctx);
}

const input = (over: Partial<CreateRecordInput> = {}): CreateRecordInput => ({
  externalId: 'ec:S7K2M9QX4TB',
  sessionId: 'S7K2M9QX4TB',
  subject: 'Printer on fire',
  requester: { email: 'customer@example.org', name: 'Cus Tomer' },
  firstComment: { bodyText: 'Help, my printer is on fire!', public: true },
  status: 'unopened',
  queue: { id: 'support', name: 'Support' },
  assignee: { agentId: 'a1', email: 'agent1@example.com' },
  ...over,
});

describe('zendesk connector: definition', () => {
  it('has id zendesk, secrets, capabilities and the documented status map', () => {
    expect(zendeskConnector.id).toBe('zendesk');
    expect(zendeskConnector.secretFields).toEqual(['apiToken', 'webhookSecret']);
    expect(zendeskConnector.statusMap).toEqual({ unopened: 'open', reopened: 'open', active: 'open', paused: 'pending', resolved: 'solved', closed: 'solved' });
    expect(zendeskConnector.capabilities.followUps).toBe(true);
  });

  it('validates the config: https account URL, email, secrets', () => {
    expect(config().url).toBe(URL_);
    expect(zendeskConfigSchema.parse({ url: 'https://acme.zendesk.com/', ...SECRET }).url).toBe(URL_);
    expect(zendeskConfigSchema.safeParse({ url: 'https://acme.zendesk.com/api/v2', ...SECRET }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: 'http://acme.zendesk.com', ...SECRET }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: 'acme', ...SECRET }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: 'https://acme.zendesk.com/agent', ...SECRET }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: URL_, ...SECRET, email: 'nope' }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: URL_, ...SECRET, closedStatus: 'deleted' }).success).toBe(false);
    expect(zendeskConfigSchema.safeParse({ url: URL_, ...SECRET, extra: 1 }).success).toBe(false);
    expect(config({ groupByQueue: { q: '2001' } }).groupByQueue).toEqual({ q: 2001 });
  });
});

describe('zendesk connector: against the fake', () => {
  it('test(): ok with good credentials, auth with bad ones, permanent for an unknown group', async () => {
    await expect(instance().test()).resolves.toEqual({ ok: true, account: 'acme.zendesk.com' });
    await expect(instance({ apiToken: 'wrong' }).test()).rejects.toMatchObject({ kind: 'auth', status: 401 });
    await expect(instance({ groupByQueue: { x: 424242 } }).test()).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('createRecord: one call with the first comment, requester, group, assignee, tags, fields and external_id', async () => {
    const z = instance();
    const ref = await z.createRecord(input());
    expect(ref.url).toBe(`${URL_}/agent/tickets/${ref.id}`);
    expect(fake.record(ref.id)).toEqual({
      status: 'open',
      assigneeEmail: 'agent1@example.com',
      tags: [RECORD_MARKER, 'email_channel_session_s7k2m9qx4tb'],
      queue: 'Support',
      requesterEmail: 'customer@example.org',
      customFields: { '360001': 'S7K2M9QX4TB', '360002': 'unopened' },
    });
    expect(fake.comments(ref.id)).toEqual([{ body: 'Help, my printer is on fire!', public: true }]);
    expect(fake.requests().filter((r) => r.startsWith('POST /api/v2/tickets'))).toHaveLength(1);
    await expect(z.findByExternalId('ec:S7K2M9QX4TB')).resolves.toMatchObject({ id: ref.id });
    await expect(z.findByExternalId('ec:unknown')).resolves.toBeNull();
  });

  it('createRecord uploads attachments first and sends their tokens with the first comment', async () => {
    const z = instance();
    const pdf = { filename: 'invoice.pdf', contentType: 'application/pdf', bytes: new Uint8Array([37, 80, 68, 70, 45]) };
    const ref = await z.createRecord(input({ firstComment: { bodyText: 'see attached', public: false, attachments: [pdf] } }));
    expect(fake.files(ref.id)).toEqual([{ filename: 'invoice.pdf', size: 5 }]);
    const reqs = fake.requests();
    expect(reqs.indexOf('POST /api/v2/uploads.json')).toBeLessThan(reqs.indexOf('POST /api/v2/tickets.json'));
  });

  it('createRecord is idempotent: same external id twice, and after a lost answer (network error)', async () => {
    const z = instance();
    const a = await z.createRecord(input());
    const b = await z.createRecord(input());
    expect(b.id).toBe(a.id);
    expect(fake.countRecords('ec:S7K2M9QX4TB')).toBe(1);

    // 502 from the edge on the create: node-zendesk resolves it as a success; the connector must not.
    fake.injectFailure({ status: 502 }, { times: 1 });
    const c = await instance().createRecord(input({ externalId: 'ec:OTHER', sessionId: 'OTHER' })).catch((e: unknown) => e);
    // The search ran first (and failed with 502), so nothing was created: a retryable error.
    expect(c).toBeInstanceOf(ConnectorError);
    expect((c as ConnectorError).retryable).toBe(true);
    expect(fake.countRecords('ec:OTHER')).toBe(0);
  });

  it('addComment: public reply and internal note, idempotent by external id (audit metadata)', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    await z.addComment({ recordId: id, externalId: 'ec:S7K2M9QX4TB:c:1', bodyText: 'Thanks, looking into it', public: true });
    await z.addComment({ recordId: id, externalId: 'ec:S7K2M9QX4TB:c:2', bodyText: 'internal', bodyHtml: '<p>internal <b>note</b></p>', public: false });
    const again = await z.addComment({ recordId: id, externalId: 'ec:S7K2M9QX4TB:c:1', bodyText: 'Thanks, looking into it', public: true });
    expect(again.id).toMatch(/^\d+$/);
    expect(fake.comments(id)).toEqual([
      { body: 'Help, my printer is on fire!', public: true },
      { body: 'Thanks, looking into it', public: true },
      { body: 'internal note', public: false },
    ]);
  });

  it('attachFile: upload + private comment, idempotent', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    const file = { filename: 'transcript.pdf', contentType: 'application/pdf', bytes: new Uint8Array(1024), externalId: 'ec:S7K2M9QX4TB:pdf' };
    await z.attachFile(id, file);
    await z.attachFile(id, file);
    expect(fake.files(id)).toEqual([{ filename: 'transcript.pdf', size: 1024 }]);
    expect(fake.comments(id).at(-1)).toEqual({ body: 'Attached transcript.pdf', public: false });
  });

  it('setStatus maps each session status; paused/closed follow the config', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    const seen: string[] = [];
    for (const s of ['active', 'paused', 'resolved', 'reopened', 'closed'] as const) {
      await z.setStatus(id, s);
      seen.push(fake.record(id)?.status ?? '');
    }
    expect(seen).toEqual(['open', 'pending', 'solved', 'open', 'solved']);
    expect(fake.record(id)?.customFields['360002']).toBe('closed');

    const hold = instance({ pausedStatus: 'hold', closedStatus: 'closed' });
    await hold.setStatus(id, 'paused');
    expect(fake.record(id)?.status).toBe('hold');
    await hold.setStatus(id, 'closed');
    expect(fake.record(id)?.status).toBe('closed');
  });

  it('setStatus on an unknown ticket → not_found; on a non-numeric id → not_found without a call', async () => {
    const z = instance();
    await expect(z.setStatus('999999999', 'active')).rejects.toMatchObject({ kind: 'not_found', status: 404 });
    const before = fake.requestCount();
    await expect(z.setStatus('abc', 'active')).rejects.toMatchObject({ kind: 'not_found' });
    expect(fake.requestCount()).toBe(before);
  });

  it('setAssignee by email (one user search, cached), then nobody; unknown agent → not_found', async () => {
    const z = instance();
    const { id } = await z.createRecord(input({ assignee: null }));
    await z.setAssignee(id, { email: 'agent2@example.com' });
    expect(fake.record(id)?.assigneeEmail).toBe('agent2@example.com');
    await z.setAssignee(id, { email: 'AGENT2@example.com' });
    expect(fake.requests().filter((r) => r.includes('/users/search'))).toHaveLength(1);
    await z.setAssignee(id, null);
    expect(fake.record(id)?.assigneeEmail).toBeNull();
    await expect(z.setAssignee(id, { email: 'customer@example.org' })).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('setQueue moves the ticket to the mapped group; an unmapped queue is a permanent error', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    await z.setQueue?.(id, { id: 'sales', name: 'Sales' });
    expect(fake.record(id)?.queue).toBe('Sales');
    await expect(z.setQueue?.(id, { id: 'nowhere', name: 'Nowhere' })).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('listAgents pages with cursor pagination (meta.has_more, links.next)', async () => {
    fake.seedAgents(250);
    const z = instance();
    const emails = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await z.listAgents!(cursor);
      for (const a of page.agents) emails.add(a.email);
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    // 250 seeded + 2 default agents + the API admin
    expect(emails.size).toBe(253);
    expect(pages).toBe(3);
    await expect(z.listAgents!('https://evil.example/users.json')).rejects.toMatchObject({ kind: 'permanent' });
  });

  it('follow-up: an update to a closed ticket → conflict with followUpNeeded; createRecord({ followUpOf }) makes one', async () => {
    const z = instance();
    const first = await z.createRecord(input());
    fake.closeTicket(first.id); // the automation, 4 days after solved
    const err = await z.addComment({ recordId: first.id, externalId: 'ec:S7K2M9QX4TB:c:9', bodyText: 'late reply', public: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err).toMatchObject({ kind: 'conflict', status: 422, followUpNeeded: true, closedRecordId: first.id });
    expect(isFollowUpNeeded(err)).toBe(true);

    const follow = await z.createRecord(input({ followUpOf: first.id, status: 'reopened' }));
    expect(follow.id).not.toBe(first.id);
    expect(fake.followUpsOf(first.id)).toEqual([follow.id]);
    expect(fake.record(follow.id)?.tags).toContain(RECORD_MARKER);
    // Idempotent too, and the session's record is now the follow-up.
    await expect(z.createRecord(input({ followUpOf: first.id }))).resolves.toMatchObject({ id: follow.id });
    await expect(z.findByExternalId('ec:S7K2M9QX4TB')).resolves.toMatchObject({ id: follow.id });
    await z.addComment({ recordId: follow.id, externalId: 'ec:S7K2M9QX4TB:c:9', bodyText: 'late reply', public: true });
    expect(fake.comments(follow.id).at(-1)?.body).toBe('late reply');
  });
});

describe('zendesk connector: rate limits and node-zendesk quirks', () => {
  it('429 with Retry-After: node-zendesk resolves with an Error; the connector throws rate_limited with the wait', async () => {
    fake.injectFailure({ status: 429, retryAfterSeconds: 7 });
    const err = await instance().findByExternalId('ec:x').catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterMs: 7000 });
  });

  it('401 (thrown by node-zendesk with throwOriginalException) keeps its status → auth', async () => {
    fake.injectFailure({ status: 401 });
    await expect(instance().findByExternalId('ec:x')).rejects.toMatchObject({ kind: 'auth', status: 401 });
  });

  it('500/503 → transient; a dropped connection and a timeout → transient', async () => {
    fake.injectFailure({ status: 500 });
    await expect(instance().findByExternalId('ec:x')).rejects.toMatchObject({ kind: 'transient', status: 500 });
    fake.injectFailure({ status: 503 });
    await expect(instance().findByExternalId('ec:x')).rejects.toMatchObject({ kind: 'transient', status: 503 });
    fake.injectFailure({ network: true });
    await expect(instance().findByExternalId('ec:x')).rejects.toMatchObject({ kind: 'transient' });
  });

  it('times out a call that hangs (per-call timeout)', async () => {
    const { http, delay, HttpResponse } = await import('msw');
    server.use(http.get(`${URL_}/api/v2/users/me.json`, async () => {
      await delay(1500);
      return HttpResponse.json({});
    }));
    const started = Date.now();
    await expect(instance({}, 200).test()).rejects.toMatchObject({ kind: 'transient', message: expect.stringContaining('timed out') });
    expect(Date.now() - started).toBeLessThan(1400);
  });

  it('coalescing: a busy thread (39 writes) stays under 30 updates per ticket; uncoalesced it would hit 429', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    for (let i = 0; i < 13; i++) {
      // One agent reply: the comment, the status and the assignee arrive together.
      await Promise.all([
        z.addComment({ recordId: id, externalId: `ec:S7K2M9QX4TB:c:${i}`, bodyText: `reply ${i}`, public: true }),
        z.setStatus(id, i % 2 === 0 ? 'paused' : 'active'),
        z.setAssignee(id, { email: i % 2 === 0 ? 'agent1@example.com' : 'agent2@example.com' }),
      ]);
    }
    expect(fake.updateCalls(id)).toEqual({ accepted: 13, limited: 0 });
    expect(fake.comments(id)).toHaveLength(14);
    expect(fake.record(id)).toMatchObject({ status: 'pending', assigneeEmail: 'agent1@example.com' }); // the last reply (i = 12)

    // The fake enforces the limit: 30 accepted, the 31st update is a 429 with both headers.
    for (let i = 0; i < 17; i++) {
      await z.updateRecord(id, { status: i % 2 === 0 ? 'paused' : 'active' });
    }
    expect(fake.updateCalls(id).accepted).toBe(30);
    const auth = `Basic ${Buffer.from(`${SECRET.email}/token:${SECRET.apiToken}`).toString('base64')}`;
    const res = await fetch(`${URL_}/api/v2/tickets/${id}.json`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ ticket: { status: 'open' } }) });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.headers.get('zendesk-ratelimit-tickets-update')).toMatch(/^total=30; remaining=0; resets=\d+$/);
    expect(res.headers.get('x-rate-limit')).toBe('700');
    // And the connector refuses the 31st itself (rate_limited), without spending a call.
    await expect(z.setStatus(id, 'resolved')).rejects.toMatchObject({ kind: 'rate_limited' });
  });

  it('updateRecord sends status, assignee, queue and comment in one Update Ticket call', async () => {
    const z = instance();
    const { id } = await z.createRecord(input());
    const before = fake.updateCalls(id).accepted;
    const out = await z.updateRecord(id, {
      status: 'paused',
      assignee: { email: 'agent2@example.com' },
      queue: { id: 'sales', name: 'Sales' },
      comment: { externalId: 'ec:S7K2M9QX4TB:c:x', bodyText: 'we will get back to you', public: true },
    });
    expect(out.commentId).toMatch(/^\d+$/);
    expect(fake.updateCalls(id).accepted - before).toBe(1);
    expect(fake.record(id)).toMatchObject({ status: 'pending', assigneeEmail: 'agent2@example.com', queue: 'Sales' });
  });
});

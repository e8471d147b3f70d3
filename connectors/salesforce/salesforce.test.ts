// Salesforce specifics the kit does not cover: one-call composite create, idempotency after lost answers, re-auth, limits, polling.
import { delay, http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConnectorError, RECORD_MARKER, type ConnectorInstance, type CreateRecordInput } from '../contract.js';
import type { ConnectorFake } from '../kit/index.js';
import {
  createSalesforceFake,
  FAKE_AGENT_EMAIL,
  FAKE_CLIENT_ID,
  FAKE_CLIENT_SECRET,
  FAKE_INSTANCE_URL,
  FAKE_INTEGRATION_USER_ID,
  FAKE_PASSWORD,
  FAKE_QUEUES,
  FAKE_SECURITY_TOKEN,
  FAKE_USERNAME,
  SalesforceFake,
} from './fake.js';
import { salesforceConnector } from './index.js';
import { SESSION_ID_FIELD, STATUS_FIELD } from './mapping.js';

const fake = createSalesforceFake();
// The fake is what the kit drives: the compiler checks it has the kit's shape.
const asKitFake: ConnectorFake = fake;
void asKitFake;
const server = setupServer(...fake.handlers);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => fake.reset());
afterEach(() => server.resetHandlers());

const warnings: object[] = [];
const oauth = { loginUrl: FAKE_INSTANCE_URL, clientId: FAKE_CLIENT_ID, clientSecret: FAKE_CLIENT_SECRET };

function make(config: Record<string, unknown> = oauth, opts: { now?: () => number; timeoutMs?: number } = {}): ConnectorInstance {
  const parsed = salesforceConnector.configSchema.parse(config);
  return salesforceConnector.create({
    config: parsed,
    timeoutMs: opts.timeoutMs ?? 5000,
    checkHost: async () => {},
    log: { info() {}, warn: (o: object) => warnings.push(o), error() {} },
    now: opts.now ?? Date.now,
  });
}

let seq = 0;
function input(over: Partial<CreateRecordInput> = {}): CreateRecordInput {
  seq += 1;
  const requester = { email: 'casey@example.org', name: 'Casey Customer' };
  return {
    externalId: `ec:SFTEST${String(seq).padStart(5, '0')}`,
    sessionId: `SFTEST${seq}`,
    subject: 'Order 1042 never arrived',
    requester,
    firstComment: { bodyText: 'Hello, my order never arrived.', bodyHtml: '<p>Hello, my order never arrived.</p>', public: true, author: requester },
    status: 'unopened',
    queue: { id: 'Q1', name: 'Support' },
    assignee: null,
    ...over,
  };
}

async function rejected(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConnectorError) return err;
    throw new Error(`expected a ConnectorError, got ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

const restCalls = (f: SalesforceFake) => f.requests().filter((r) => r.api);

describe('salesforce: createRecord', () => {
  it('writes the Case and its first EmailMessage in ONE /composite call', async () => {
    const sf = make({ ...oauth, ownerByQueue: { Q1: FAKE_QUEUES.Support } });
    const ref = await sf.createRecord(input());
    expect(restCalls(fake).map((r) => `${r.method} ${r.path}`)).toEqual(['POST /services/data/v60.0/composite']);
    expect(fake.requests().filter((r) => !r.api).map((r) => r.path)).toEqual(['/services/oauth2/token']);
    expect(ref.url).toBe(`${FAKE_INSTANCE_URL}/lightning/r/Case/${ref.id}/view`);
    const [kase] = fake.rows('Case');
    expect(kase).toMatchObject({
      Id: ref.id,
      Subject: 'Order 1042 never arrived',
      Origin: 'Email',
      Status: 'New',
      SuppliedEmail: 'casey@example.org',
      SuppliedName: 'Casey Customer',
      OwnerId: FAKE_QUEUES.Support,
      [SESSION_ID_FIELD]: `ec:SFTEST${String(seq).padStart(5, '0')}`,
      [STATUS_FIELD]: 'unopened',
    });
    const emails = fake.rows('EmailMessage');
    expect(emails).toHaveLength(1);
    expect(emails[0]).toMatchObject({ ParentId: ref.id, Incoming: true, Status: '0', FromAddress: 'casey@example.org', TextBody: 'Hello, my order never arrived.' });
  });

  it('a retry after a lost answer finds the case (DUPLICATE_VALUE on the unique external id): one case, one email', async () => {
    const sf = make({ ...oauth, ownerByQueue: { Q1: FAKE_QUEUES.Support } });
    const data = input();
    fake.loseNextAnswers(1);
    const lost = await rejected(sf.createRecord(data));
    expect(lost.kind).toBe('transient');
    expect(fake.countRecords(data.externalId)).toBe(1);
    const ref = await sf.createRecord(data);
    expect(ref.id).toBe(fake.rows('Case')[0]?.Id);
    expect(fake.countRecords(data.externalId)).toBe(1);
    expect(fake.rows('EmailMessage')).toHaveLength(1);
    // …and a restarted service (new instance) gets the same answer.
    expect((await make().createRecord(data)).id).toBe(ref.id);
    expect(fake.rows('EmailMessage')).toHaveLength(1);
  });

  it('a refused case writes nothing: the composite error is classified (permanent), not PROCESSING_HALTED', async () => {
    const err = await rejected(make().createRecord(input({ customFields: { Nope__c: 'x' } })));
    expect(err.kind).toBe('permanent');
    expect(err.message).toContain('INVALID_FIELD');
    expect(fake.rows('Case')).toHaveLength(0);
    expect(fake.rows('EmailMessage')).toHaveLength(0);
  });

  it('an agent-started session logs its first message as outbound; an internal first note as a CaseComment', async () => {
    const sf = make();
    const agent = { email: FAKE_AGENT_EMAIL, name: 'Agent 1' };
    const out = await sf.createRecord(input({ firstComment: { bodyText: 'We noticed a problem with your order.', public: true, author: agent }, assignee: { agentId: 'A1', email: FAKE_AGENT_EMAIL } }));
    expect(fake.rows('EmailMessage')[0]).toMatchObject({ ParentId: out.id, Incoming: false, Status: '3', FromAddress: FAKE_AGENT_EMAIL, ToAddress: 'casey@example.org' });
    expect(fake.record(out.id)?.assigneeEmail).toBe(FAKE_AGENT_EMAIL);
    const note = await sf.createRecord(input({ firstComment: { bodyText: 'Internal: VIP customer', public: false } }));
    expect(fake.comments(note.id)).toEqual([{ body: expect.stringContaining('Internal: VIP customer'), public: false }]);
  });

  it('carries the marker: EmailChannel_Session_Id__c set, and no assignment rules (Sforce-Auto-Assign: FALSE)', async () => {
    let autoAssign: string | undefined;
    server.events.on('request:start', async ({ request }) => {
      if (request.url.endsWith('/composite')) {
        const body = (await request.clone().json()) as { compositeRequest: { httpHeaders?: Record<string, string> }[] };
        autoAssign = body.compositeRequest[0]?.httpHeaders?.['Sforce-Auto-Assign'];
      }
    });
    const ref = await make().createRecord(input());
    server.events.removeAllListeners();
    expect(fake.rows('Case')[0]?.[SESSION_ID_FIELD]).toMatch(/^ec:/);
    expect(RECORD_MARKER).toBe('email_channel');
    expect(autoAssign).toBe('FALSE');
    expect(ref.id).toMatch(/^500/);
  });

  it('refuses an external id longer than the field (Text(32)) before calling', async () => {
    const err = await rejected(make().createRecord(input({ externalId: `ec:${'X'.repeat(40)}` })));
    expect(err.kind).toBe('permanent');
    expect(restCalls(fake)).toHaveLength(0);
  });

  it('a follow-up case points at the previous one (ParentId)', async () => {
    const sf = make();
    const first = await sf.createRecord(input());
    const next = await sf.createRecord(input({ followUpOf: first.id }));
    expect(fake.rows('Case').find((c) => c.Id === next.id)?.ParentId).toBe(first.id);
  });
});

describe('salesforce: sessions and limits', () => {
  it('re-authenticates once after 401 INVALID_SESSION_ID, and retries the call', async () => {
    const sf = make();
    const ref = await sf.createRecord(input());
    fake.expireSessions();
    await sf.setStatus(ref.id, 'active');
    expect(fake.record(ref.id)?.status).toBe('Working');
    expect(fake.requests().filter((r) => r.path === '/services/oauth2/token')).toHaveLength(2);
  });

  it('a second 401 in a row is auth', async () => {
    const sf = make();
    const ref = await sf.createRecord(input());
    fake.injectFailure({ status: 401 }, { times: 2 });
    const err = await rejected(sf.setStatus(ref.id, 'active'));
    expect(err.kind).toBe('auth');
  });

  it('refused client credentials and refused SOAP logins are auth', async () => {
    expect((await rejected(make({ ...oauth, clientSecret: 'wrong' }).test())).kind).toBe('auth');
    expect((await rejected(make({ ...oauth, clientId: 'unknown' }).test())).kind).toBe('auth');
    const soap = { loginUrl: FAKE_INSTANCE_URL, username: FAKE_USERNAME, password: 'wrong', securityToken: FAKE_SECURITY_TOKEN };
    expect((await rejected(make(soap).test())).kind).toBe('auth');
  });

  it('logs in by SOAP login() as the alternative, password + security token', async () => {
    const sf = make({ loginUrl: FAKE_INSTANCE_URL, username: FAKE_USERNAME, password: FAKE_PASSWORD, securityToken: FAKE_SECURITY_TOKEN });
    await expect(sf.test()).resolves.toMatchObject({ ok: true });
    const ref = await sf.createRecord(input());
    expect(fake.record(ref.id)?.status).toBe('New');
    expect(fake.requests()[0]?.path).toBe('/services/Soap/u/60.0');
  });

  it('test() checks the custom fields through describe', async () => {
    await expect(make().test()).resolves.toEqual({ ok: true, account: expect.stringContaining('email-channel-dev.my.salesforce.com') });
  });

  it('over the daily limit: 403 REQUEST_LIMIT_EXCEEDED → rate_limited with a back-off (no Retry-After exists)', async () => {
    const sf = make();
    const ref = await sf.createRecord(input());
    fake.setApiUsage(5000, 5000);
    const err = await rejected(sf.setStatus(ref.id, 'active'));
    expect(err.kind).toBe('rate_limited');
    expect(err.status).toBe(403);
    expect(err.retryAfterMs).toBe(15 * 60_000);
  });

  it('the kit’s 429 injection is answered as Salesforce would: 403 REQUEST_LIMIT_EXCEEDED → rate_limited', async () => {
    const sf = make();
    fake.injectFailure({ status: 429, retryAfterSeconds: 2 });
    const err = await rejected(sf.createRecord(input()));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBeGreaterThan(0);
  });

  it('holds back once Sforce-Limit-Info shows usage above the threshold, before the limit is reached', async () => {
    const sf = make();
    const ref = await sf.createRecord(input());
    fake.setApiUsage(9_200, 10_000);
    await sf.setStatus(ref.id, 'active'); // answered with api-usage=9201/10000
    const before = restCalls(fake).length;
    const err = await rejected(sf.setStatus(ref.id, 'paused'));
    expect(err.kind).toBe('rate_limited');
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(5 * 60_000);
    expect(restCalls(fake)).toHaveLength(before);
    // A higher threshold lets the same usage through.
    await make({ ...oauth, apiUsageBackoffPercent: 95 }).setStatus(ref.id, 'paused');
  });

  it('5xx and network errors are transient; a slow answer times out as transient', async () => {
    const sf = make();
    const ref = await sf.createRecord(input());
    fake.injectFailure({ status: 500 });
    expect((await rejected(sf.setStatus(ref.id, 'active'))).kind).toBe('transient');
    fake.injectFailure({ status: 502 });
    expect((await rejected(sf.setStatus(ref.id, 'active'))).kind).toBe('transient');
    fake.injectFailure({ network: true });
    expect((await rejected(sf.setStatus(ref.id, 'active'))).kind).toBe('transient');
    const slow = make(oauth, { timeoutMs: 200 });
    await slow.test();
    server.use(
      http.patch(`${FAKE_INSTANCE_URL}/services/data/*`, async () => {
        await delay(1000);
        return new HttpResponse(null, { status: 204 });
      }),
    );
    expect((await rejected(slow.setStatus(ref.id, 'active'))).kind).toBe('transient');
  });
});

describe('salesforce: comments, files, owners', () => {
  it('addComment: CaseComment with IsPublished; the same external id after a lost answer or a restart → one comment', async () => {
    const sf = make();
    const { id } = await sf.createRecord(input());
    const comment = { recordId: id, externalId: 'ec:SF:comment:m1', bodyText: 'Thanks, we are on it.', public: true };
    await sf.addComment({ ...comment, externalId: 'ec:SF:comment:m0', bodyText: 'First.' });
    // The insert is carried out but its answer is lost: ambiguous.
    fake.loseNextAnswers(1);
    await expect(sf.addComment(comment)).rejects.toBeInstanceOf(ConnectorError);
    await sf.addComment(comment);
    await make().addComment(comment);
    const rows = fake.rows('CaseComment').filter((r) => String(r.CommentBody).includes('m1'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ ParentId: id, IsPublished: true, CommentBody: 'Thanks, we are on it.\n\n[ec:SF:comment:m1]' });
  });

  it('addComment cuts a long body to 4,000 bytes and keeps the marker', async () => {
    const sf = make();
    const { id } = await sf.createRecord(input());
    await sf.addComment({ recordId: id, externalId: 'ec:SF:comment:long', bodyText: 'é'.repeat(5000), public: false });
    const body = String(fake.rows('CaseComment')[0]?.CommentBody);
    expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(4000);
    expect(body.endsWith('[ec:SF:comment:long]')).toBe(true);
  });

  it('addComment / attachFile on a missing case → not_found', async () => {
    const sf = make();
    await sf.test();
    expect((await rejected(sf.addComment({ recordId: '5005g0000099999AAA', externalId: 'x', bodyText: 'hi', public: true }))).kind).toBe('not_found');
    const file = { filename: 'a.txt', contentType: 'text/plain', bytes: new Uint8Array([1]), externalId: 'f' };
    expect((await rejected(sf.attachFile('5005g0000099999AAA', file))).kind).toBe('not_found');
  });

  it('attachFile: ContentVersion linked by FirstPublishLocationId, marked in Description; twice → one file', async () => {
    const sf = make();
    const { id } = await sf.createRecord(input());
    const file = { filename: 'transcript.pdf', contentType: 'application/pdf', bytes: new TextEncoder().encode('%PDF-1.4 test'), externalId: 'ec:SF:pdf' };
    const a = await sf.attachFile(id, file);
    const b = await make().attachFile(id, file);
    expect(b.id).toBe(a.id);
    const versions = fake.rows('ContentVersion');
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({ FirstPublishLocationId: id, PathOnClient: 'transcript.pdf', Title: 'transcript.pdf', Description: `${RECORD_MARKER} ec:SF:pdf`, ContentSize: 13 });
  });

  it('first-message attachments are attached after the case, idempotently', async () => {
    const sf = make();
    const data = input();
    const att = { filename: 'photo.png', contentType: 'image/png', bytes: new Uint8Array([137, 80, 78, 71]) };
    data.firstComment = { ...(data.firstComment as NonNullable<CreateRecordInput['firstComment']>), attachments: [att] };
    const ref = await sf.createRecord(data);
    await sf.createRecord(data);
    expect(fake.files(ref.id)).toEqual([{ filename: 'photo.png', size: 4 }]);
  });

  it('setAssignee by email (cached), then nobody (the integration user, or unassignedOwnerId)', async () => {
    const sf = make();
    const { id } = await sf.createRecord(input());
    await sf.setAssignee(id, { email: FAKE_AGENT_EMAIL });
    await sf.setAssignee(id, { email: FAKE_AGENT_EMAIL.toUpperCase() });
    expect(restCalls(fake).filter((r) => r.path.includes('FROM%20User'))).toHaveLength(1);
    expect(fake.record(id)?.assigneeEmail).toBe(FAKE_AGENT_EMAIL);
    await sf.setAssignee(id, null);
    expect(fake.rows('Case')[0]?.OwnerId).toBe(FAKE_INTEGRATION_USER_ID);
    expect(fake.record(id)?.assigneeEmail).toBeNull();
    await make({ ...oauth, unassignedOwnerId: FAKE_QUEUES.Billing }).setAssignee(id, null);
    expect(fake.rows('Case')[0]?.OwnerId).toBe(FAKE_QUEUES.Billing);
    expect((await rejected(sf.setAssignee(id, { email: 'nobody@example.com' }))).kind).toBe('permanent');
  });

  it('setQueue: by ownerByQueue, else by the Salesforce queue name; an unknown queue is permanent', async () => {
    const sf = make({ ...oauth, ownerByQueue: { Q9: FAKE_QUEUES.Support } });
    const { id } = await sf.createRecord(input({ queue: null }));
    await sf.setQueue?.(id, { id: 'Q9', name: 'Whatever' });
    expect(fake.rows('Case')[0]?.OwnerId).toBe(FAKE_QUEUES.Support);
    await sf.setQueue?.(id, { id: 'Q2', name: 'Billing' });
    expect(fake.rows('Case')[0]?.OwnerId).toBe(FAKE_QUEUES.Billing);
    expect((await rejected(sf.setQueue?.(id, { id: 'Q3', name: 'Nope' }) ?? Promise.resolve())).kind).toBe('permanent');
  });

  it('setStatus writes Case.Status and EmailChannel_Status__c; a status the org lacks is refused (restricted picklist)', async () => {
    const sf = make({ ...oauth, statusMap: { paused: 'On Hold' } });
    const { id } = await sf.createRecord(input());
    await sf.setStatus(id, 'resolved');
    expect(fake.rows('Case')[0]).toMatchObject({ Status: 'Closed', [STATUS_FIELD]: 'resolved', IsClosed: true });
    expect((await rejected(sf.setStatus(id, 'paused'))).kind).toBe('permanent');
    const withOnHold = new SalesforceFake({ caseStatuses: ['New', 'Working', 'On Hold', 'Escalated', 'Closed'] });
    expect(withOnHold.handlers.length).toBeGreaterThan(0);
  });

  it('listAgents pages by nextRecordsUrl (batchSize 200), without the integration user', async () => {
    fake.seedAgents(250);
    const sf = make();
    const first = await sf.listAgents?.();
    expect(first?.agents).toHaveLength(200);
    expect(first?.nextCursor).toMatch(/^\/services\/data\/v60\.0\/query\/01g[A-Za-z0-9]+-200$/);
    const second = await sf.listAgents?.(first?.nextCursor ?? undefined);
    expect(second?.agents).toHaveLength(50);
    expect(second?.nextCursor).toBeNull();
    const all = [...(first?.agents ?? []), ...(second?.agents ?? [])];
    expect(all.some((a) => a.crmId === FAKE_INTEGRATION_USER_ID)).toBe(false);
    expect(new Set(all.map((a) => a.email)).size).toBe(250);
    expect((await rejected(sf.listAgents?.('https://evil.example/query/x') ?? Promise.resolve())).kind).toBe('permanent');
  });
});

describe('salesforce: pollEvents', () => {
  const T0 = Date.parse('2026-03-02T09:00:00.000Z');
  let clock = T0;
  const now = () => clock;
  beforeEach(() => {
    clock = T0;
    fake.setClock(now);
  });

  it('reports agent changes within the same second as the checkpoint, each once', async () => {
    const sf = make(oauth, { now });
    const a = await sf.createRecord(input());
    const b = await sf.createRecord(input());
    clock += 400; // same second
    const baseline = await sf.pollEvents?.(null);
    expect(baseline?.events).toEqual([]);
    expect(restCalls(fake).filter((r) => r.path.endsWith('/composite'))).toHaveLength(3);

    fake.crmChange(a.id, { status: 'Closed' });
    clock += 300; // still the same second
    const first = await sf.pollEvents?.(baseline?.checkpoint ?? null);
    expect(first?.events).toEqual([expect.objectContaining({ type: 'status_changed', recordId: a.id, status: 'resolved', at: T0 })]);
    expect((await sf.pollEvents?.(first?.checkpoint ?? null))?.events).toEqual([]);

    // The service applies the event (its own write: no event), then, within the same second, an agent
    // reopens the case and another writes a public reply on the other one.
    await sf.setStatus(a.id, 'resolved');
    fake.crmChange(a.id, { status: 'Working' });
    fake.crmChange(b.id, { publicReply: 'We shipped a replacement.' });
    const second = await sf.pollEvents?.(first?.checkpoint ?? null);
    expect(second?.events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'status_changed', recordId: a.id, status: 'reopened' }),
        expect.objectContaining({ type: 'agent_reply', recordId: b.id, bodyText: 'We shipped a replacement.', authorEmail: FAKE_AGENT_EMAIL }),
      ]),
    );
    expect(second?.events).toHaveLength(2);
    clock += 5000;
    expect((await sf.pollEvents?.(second?.checkpoint ?? null))?.events).toEqual([]);
  });

  it('ignores the connector’s own writes; reports an agent taking the case', async () => {
    const sf = make(oauth, { now });
    const a = await sf.createRecord(input());
    const cp = (await sf.pollEvents?.(null))?.checkpoint ?? null;
    clock += 2000;
    await sf.setStatus(a.id, 'active');
    await sf.addComment({ recordId: a.id, externalId: 'ec:own', bodyText: 'our own public comment', public: true });
    const own = await sf.pollEvents?.(cp);
    expect(own?.events).toEqual([]);
    clock += 2000;
    fake.crmChange(a.id, { assigneeEmail: FAKE_AGENT_EMAIL });
    const taken = await sf.pollEvents?.(own?.checkpoint ?? null);
    expect(taken?.events).toEqual([expect.objectContaining({ type: 'assignee_changed', recordId: a.id, assigneeEmail: FAKE_AGENT_EMAIL })]);
  });

  it('a garbled checkpoint restarts from the look-back window instead of failing', async () => {
    const sf = make(oauth, { now });
    await sf.createRecord(input());
    await expect(sf.pollEvents?.('{not json')).resolves.toMatchObject({ events: [] });
  });
});

describe('salesforce fake: faithful to the REST API', () => {
  async function token(): Promise<string> {
    const res = await fetch(`${FAKE_INSTANCE_URL}/services/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: FAKE_CLIENT_ID, client_secret: FAKE_CLIENT_SECRET }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'id', 'instance_url', 'issued_at', 'scope', 'signature', 'token_format', 'token_type']);
    return body.access_token as string;
  }
  const api = async (t: string, method: string, path: string, body?: unknown) =>
    fetch(`${FAKE_INSTANCE_URL}/services/data/v60.0${path}`, {
      method,
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  it('token endpoint: a bad secret is 400 invalid_client', async () => {
    const res = await fetch(`${FAKE_INSTANCE_URL}/services/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: FAKE_CLIENT_ID, client_secret: 'nope' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'invalid client credentials' });
  });

  it('upsert by external id: 201 created, then 200 with created:false (v46+), 204 on older versions', async () => {
    const t = await token();
    const path = `/sobjects/Case/${SESSION_ID_FIELD}/ec:UPSERT1`;
    const created = await api(t, 'PATCH', path, { Subject: 'one' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ success: true, errors: [], created: true });
    const updated = await api(t, 'PATCH', path, { Subject: 'two' });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ created: false });
    const old = await fetch(`${FAKE_INSTANCE_URL}/services/data/v45.0${path}`, { method: 'PATCH', headers: { authorization: `Bearer ${t}` }, body: JSON.stringify({ Subject: 'three' }) });
    expect(old.status).toBe(204);
    expect(fake.countRecords('ec:upsert1')).toBe(1);
  });

  it('every REST answer carries Sforce-Limit-Info; errors are [{ message, errorCode, fields }]', async () => {
    const t = await token();
    const bad = await api(t, 'GET', `/query?q=${encodeURIComponent('SELECT Id FROM Case WHERE')}`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('sforce-limit-info')).toMatch(/^api-usage=\d+\/\d+$/);
    expect(await bad.json()).toEqual([{ message: expect.any(String), errorCode: 'MALFORMED_QUERY' }]);
    const field = await api(t, 'GET', `/query?q=${encodeURIComponent('SELECT Nope__c FROM Case')}`);
    expect(((await field.json()) as { errorCode: string }[])[0]?.errorCode).toBe('INVALID_FIELD');
    const tooLong = await api(t, 'POST', '/sobjects/Case', { Subject: 'x'.repeat(256) });
    expect(await tooLong.json()).toEqual([{ message: expect.stringContaining('max length=255'), errorCode: 'STRING_TOO_LONG', fields: ['Subject'] }]);
    const unauth = await api('stale', 'GET', '/sobjects/Case/describe');
    expect(unauth.status).toBe(401);
    expect(await unauth.json()).toEqual([{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
  });

  it('composite with allOrNone: a failure rolls everything back, others report PROCESSING_HALTED', async () => {
    const t = await token();
    const res = await api(t, 'POST', '/composite', {
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: '/services/data/v60.0/sobjects/Case', referenceId: 'c', body: { Subject: 'ok' } },
        { method: 'POST', url: '/services/data/v60.0/sobjects/CaseComment', referenceId: 'n', body: { ParentId: '@{c.id}', CommentBody: 'x'.repeat(4001) } },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { compositeResponse: { httpStatusCode: number; body: { errorCode: string }[] }[] };
    expect(body.compositeResponse.map((r) => [r.httpStatusCode, r.body[0]?.errorCode])).toEqual([
      [400, 'PROCESSING_HALTED'],
      [400, 'STRING_TOO_LONG'],
    ]);
    expect(fake.rows('Case')).toHaveLength(0);
  });

  it('unknown record ids are 404 NOT_FOUND; the daily limit is 403 REQUEST_LIMIT_EXCEEDED', async () => {
    const t = await token();
    const res = await api(t, 'PATCH', '/sobjects/Case/5005g0000099999AAA', { Subject: 'x' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual([{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }]);
    fake.setApiUsage(10, 10);
    const limited = await api(t, 'GET', '/sobjects/Case/describe');
    expect(limited.status).toBe(403);
    expect(await limited.json()).toEqual([{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
    expect(limited.headers.get('retry-after')).toBeNull();
  });
});

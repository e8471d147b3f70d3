// Streaming as a poll trigger: jsforce's CometD client (Faye) against the CometD fake, logins through the REST fake.
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConnectorError, type ConnectorInstance } from '../contract.js';
import { SalesforceClient } from './client.js';
import { createSalesforceFake, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_INSTANCE_URL, FAKE_INTEGRATION_USER_ID } from './fake.js';
import { salesforceConnector } from './index.js';
import { API_VERSION } from './mapping.js';
import { CASE_CHANGE_CHANNEL, COMMENT_EVENT_CHANNEL, subscribeChanges, type ChangeSubscription, type ConnectionSource, type StreamingInstance, type SubscribeChangesOptions } from './streaming.js';
import { createStreamingFake, FAKE_BAYEUX_COOKIE } from './streaming-fake.js';

const rest = createSalesforceFake();
const cometd = createStreamingFake({ holdMs: 2000 });
const server = setupServer(...rest.handlers, ...cometd.handlers);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  rest.reset();
  cometd.reset();
});

const open: ChangeSubscription[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  cometd.release();
});

const quiet = { info() {}, warn() {}, error() {} };

function restClient(): SalesforceClient {
  return new SalesforceClient({
    loginUrl: FAKE_INSTANCE_URL,
    auth: { kind: 'client_credentials', clientId: FAKE_CLIENT_ID, clientSecret: FAKE_CLIENT_SECRET },
    timeoutMs: 3000,
    now: Date.now,
    checkHost: async () => {},
    log: quiet,
    usageBackoffPercent: 90,
  });
}

/** Connections the way the connector gets them: the shared session, or a new login when `fresh`. */
function connections(): { source: ConnectionSource; logins: () => number } {
  const shared = restClient();
  let logins = 0;
  return {
    logins: () => logins,
    source: async (fresh) => {
      logins += 1;
      return (await (fresh ? restClient() : shared).ensureSession()).conn;
    },
  };
}

interface Harness {
  sub: ChangeSubscription;
  changes: () => number;
  errors: Error[];
  warnings: object[];
}

function listen(source: Parameters<typeof subscribeChanges>[0], over: Partial<SubscribeChangesOptions> = {}): Harness {
  let changes = 0;
  const errors: Error[] = [];
  const warnings: object[] = [];
  const sub = subscribeChanges(source, {
    onChange: () => {
      changes += 1;
    },
    onError: (err) => errors.push(err),
    logger: { info() {}, warn: (o) => warnings.push(o), error() {} },
    debounceMs: 100,
    timeoutMs: 3000,
    backoff: { initialMs: 100, maxMs: 1000 },
    ...over,
  });
  open.push(sub);
  return { sub, changes: () => changes, errors, warnings };
}

async function until(what: string, cond: () => boolean, ms = 4000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The newest CometD client is subscribed to `channels` and parked on a held /meta/connect. */
async function listening(channels: string[] = [CASE_CHANGE_CHANNEL]): Promise<void> {
  await until('the subscription', () => {
    const newest = cometd.clients().at(-1);
    return !!newest && channels.every((ch) => newest.subscriptions.includes(ch)) && cometd.heldConnects() >= 1;
  });
}

const CASE_ID = '5005g00000AbCdEAAV';

describe('salesforce streaming: Bayeux against the fake', () => {
  it('handshakes with the OAuth token, subscribes to Case CDC, and a burst of 5 changes calls onChange once (500 ms debounce)', async () => {
    const { source } = connections();
    const h = listen(source, { debounceMs: 500 });
    await listening();
    const log = cometd.requests();
    expect(log[0]).toMatchObject({ channel: '/meta/handshake' });
    expect(log[0]?.token).toMatch(/fake/);
    expect(log.map((r) => r.channel)).toContain('/meta/subscribe');
    expect(log.find((r) => r.channel === '/meta/subscribe')?.subscription).toBe(CASE_CHANGE_CHANNEL);
    for (let i = 0; i < 5; i++) cometd.publishCaseChange([CASE_ID]);
    await sleep(250);
    expect(h.changes()).toBe(0); // still inside the window
    await sleep(500);
    expect(h.changes()).toBe(1);
    // A later change is a new window.
    cometd.publishCaseChange([CASE_ID], { changedFields: ['OwnerId', 'LastModifiedDate'] });
    await until('the second call', () => h.changes() === 2);
    expect(h.errors).toEqual([]);
  });

  it('the CaseComment platform event (optional channel) calls onChange; a missing optional channel is skipped with one warning', async () => {
    const { source } = connections();
    const channels = [CASE_CHANGE_CHANNEL, { name: COMMENT_EVENT_CHANNEL, optional: true }];
    // Not created in this org: Case CDC still streams.
    const without = listen(source, { channels });
    await listening([CASE_CHANGE_CHANNEL]);
    expect(without.warnings).toEqual([expect.objectContaining({ channel: COMMENT_EVENT_CHANNEL, reason: expect.stringContaining('400::The channel you requested to subscribe to does not exist') })]);
    cometd.publishCaseChange([CASE_ID]);
    await until('the CDC call', () => without.changes() === 1);
    await without.sub.close();

    cometd.addChannel(COMMENT_EVENT_CHANNEL);
    const h = listen(source, { channels });
    await listening([CASE_CHANGE_CHANNEL, COMMENT_EVENT_CHANNEL]);
    cometd.publishPlatformEvent(COMMENT_EVENT_CHANNEL, { CaseId__c: CASE_ID, CommentId__c: '00a5g00000XyZaBAAV' });
    await until('the comment call', () => h.changes() === 1);
    expect(h.warnings).toEqual([]);
  });

  it('a required channel that does not exist stops streaming: onError(permanent), nothing left running', async () => {
    const { source } = connections();
    const h = listen(source, { channels: ['/topic/EmailChannelCaseComments'] });
    await until('onError', () => h.errors.length === 1);
    expect(h.errors[0]).toBeInstanceOf(ConnectorError);
    expect((h.errors[0] as ConnectorError).kind).toBe('permanent');
    expect(h.errors[0]?.message).toContain('does not exist {/topic/EmailChannelCaseComments}');
    await sleep(300);
    expect(cometd.handshakeCount()).toBe(1); // no retry loop
  });

  it('changes committed by the integration user itself trigger nothing', async () => {
    const { source } = connections();
    const h = listen(source, { ignoreUserId: FAKE_INTEGRATION_USER_ID.slice(0, 15) });
    await listening();
    cometd.publishCaseChange([CASE_ID], { commitUser: FAKE_INTEGRATION_USER_ID });
    await sleep(250);
    expect(h.changes()).toBe(0);
    cometd.publishCaseChange([CASE_ID]);
    await until('an agent change', () => h.changes() === 1);
  });

  it('after the server drops the session (403::Unknown client) it handshakes again, polls once for the gap, and keeps receiving', async () => {
    const { source } = connections();
    const h = listen(source);
    await listening();
    cometd.dropClients();
    await until('the new session', () => cometd.handshakeCount() === 2);
    await listening();
    await until('the catch-up call', () => h.changes() === 1);
    cometd.publishCaseChange([CASE_ID]);
    await until('the change after the reconnect', () => h.changes() === 2);
    expect(h.warnings).toEqual([expect.objectContaining({ reason: expect.stringContaining('403::Unknown client') })]);
    expect(h.errors).toEqual([]);
  });

  it('a network failure on the long poll reconnects after the back-off', async () => {
    const { source } = connections();
    const h = listen(source);
    await listening();
    cometd.failNextRequests(1);
    cometd.release(); // the held connect is answered; the next one fails at the network level
    await until('the new session', () => cometd.handshakeCount() === 2);
    await listening();
    cometd.publishCaseChange([CASE_ID]);
    await until('changes again', () => h.changes() >= 1);
    expect(h.warnings[0]).toMatchObject({ reason: expect.stringContaining('transport down') });
  });

  it('a revoked token (401::Authentication invalid): logs in again once and resubscribes; a static connection stops with onError(auth)', async () => {
    const c = connections();
    const h = listen(c.source);
    await listening();
    const before = cometd.requests()[0]?.token;
    rest.expireSessions();
    cometd.expireAuth();
    await until('the new session', () => cometd.handshakeCount() === 2 && cometd.heldConnects() === 1);
    expect(c.logins()).toBe(2);
    expect(cometd.requests().filter((r) => r.channel === '/meta/handshake').map((r) => r.token)[1]).not.toBe(before);
    cometd.publishCaseChange([CASE_ID]);
    await until('changes again', () => h.changes() >= 1);
    expect(h.errors).toEqual([]);
    await h.sub.close();

    // A bare jsforce Connection cannot log in again: streaming stops, polling goes on.
    const conn = (await restClient().ensureSession()).conn;
    const fixed = listen(conn);
    await listening();
    cometd.expireAuth();
    await until('onError', () => fixed.errors.length === 1);
    expect((fixed.errors[0] as ConnectorError).kind).toBe('auth');
    expect(fixed.errors[0]?.message).toContain('401::Authentication invalid');
  });

  it('a bare Connection with jsforce’s refresh delegate refreshes its token and resubscribes', async () => {
    const conn = (await restClient().ensureSession()).conn;
    let refreshed = 0;
    // What jsforce's SessionRefreshDelegate does: a new access token on the same Connection.
    (conn as unknown as { _refreshDelegate: { refresh(since: number): Promise<void> } })._refreshDelegate = {
      async refresh() {
        refreshed += 1;
        conn.accessToken = (await restClient().ensureSession()).conn.accessToken;
      },
    };
    const h = listen(conn);
    await listening();
    cometd.expireAuth();
    await until('the new session', () => cometd.handshakeCount() === 2 && cometd.heldConnects() === 1);
    expect(refreshed).toBe(1);
    cometd.publishCaseChange([CASE_ID]);
    await until('changes again', () => h.changes() >= 1);
    expect(h.errors).toEqual([]);
  });

  it('a handshake denied for authentication after a re-login stops streaming instead of looping', async () => {
    const c = connections();
    const h = listen(c.source);
    await listening();
    // Every token this fake has seen or will see is refused from now on.
    cometd.expireAuth();
    const revokeNew = setInterval(() => cometd.expireAuth(), 5);
    try {
      await until('onError', () => h.errors.length === 1);
    } finally {
      clearInterval(revokeNew);
    }
    expect((h.errors[0] as ConnectorError).kind).toBe('auth');
    expect(c.logins()).toBe(2);
  });

  it('close() says goodbye (/meta/disconnect), leaves no held connect and no timer, and no onChange after it', async () => {
    const baseline = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { source } = connections();
    const h = listen(source);
    await listening();
    cometd.publishCaseChange([CASE_ID]); // a pending debounced call is dropped by close()
    await sleep(20);
    const started = Date.now();
    await h.sub.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(cometd.requests().at(-1)).toMatchObject({ channel: '/meta/disconnect' });
    expect(cometd.clients()).toEqual([]);
    expect(cometd.heldConnects()).toBe(0);
    await sleep(150);
    expect(h.changes()).toBe(0);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(baseline);
    await h.sub.close(); // idempotent
  });

  it('close() with the network down returns promptly and drops the long poll and Faye’s retry timers', async () => {
    const baseline = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const { source } = connections();
    const h = listen(source);
    await listening();
    cometd.failNextRequests(1); // the /meta/disconnect never arrives
    const started = Date.now();
    await h.sub.close();
    expect(Date.now() - started).toBeLessThan(1000);
    // msw does not pass a destroyed request on to the handler (request.signal stays quiet): the fake's own hold
    // timer is released here, so what is counted below is Faye's (answer timeouts, the 5 s resend) and ours.
    cometd.release();
    await sleep(50);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(baseline);
  });

  it('the fake refuses what Salesforce refuses: denied handshake, unknown client', async () => {
    const url = `${FAKE_INSTANCE_URL}/cometd/${API_VERSION}`;
    const post = async (body: unknown, headers: Record<string, string>) =>
      (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })).json()) as Record<string, unknown>[];
    const denied = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' }], {});
    expect(denied[0]).toMatchObject({ successful: false, error: '403::Handshake denied', advice: { reconnect: 'none' }, ext: { sfdc: { failureReason: '401::Request requires authentication' } } });
    const auth = { authorization: 'OAuth some-token' };
    const [hs] = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' }], auth);
    expect(hs).toMatchObject({ successful: true, supportedConnectionTypes: ['long-polling'], advice: { reconnect: 'retry', interval: 0, timeout: 2000 } });
    const clientId = String(hs?.clientId);
    const unknown = await post([{ channel: '/meta/connect', clientId: 'nope', connectionType: 'long-polling', id: '2' }], { ...auth, cookie: `${FAKE_BAYEUX_COOKIE}=x` });
    expect(unknown[0]).toMatchObject({ successful: false, error: '403::Unknown client', advice: { reconnect: 'handshake' } });
    const refused = await post([{ channel: '/meta/subscribe', clientId, subscription: '/topic/Nope', id: '3' }], { ...auth, cookie: `${FAKE_BAYEUX_COOKIE}=x` });
    expect(refused[0]).toMatchObject({ clientId, subscription: '/topic/Nope', successful: false, error: '400::The channel you requested to subscribe to does not exist {/topic/Nope}' });
    // (The session-cookie check cannot be exercised here: msw sends back the cookies its mocked answers set.)
  });
});

describe('salesforce connector: subscribeChanges', () => {
  function make(): ConnectorInstance & StreamingInstance {
    return salesforceConnector.create({
      config: salesforceConnector.configSchema.parse({ loginUrl: FAKE_INSTANCE_URL, clientId: FAKE_CLIENT_ID, clientSecret: FAKE_CLIENT_SECRET }),
      timeoutMs: 3000,
      checkHost: async () => {},
      log: quiet,
      now: Date.now,
    }) as ConnectorInstance & StreamingInstance;
  }

  it('an agent’s Case change calls onChange; the integration user’s own write does not; the comment channel is optional', async () => {
    const sf = make();
    expect(sf.subscribeChanges).toBeTypeOf('function');
    let changes = 0;
    const errors: Error[] = [];
    const sub = await sf.subscribeChanges!(
      () => {
        changes += 1;
      },
      (err) => errors.push(err),
    );
    open.push(sub);
    await listening([CASE_CHANGE_CHANNEL]);
    cometd.publishCaseChange([CASE_ID], { commitUser: FAKE_INTEGRATION_USER_ID });
    await sleep(650); // past the 500 ms window
    expect(changes).toBe(0);
    cometd.publishCaseChange([CASE_ID]);
    await until('the change', () => changes === 1);
    expect(errors).toEqual([]);
    await sub.close();
    expect(cometd.heldConnects()).toBe(0);
  });
});

// Salesforce end to end (msw fakes of the REST API and the CometD streaming endpoint, so jsforce runs unchanged): mail
// from a private Dovecot becomes a Case; an agent closing the Case in Salesforce reaches the session within seconds,
// because the Change Data Capture notice triggers an immediate poll (the minute poll would take up to 60 s); the
// change is applied once [R-CRM-5, R-CON-1, #6 item 5].
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSalesforceFake, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_INSTANCE_URL, type SalesforceFake } from '../connectors/salesforce/fake.js';
import { CASE_CHANGE_CHANNEL } from '../connectors/salesforce/streaming.js';
import { createStreamingFake, type SalesforceStreamingFake } from '../connectors/salesforce/streaming-fake.js';
import { appendMessage, startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { poll } from './helpers/poll.js';
import { addMailAccount } from './helpers/mail-setup.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { startTestService, type TestService } from './helpers/service.js';

const USER = { user: 'sf@shop.example', password: 'imap-pass-7' };

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let fake: SalesforceFake;
let cometd: SalesforceStreamingFake;
let server: ReturnType<typeof setupServer>;
let svc: TestService;

beforeAll(async () => {
  [dovecot, smtp] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER] })]);
  fake = createSalesforceFake();
  cometd = createStreamingFake({ holdMs: 2000 });
  server = setupServer(...cometd.handlers, ...fake.handlers);
  server.listen({ onUnhandledRequest: 'bypass' });
  // The fake's host is answered by msw; the host guard resolves it to loopback, allowed in tests.
  svc = await startTestService({ resolveHost: async () => ['127.0.0.1'] });
  const settings = await svc.call('PUT', '/api/settings', {
    emailChannel: { enabled: true },
    connector: { id: 'salesforce', config: { loginUrl: FAKE_INSTANCE_URL, clientId: FAKE_CLIENT_ID, clientSecret: FAKE_CLIENT_SECRET } },
  });
  expect(settings.status).toBe(200);
  const account = await addMailAccount(svc, dovecot, smtp, USER);
  expect((await svc.call('POST', '/api/queues', { name: 'Cases', language: 'en', email: { enabled: true, addresses: [account.body.id] } })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  server?.close();
  await Promise.all([dovecot?.stop(), smtp?.stop()]);
});

describe('Salesforce end to end', () => {
  it('a Case closed by an agent in Salesforce closes the session within seconds (streaming triggers the poll)', async () => {
    const id = `sf-${Date.now()}@customer.example`;
    await appendMessage(dovecot, USER.user, `From: Val <val@customer.example>\r\nTo: ${USER.user}\r\nSubject: Broken blender\r\nMessage-ID: <${id}>\r\nContent-Type: text/plain\r\n\r\nIt stopped.\r\n`);
    const claim = await poll('session', async () => svc.services.store.get<{ sessionId: string }>(`msgid:${id}`), (c) => !!c);
    const session = await poll('Case on the session', async () => (await svc.call('GET', `/api/sessions/${claim!.sessionId}`)).body, (s) => !!s.ticketId);
    expect(fake.countRecords(`ec:${session.id}`)).toBe(1);
    // The service is subscribed to Case changes (the settings change started the subscription).
    await poll('streaming subscription', async () => cometd.clients().some((c) => c.subscriptions.includes(CASE_CHANGE_CHANNEL)) && cometd.heldConnects() >= 1, (ok) => ok, 15_000);
    fake.crmChange(session.ticketId, { status: 'Closed' });
    // Without a notice nothing happens before the next minute poll...
    await new Promise((r) => setTimeout(r, 2500));
    expect((await svc.call('GET', `/api/sessions/${session.id}`)).body.status).toBe('unopened');
    // ...and the CDC notice brings it at once.
    cometd.publishCaseChange([session.ticketId]);
    const after = await poll('the session follows the Case', async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body, (s) => s.status === 'resolved' || s.status === 'closed', 20_000);
    // (Within the 20 s wait, well before the minute poll: the change came through the streamed trigger.)
    expect(after.interactions.filter((i: any) => i.actor === 'crm' && (i.type === 'status_changed' || i.type === 'closed'))).toHaveLength(1);
  }, 90_000);
});

// Outbound mail on the Redis store (BullMQ jobs): an accepted reply and an auto-reply are sent once, and a reply
// accepted while the job runner is down is sent once after a restart [R-AGT-3, R-REL-1, R-REL-2].
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessage, startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { poll } from './helpers/poll.js';
import { addMailAccount } from './helpers/mail-setup.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { startTestService, type TestService } from './helpers/service.js';

const USER = { user: 'redis-out@shop.example', password: 'imap-pass-6' };

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let redis: RedisServerHandle;
let svc: TestService;
let agentId: string;

async function append(subject: string): Promise<string> {
  const id = `redis-out-${Date.now()}-${Math.random().toString(36).slice(2)}@customer.example`;
  await appendMessage(dovecot, USER.user, `From: Pat <pat@customer.example>\r\nTo: ${USER.user}\r\nSubject: ${subject}\r\nMessage-ID: <${id}>\r\nDate: ${new Date().toUTCString()}\r\nContent-Type: text/plain\r\n\r\nHello\r\n`);
  return id;
}

const sessionOf = async (messageId: string) => {
  const claim = await svc.services.store.get<{ sessionId: string }>(`msgid:${messageId}`);
  return claim ? (await svc.call('GET', `/api/sessions/${claim.sessionId}`)).body : undefined;
};
const received = async (text: string) => (await Promise.all(smtp.received.map((r) => simpleParser(r.raw)))).filter((m) => m.text?.includes(text));

beforeAll(async () => {
  [dovecot, smtp, redis] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER] }), startRedis()]);
  svc = await startTestService({ redisUrl: redis.url });
  expect((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } })).status).toBe(200);
  const account = await addMailAccount(svc, dovecot, smtp, USER);
  agentId = (await svc.call('POST', '/api/agents', { name: 'Rae Agent', firstName: 'Rae', email: 'rae@shop.example', company: 'Shop' })).body.id;
  const queue = await svc.call('POST', '/api/queues', {
    name: 'Redis',
    language: 'en',
    email: { enabled: true, addresses: [account.body.id], agents: [agentId] },
    autoReply: { enabled: true, html: '<p>We got it, @{consumer}.</p>' },
  });
  expect(queue.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await Promise.all([dovecot?.stop(), smtp?.stop(), redis?.stop()]);
});

describe('outbound on Redis', () => {
  it('sends the auto-reply and an agent reply once each, then a reply accepted while the runner is down after a restart', async () => {
    const mid = await append('Redis case');
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    await poll('auto-reply', () => received('We got it, Pat.'), (l) => l.length === 1);
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Reply over BullMQ.' });
    expect(res.status).toBe(202);
    const [mail] = await poll('agent reply', () => received('Reply over BullMQ.'), (l) => l.length === 1);
    expect(mail?.inReplyTo).toBe(`<${mid}>`);
    await poll('delivery recorded', async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body, (d) => d.messages.filter((m: any) => m.delivery?.state === 'sent').length === 2);

    // Workers stopped: the commit still hands the send job to BullMQ (a queue, not a worker); a restart sends it once.
    await svc.services.jobs.stop();
    const late = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Accepted while the runner was down.' });
    // With the runner stopped, the hand-over to BullMQ fails after the commit: the reply is durable and accepted, its
    // job kept pending for the sweep.
    expect(late.status).toBe(202);
    await svc.restart();
    const stored = await poll(
      'the reply is on the session',
      async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body,
      (d) => d.messages.some((m: any) => m.text?.includes('Accepted while the runner was down.')),
    );
    expect(stored.messages.filter((m: any) => m.text?.includes('Accepted while the runner was down.'))).toHaveLength(1);
    // The pending-jobs sweep (30 s) or the outbox sweep hands the job over; force the sweep rather than wait.
    await (svc.services.store as unknown as { redispatchPendingJobs(ms: number): Promise<number> }).redispatchPendingJobs(0);
    await poll('sent after the restart', () => received('Accepted while the runner was down.'), (l) => l.length === 1, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await received('Accepted while the runner was down.')).toHaveLength(1);
    expect(await received('Reply over BullMQ.')).toHaveLength(1);
  }, 120_000);
});

// The outbox's send job on the embedded store with a scripted mail port (R-AGT-3, R-GLB-1): a permanent refusal marks the
// mail failed on the message, the session and the CRM; a transient one is retried and counted, and the last attempt
// fails it; a sent mail is never sent again; nothing goes out while the channel is off; a CRM reply is sent once.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDirs } from '../../test/helpers/temp-dirs.js';
import { composeRaw } from '../adapters/smtp/sender.js';
import { htmlToText, inlineDataImages, sanitizeRichHtml } from '../adapters/mail/rich-html.js';
import { StoreBlobStore } from '../adapters/blob/store-blob-store.js';
import { openStore } from '../adapters/store/index.js';
import type { Account } from '../core/account.js';
import type { Agent } from '../core/agent.js';
import { PermanentJobError, RetryLaterError, silentLogger, type JobRecord, type Store } from '../core/ports.js';
import type { StoredSession } from '../core/session/store-layout.js';
import { defaultSettings, type Settings } from '../config/settings.js';
import type { StoredMessage } from './ingest-message.js';
import { CRM_REPLY_PURPOSE, OutboundService, type OutboundMailPort } from './outbound-service.js';
import type { Queue } from './queues-service.js';

const dirs = tempDirs('ec-outbound-');
afterAll(() => dirs.removeAll());

const NOW = Date.UTC(2026, 10, 27, 10, 0, 0);
const account: Account = {
  id: 'acc_1',
  service: 'generic_imap',
  username: 'help@shop.example',
  address: 'help@shop.example',
  aliases: [],
  imap: { host: 'imap.shop.example', port: 993, secure: true, starttls: 'auto' },
  smtp: { host: 'smtp.shop.example', port: 465, secure: true, starttls: 'auto' },
  auth: { type: 'password', password: { sealed: 'x' } },
  outboundOnly: false,
  markAs: { type: 'seen' },
  importSince: null,
  status: { valid: true, imap: null, smtp: { state: 'connected', error: null, checkedAt: '' } },
  createdAt: '',
  updatedAt: '',
  rev: 1,
};
const agent: Agent = { id: 'agt_1', name: 'Ann Agent', firstName: 'Ann', email: 'ann@shop.example', company: 'Shop', teams: [], active: true, createdAt: '', updatedAt: '', rev: 1 };
const queue = {
  id: 'que_1',
  name: 'Help',
  language: 'en',
  email: { enabled: true, addresses: ['acc_1'], agents: ['agt_1'] },
  hours: null,
  autoAssign: { enabled: false, dailyLimit: null, businessHoursOnly: false, loggedInOnly: false },
  signature: { enabled: false, html: '' },
  autoReply: { enabled: false, senderAccountId: null, html: '', attachments: [] },
  createdAt: '',
  updatedAt: '',
  rev: 1,
} satisfies Queue;

type SendScript = (n: number) => { accepted: string[]; rejected: string[] } | Error;

describe('OutboundService send job', () => {
  let store: Store;
  let close: () => Promise<void>;
  let settings: Settings;
  let sends: number;
  let script: SendScript;
  let crmFailures: { sessionId: string; outcome: string; reason: string }[];
  let handlers: Map<string, (job: JobRecord) => Promise<void>>;
  let service: OutboundService;

  beforeEach(async () => {
    const opened = await openStore({ dataDir: dirs.make(), clock: { now: () => NOW } });
    store = opened.store;
    close = () => opened.store.close();
    settings = { ...defaultSettings(), emailChannel: { enabled: true } };
    sends = 0;
    script = () => ({ accepted: ['kim@customer.example'], rejected: [] });
    crmFailures = [];
    const blobs = new StoreBlobStore(store);
    const mail: OutboundMailPort = {
      compose: async (m, date) => new Uint8Array(await composeRaw(m, date)),
      sendRaw: async () => {
        const r = script(++sends);
        if (r instanceof Error) throw r;
        return r;
      },
      appendSent: async () => ({ folder: 'Sent' }),
    };
    service = new OutboundService({
      store,
      blobs,
      blobOps: (key, data, meta) => blobs.opsFor(key, data, meta),
      clock: { now: () => NOW },
      logger: silentLogger,
      settings: async () => settings,
      queue: async (id) => (id === queue.id ? queue : null),
      agent: async (id) => (id === agent.id ? agent : undefined),
      agentByEmail: async (email) => (email === agent.email ? agent : undefined),
      accountForUse: async (id) => (id === account.id ? { account, password: 'pw' } : null),
      ourAddresses: async () => [account.address],
      upload: async (id) => {
        throw new Error(`no upload ${id}`);
      },
      crmJobsFor: async () => [],
      crmDeliveryFailed: async (sessionId, _m, outcome, reason) => {
        crmFailures.push({ sessionId, outcome, reason });
        return [];
      },
      mail,
      html: { sanitize: sanitizeRichHtml, inlineImages: inlineDataImages, toText: htmlToText },
      guardHost: async () => undefined,
    });
    handlers = new Map();
    service.register({ register: (purpose, h) => handlers.set(purpose, h) });
  });

  afterEach(async () => {
    await close();
  });

  const start = () => service.startSession(agent.id, { queueId: queue.id, to: [{ address: 'kim@customer.example' }], subject: 'Your order', text: 'It shipped.' });
  const sendJob = (messageId: string, attempts = 0, maxAttempts = 12): JobRecord => ({
    id: `outbound:send:${messageId}`,
    purpose: 'outbound.send',
    target: 'smtp:acc_1',
    payload: { messageId },
    state: 'active',
    attempts,
    maxAttempts,
    runAt: NOW,
    lastError: null,
    createdAt: NOW,
    updatedAt: NOW,
  });
  const run = (job: JobRecord) => (handlers.get(job.purpose) as (j: JobRecord) => Promise<void>)(job);
  const message = async (id: string) => (await store.get<StoredMessage>(`smsg:${id}`)) as StoredMessage;
  const session = async (id: string) => (await store.get<StoredSession>(`session:${id}`)) as StoredSession;

  it('sends once: a sent mail is not sent again by a replayed job', async () => {
    const { message: m } = await start();
    await run(sendJob(m.id));
    await run(sendJob(m.id));
    expect(sends).toBe(1);
    expect((await message(m.id)).delivery).toMatchObject({ state: 'sent', attempts: 1, accepted: ['kim@customer.example'], sentAt: new Date(NOW).toISOString() });
  });

  it('a permanent refusal fails the mail on the message, the session and in the CRM', async () => {
    const { message: m, session: s } = await start();
    script = () => Object.assign(new Error('550'), { delivery: { kind: 'permanent', message: '550 5.1.1 <kim@customer.example>: user unknown' } });
    await expect(run(sendJob(m.id))).rejects.toBeInstanceOf(PermanentJobError);
    expect((await message(m.id)).delivery).toMatchObject({ state: 'failed', lastError: '550 5.1.1 <kim@customer.example>: user unknown' });
    const after = await session(s.id);
    expect(after.interactions.at(-1)).toMatchObject({ type: 'delivery_failed', data: { outcome: 'failed' } });
    expect(crmFailures).toEqual([{ sessionId: s.id, outcome: 'failed', reason: '550 5.1.1 <kim@customer.example>: user unknown' }]);
  });

  it('a transient failure is retried (counted, with the server’s delay); the last attempt fails it', async () => {
    const { message: m } = await start();
    script = () => Object.assign(new Error('down'), { delivery: { kind: 'retry', delayMs: 60_000, message: 'connect ECONNREFUSED' } });
    const err = await run(sendJob(m.id, 0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).delayMs).toBe(60_000);
    expect((await message(m.id)).delivery).toMatchObject({ state: 'queued', attempts: 1, lastError: 'connect ECONNREFUSED' });
    await expect(run(sendJob(m.id, 11, 12))).rejects.toBeInstanceOf(PermanentJobError);
    expect((await message(m.id)).delivery).toMatchObject({ state: 'failed', attempts: 12 });
    // A retry that succeeds after an outage: a new message this time.
    const second = (await start()).message;
    let n = 0;
    script = () => (++n === 1 ? Object.assign(new Error('x'), { delivery: { kind: 'retry', message: 'timeout' } }) : { accepted: ['kim@customer.example'], rejected: [] });
    await expect(run(sendJob(second.id, 0))).rejects.toThrow('x');
    await run(sendJob(second.id, 1));
    expect((await message(second.id)).delivery).toMatchObject({ state: 'sent', attempts: 2, lastError: null });
  });

  it('sends nothing while the email channel is off; the mail waits (R-GLB-1)', async () => {
    const { message: m } = await start();
    settings = { ...settings, emailChannel: { enabled: false } };
    await expect(run(sendJob(m.id))).rejects.toBeInstanceOf(RetryLaterError);
    expect(sends).toBe(0);
    expect((await message(m.id)).delivery?.state).toBe('queued');
    settings = { ...settings, emailChannel: { enabled: true } };
    await run(sendJob(m.id));
    expect(sends).toBe(1);
  });

  it('a CRM agent reply becomes one outbound mail, however often the event is replayed (R-AGT-4)', async () => {
    const { session: s } = await start();
    const event = { type: 'agent_reply', recordId: '42', bodyText: 'From the ticket.', authorEmail: 'ann@shop.example', at: NOW, eventId: 'ev-1' };
    const job = { ...sendJob('x'), id: 'outbound:crm-reply:ev-1', purpose: CRM_REPLY_PURPOSE, target: 'outbound', payload: { sessionId: s.id, event } };
    await run(job);
    await run(job);
    const entries = await store.indexRange(`session-messages:${s.id}`, { limit: 10 });
    const msgs = (await store.getMany<StoredMessage>(entries.map((e) => `smsg:${e.member}`))).filter((x): x is StoredMessage => !!x);
    const replies = msgs.filter((x) => x.text.includes('From the ticket.'));
    expect(replies).toHaveLength(1);
    expect(replies[0]?.agentId).toBe(agent.id);
    expect(replies[0]?.kind).toBe('agent_reply');
  });

  it('the outbox queues a new send job for queued mail whose job is gone, only while the channel is on', async () => {
    const { message: m } = await start();
    const states = new Map<string, JobRecord['state']>([[`outbound:send:${m.id}`, 'delayed']]);
    const jobs = { get: async (id: string) => (states.has(id) ? { ...sendJob(m.id), id, state: states.get(id) as JobRecord['state'] } : undefined) };
    // Alive job: nothing to do.
    expect(await service.reconcileOutbox(jobs, 0)).toBe(0);
    // The job failed after the channel stayed off for hours: queued again once the channel is on.
    states.set(`outbound:send:${m.id}`, 'failed');
    settings = { ...settings, emailChannel: { enabled: false } };
    expect(await service.reconcileOutbox(jobs, 0)).toBe(0);
    settings = { ...settings, emailChannel: { enabled: true } };
    expect(await service.reconcileOutbox(jobs, 0)).toBe(1);
    expect((await message(m.id)).delivery?.requeues).toBe(1);
    // The new job is alive now: nothing more; once sent, the outbox forgets the message.
    states.set(`outbound:send:${m.id}:r1`, 'waiting');
    expect(await service.reconcileOutbox(jobs, 0)).toBe(0);
    await run({ ...sendJob(m.id), id: `outbound:send:${m.id}:r1` });
    expect(await store.indexRange('outbox:queued', { limit: 10 })).toEqual([]);
  });

  it('replies despite a malformed Message-ID in the thread (it is left out of the threading headers)', async () => {
    const { session: s } = await start();
    const msgKey = 'smsg:msg_weird';
    await store.commit([
      { op: 'put', key: msgKey, value: { ...(await message((await store.indexRange(`session-messages:${s.id}`, { limit: 1 }))[0]!.member)), id: 'msg_weird', direction: 'inbound', kind: 'customer', messageId: '20240101123456.ABCDEF', delivery: undefined } },
      { op: 'index', index: `session-messages:${s.id}`, member: 'msg_weird', score: 2 },
    ]);
    const res = await service.reply(s.id, agent.id, { text: 'Still fine.' });
    // Threaded to the last usable id (our own first mail), never to the malformed one.
    expect(res.message.headers['in-reply-to']).toMatch(/^<s\./);
    expect(res.message.headers['in-reply-to']).not.toContain('ABCDEF');
    expect(res.message.delivery?.state).toBe('queued');
  });

  it('refuses header injection in a new session before anything is stored', async () => {
    await expect(service.startSession(agent.id, { queueId: queue.id, to: [{ address: 'kim@customer.example' }], subject: 'Hi\r\nBcc: x@y.example', text: 'x' })).rejects.toMatchObject({
      code: 'validation_failed',
      fields: [{ path: 'subject' }],
    });
    await expect(service.startSession(agent.id, { queueId: queue.id, to: [{ address: 'kim@customer.example\nBcc: x@y.example' }], subject: 'Hi', text: 'x' })).rejects.toMatchObject({
      fields: [{ path: 'to.0.address' }],
    });
    expect(await store.indexRange('sessions:updated', { limit: 10 })).toEqual([]);
  });
});



// Outbound mail end to end against a private Dovecot and a private SMTP server (smtp-server): agent replies with
// threading headers, subject rules, signature tags and inline images, attachments, the Sent-folder copy; customer
// replies thread back; auto-reply triggers and the loop guard; header safety; restart between accept and send;
// new outbound sessions; bounces of our own mail [R-AGT-2/3, R-GLB-2/3, R-SIG-1..4 (R-SIG-3: the session's queue's signature), R-ARP-1..6, R-ACC-3, R-SES-4].
import { ImapFlow } from 'imapflow';
import { simpleParser, type ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poll } from './helpers/poll.js';
import { addMailAccount } from './helpers/mail-setup.js';
import { startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { startTestService, type TestService } from './helpers/service.js';

const USER = { user: 'support@shop.example', password: 'imap-pass-3' };
const OUT_ONLY = { user: 'noreply@shop.example', password: 'smtp-only-1' };
// 1×1 transparent PNG
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let svc: TestService;
let accountId: string;
let outOnlyId: string;
let queueId: string;
let agentId: string;
let seq = 0;

async function imap<T>(fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const client = new ImapFlow({ host: dovecot.host, port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: USER.user, pass: USER.password }, logger: false });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.logout();
  }
}

async function append(opts: { from?: string; subject: string; body?: string; headers?: string[]; messageId?: string }): Promise<string> {
  const id = opts.messageId ?? `out-e2e-${++seq}-${Date.now()}@customer.example`;
  const lines = [
    `From: ${opts.from ?? 'Ann Customer <ann@customer.example>'}`,
    `To: Shop Support <${USER.user}>`,
    'Cc: Bob Colleague <bob@customer.example>',
    `Subject: ${opts.subject}`,
    `Message-ID: <${id}>`,
    `Date: ${new Date().toUTCString()}`,
    ...(opts.headers ?? []),
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body ?? 'Hello, my order did not arrive.',
    '',
  ];
  await imap((c) => c.append('INBOX', lines.join('\r\n')));
  return id;
}

const sessionOf = async (messageId: string) => {
  const claim = await svc.services.store.get<{ sessionId: string }>(`msgid:${messageId}`);
  return claim ? (await svc.call('GET', `/api/sessions/${claim.sessionId}`)).body : undefined;
};

/** Mails the SMTP server received whose headers match, parsed. */
async function receivedWhere(pred: (m: ParsedMail) => boolean): Promise<ParsedMail[]> {
  const parsed = await Promise.all(smtp.received.map((r) => simpleParser(r.raw, { keepCidLinks: true })));
  return parsed.filter(pred);
}

const inReplyToOf = (m: ParsedMail) => (m.inReplyTo ?? '').replace(/[<>]/g, '');

async function upload(filename: string, contentType: string, bytes: Buffer): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(bytes)], { type: contentType }), filename);
  const res = await svc.services.app.request('/api/uploads', { method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef' }, body: form });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  [dovecot, smtp] = await Promise.all([startDovecot({ users: [USER] }), startSmtpServer({ users: [USER, OUT_ONLY] })]);
  svc = await startTestService();
  expect((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true }, subject: { addSessionId: true }, company: { name: 'Shop Inc' } })).status).toBe(200);
  const account = await addMailAccount(svc, dovecot, smtp, USER);
  accountId = account.body.id;
  const outOnly = await svc.call('POST', '/api/accounts', { address: OUT_ONLY.user, password: OUT_ONLY.password, outboundOnly: true, smtp: { host: smtp.host, port: smtp.port, secure: false, starttls: 'off' } });
  expect(outOnly.status).toBe(201);
  outOnlyId = outOnly.body.id;
  const agent = await svc.call('POST', '/api/agents', { name: 'Carla Agent', firstName: 'Carla', email: 'carla@shop.example', company: 'Shop Inc' });
  expect(agent.status).toBe(201);
  agentId = agent.body.id;
  const queue = await svc.call('POST', '/api/queues', {
    name: 'Orders',
    language: 'en',
    email: { enabled: true, addresses: [accountId], agents: [agentId] },
    signature: { enabled: true, html: `<p><b>@{agent_name}</b> — @{company}<br>@{alias}</p><img src="data:image/png;base64,${PNG.toString('base64')}" alt="logo">` },
  });
  expect(queue.status).toBe(201);
  queueId = queue.body.id;
}, 60_000);

afterAll(async () => {
  await svc?.stop();
  await Promise.all([dovecot?.stop(), smtp?.stop()]);
});

describe('agent replies', () => {
  it('sends from the queue address with threading headers, the token on the first reply, the signature, inline image, attachment and a Sent copy', async () => {
    const mid = await append({ subject: 'Order 1001 missing' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    // R-SIG-3: the agent is in another queue too, with its own signature; the session's queue decides.
    const billing = await svc.call('POST', '/api/queues', { name: 'Billing', language: 'en', email: { agents: [agentId] }, signature: { enabled: true, html: '<p>BILLING-SIGNATURE</p>' } });
    expect(billing.status).toBe(201);
    const pdf = await upload('invoice.pdf', 'application/pdf', Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'));
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, html: '<p>Hi Ann, <script>alert(1)</script>we are on it.</p>', attachments: [pdf] });
    expect(res.status).toBe(202);
    expect(res.body.message.delivery.state).toBe('queued');
    expect(res.body.session.status).toBe('active');
    const [mail] = await poll('the reply at the SMTP server', () => receivedWhere((m) => inReplyToOf(m) === mid), (l) => l.length === 1);
    const m = mail as ParsedMail;
    expect(m.from?.value[0]?.address).toBe(USER.user);
    expect(m.to && !Array.isArray(m.to) ? m.to.value.map((a) => a.address) : []).toEqual(['ann@customer.example']);
    // Reply-all keeps the customer's Cc.
    expect(m.cc && !Array.isArray(m.cc) ? m.cc.value.map((a) => a.address) : []).toEqual(['bob@customer.example']);
    expect(m.subject).toBe(`Re: Order 1001 missing [#${session.id}]`);
    expect(m.messageId).toMatch(new RegExp(`^<s\\.${session.id}\\.[a-z0-9]+@shop\\.example>$`));
    expect(m.references).toContain(`<${mid}>`);
    expect(m.html).toContain('we are on it.');
    expect(m.html).not.toContain('<script');
    expect(m.html).toContain('<b>Carla Agent</b> — Shop Inc');
    expect(m.html).not.toContain('BILLING-SIGNATURE');
    expect(m.text).toContain('carla@shop.example');
    const logo = m.attachments.find((a) => a.contentType === 'image/png');
    expect(logo?.cid).toBeTruthy();
    expect(m.html).toContain(`cid:${logo?.cid}`);
    expect(Buffer.compare(logo!.content, PNG)).toBe(0);
    expect(m.attachments.map((a) => a.filename)).toContain('invoice.pdf');

    // Delivery recorded, then the Sent-folder copy in Dovecot.
    const detail = await poll(
      'delivery sent + Sent copy',
      async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body,
      (d) => d.messages.some((x: any) => x.direction === 'outbound' && x.delivery?.state === 'sent' && x.delivery?.sentFolder === 'Sent'),
    );
    const out = detail.messages.find((x: any) => x.direction === 'outbound');
    expect(out.kind).toBe('agent_reply');
    expect(out.agentId).toBe(agentId);
    const sentIds = await imap(async (c) => {
      const lock = await c.getMailboxLock('Sent');
      try {
        const ids: string[] = [];
        for await (const msg of c.fetch('1:*', { envelope: true })) ids.push(msg.envelope?.messageId ?? '');
        return ids;
      } finally {
        lock.release();
      }
    });
    expect(sentIds).toContain(m.messageId);

    // A second reply has no new token and stays threaded.
    const second = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'One more thing.', replyAll: false });
    expect(second.status).toBe(202);
    const [m2] = await poll('second reply', () => receivedWhere((x) => x.text?.includes('One more thing.') ?? false), (l) => l.length === 1);
    // R-GLB-2: the token rides on the first agent reply only; later ones thread by their headers.
    expect(m2?.subject).toBe('Re: Order 1001 missing');
    expect(m2?.inReplyTo).toBe(`<${mid}>`);
    expect(m2?.cc).toBeUndefined();
  }, 90_000);

  it('threads the customer’s answer to our reply into the same session, with and without the token', async () => {
    const mid = await append({ subject: 'Where is my parcel' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Checking.' });
    expect(res.status).toBe(202);
    const ourId = `<${res.body.message.messageId}>`;
    // Answer carrying only In-Reply-To (subject without the token).
    const answer = await append({ subject: 'Re: Where is my parcel', headers: [`In-Reply-To: ${ourId}`, `References: <${mid}> ${ourId}`] });
    const s2 = await poll('answer threaded', () => sessionOf(answer), (s) => !!s);
    expect(s2.id).toBe(session.id);
    // Answer with only the subject token (a client that drops the headers).
    const tokenOnly = await append({ subject: `Re: Where is my parcel [#${session.id}]` });
    const s3 = await poll('token threaded', () => sessionOf(tokenOnly), (s) => !!s);
    expect(s3.id).toBe(session.id);
  }, 60_000);

  it('refuses header injection, unknown uploads, forbidden types and subject edits when editing is off', async () => {
    const mid = await append({ subject: 'Refusals' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const before = smtp.received.length;
    const cases: [unknown, string][] = [
      [{ agentId, text: 'x', subject: 'Hi\r\nBcc: evil@x.example' }, 'subject'],
      [{ agentId, text: 'x', cc: [{ address: 'a@b.example', name: 'A\nB' }] }, 'cc.0.name'],
      [{ agentId, text: 'x', cc: [{ address: 'evil@x.example\r\nBcc: y@z.example' }] }, 'cc.0.address'],
      [{ agentId, text: 'x', attachments: ['upl_nope'] }, 'attachments.0'],
      [{ agentId, text: 'x', subject: 'A brand new subject' }, 'subject'],
      [{ agentId }, 'html'],
    ];
    for (const [body, field] of cases) {
      const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.fields.map((f: any) => f.path).join(',')).toContain(field);
    }
    const exe = await upload('tool.exe', 'application/octet-stream', Buffer.from('MZ\x90\x00 binary'));
    const refused = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'x', attachments: [exe] });
    expect(refused.status).toBe(400);
    expect(refused.body.error.fields[0]).toMatchObject({ path: 'attachments.0' });
    expect(refused.body.error.fields[0].message).toContain('tool.exe');
    const fake = await upload('photo.jpg', 'image/jpeg', Buffer.from('not a jpeg at all'));
    const mismatch = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'x', attachments: [fake] });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.fields[0].message).toContain('photo.jpg');
    // Nothing was sent, nothing stored.
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.received.length).toBe(before);
    const detail = (await svc.call('GET', `/api/sessions/${session.id}`)).body;
    expect(detail.messages.filter((m: any) => m.direction === 'outbound')).toHaveLength(0);
  }, 60_000);

  it('records an edited subject when editing is allowed, and the customer’s answer still threads', async () => {
    expect((await svc.call('PUT', '/api/settings', { subject: { addSessionId: false, agentsCanEdit: true } })).status).toBe(200);
    try {
      const mid = await append({ subject: 'Edit me' });
      const session = await poll('session', () => sessionOf(mid), (s) => !!s);
      const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'New title.', subject: 'Refund for order 1002' });
      expect(res.status).toBe(202);
      expect(res.body.session.subject).toBe('Refund for order 1002');
      expect(res.body.session.id).toBe(session.id);
      const ourId = `<${res.body.message.messageId}>`;
      await poll('edited reply', () => receivedWhere((m) => m.subject === 'Refund for order 1002'), (l) => l.length === 1);
      const answer = await append({ subject: 'Re: Refund for order 1002', headers: [`In-Reply-To: ${ourId}`] });
      expect((await poll('answer', () => sessionOf(answer), (s) => !!s)).id).toBe(session.id);
    } finally {
      await svc.call('PUT', '/api/settings', { subject: { agentsCanEdit: false, addSessionId: true } });
    }
  }, 60_000);

  it('an agent token acts as its agent; another agentId answers 403', async () => {
    const token = await svc.call('POST', `/api/agents/${agentId}/tokens`, { label: 'workspace' });
    expect(token.status).toBe(201);
    const mid = await append({ subject: 'Token reply' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const ok = await svc.call('POST', `/api/sessions/${session.id}/replies`, { text: 'From my token.' }, token.body.token);
    expect(ok.status).toBe(202);
    expect(ok.body.message.agentId).toBe(agentId);
    const other = await svc.call('POST', `/api/sessions/${session.id}/replies`, { text: 'x', agentId: 'agt_other' }, token.body.token);
    expect(other.status).toBe(403);
  }, 60_000);

  it('starts a new outbound session from the queue address', async () => {
    const res = await svc.call('POST', '/api/sessions', {
      agentId,
      queueId,
      to: [{ address: 'dan@customer.example', name: 'Dan' }],
      bcc: [{ address: 'audit@shop-archive.example' }],
      subject: 'Your warranty',
      text: 'Your warranty expires soon.',
    });
    expect(res.status).toBe(202);
    expect(res.body.session).toMatchObject({ status: 'active', assigneeId: agentId, queueId, customer: { address: 'dan@customer.example' } });
    const [m] = await poll('new session mail', () => receivedWhere((x) => x.text?.includes('Your warranty expires soon.') ?? false), (l) => l.length === 1);
    expect(m?.subject).toBe(`Your warranty [#${res.body.session.id}]`);
    expect(m?.inReplyTo).toBeUndefined();
    // R-AGT-1: the queue's inbox and the agent's list show it.
    const inbox = (await svc.call('GET', `/api/sessions?queue=${queueId}&limit=1000`)).body.items;
    expect(inbox.map((x: any) => x.id)).toContain(res.body.session.id);
    expect(inbox.every((x: any) => x.queueId === queueId)).toBe(true);
    const mine = (await svc.call('GET', `/api/sessions?assignee=${agentId}&status=active`)).body.items;
    expect(mine.map((x: any) => x.id)).toContain(res.body.session.id);
        // Bcc travels in the envelope only.
    const envelope = smtp.received.find((r) => r.raw.includes('Your warranty expires soon.'));
    expect(envelope?.to).toEqual(['dan@customer.example', 'audit@shop-archive.example']);
    expect(envelope?.raw.toString()).not.toMatch(/^bcc:/im);
    // The customer's answer threads into it.
    const answer = await append({ from: 'Dan <dan@customer.example>', subject: `Re: Your warranty`, headers: [`In-Reply-To: ${m?.messageId}`] });
    expect((await poll('answer', () => sessionOf(answer), (s) => !!s)).id).toBe(res.body.session.id);
  }, 60_000);

  it('a reply on a Closed session past its reopen window starts a new linked session (R-SES-4)', async () => {
    const mid = await append({ subject: 'Old closed case' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    expect((await svc.call('POST', `/api/sessions/${session.id}/status`, { status: 'closed' })).status).toBe(200);
    expect((await svc.call('PUT', '/api/settings', { timers: { closedToReopened: { enabled: false } } })).status).toBe(200);
    try {
      const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Following up on your old case.' });
      expect(res.status).toBe(202);
      expect(res.body.session.id).not.toBe(session.id);
      expect(res.body.session.linkedFrom).toBe(session.id);
      expect(res.body.session.status).toBe('active');
      expect((await svc.call('GET', `/api/sessions/${session.id}`)).body.status).toBe('closed');
      const [m] = await poll('linked reply', () => receivedWhere((x) => x.text?.includes('Following up on your old case.') ?? false), (l) => l.length === 1);
      // Still threaded to the customer's mail, with the new session's token.
      expect(m?.inReplyTo).toBe(`<${mid}>`);
      expect(m?.subject).toBe(`Re: Old closed case [#${res.body.session.id}]`);
    } finally {
      await svc.call('PUT', '/api/settings', { timers: { closedToReopened: { enabled: true } } });
    }
  }, 60_000);

  it('sends an accepted reply exactly once across a restart between accept and send', async () => {
    const mid = await append({ subject: 'Restart case' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    // Stop the job runner: the reply is accepted (committed with its send job) but not sent yet.
    await svc.services.jobs.stop();
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Sent once, whatever happens.' });
    expect(res.status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect((await receivedWhere((m) => m.text?.includes('Sent once, whatever happens.') ?? false)).length).toBe(0);
    await svc.restart();
    await poll('sent after restart', () => receivedWhere((m) => m.text?.includes('Sent once, whatever happens.') ?? false), (l) => l.length === 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await receivedWhere((m) => m.text?.includes('Sent once, whatever happens.') ?? false)).length).toBe(1);
  }, 90_000);
});

describe('auto-replies', () => {
  beforeAll(async () => {
    const res = await svc.call('PATCH', `/api/queues/${queueId}`, {
      autoReply: { enabled: true, senderAccountId: outOnlyId, html: '<p>Hello @{consumer}, we got your mail on @{date} — @{company}, queue @{queue}.</p>' },
    });
    expect(res.status).toBe(200);
  });

  it('refuses an unknown tag at save time', async () => {
    const res = await svc.call('PATCH', `/api/queues/${queueId}`, { autoReply: { html: 'Hi @{customer_name}' } });
    expect(res.status).toBe(400);
    expect(res.body.error.fields[0].path).toBe('autoReply.html');
    const sig = await svc.call('PATCH', `/api/queues/${queueId}`, { signature: { html: 'Bye @{agent_nickname}' } });
    expect(sig.status).toBe(400);
    expect(sig.body.error.fields[0].path).toBe('signature.html');
    // R-SIG-4: a signature image over 512 KB is refused with the limit named.
    const big = Buffer.concat([PNG.subarray(0, 16), Buffer.alloc(600 * 1024)]);
    const heavy = await svc.call('PATCH', `/api/queues/${queueId}`, { signature: { html: `<img src="data:image/png;base64,${big.toString('base64')}">` } });
    expect(heavy.status).toBe(400);
    expect(heavy.body.error.fields[0]).toMatchObject({ path: 'signature.html' });
    expect(heavy.body.error.fields[0].message).toContain('512 KB');
  });

  it('answers a new thread once, from the outbound-only sender, threaded, with Auto-Submitted and Reply-To the queue address', async () => {
    const mid = await append({ from: 'Erin Buyer <erin@customer.example>', subject: 'Need help with returns' });
    const [m] = await poll('auto-reply', () => receivedWhere((x) => inReplyToOf(x) === mid), (l) => l.length === 1);
    expect(m?.subject).toBe('RE: Need help with returns');
    expect(m?.from?.value[0]?.address).toBe(OUT_ONLY.user);
    expect(m?.replyTo?.value[0]?.address).toBe(USER.user);
    expect(m?.headers.get('auto-submitted')).toBe('auto-replied');
    expect(m?.html).toContain('Hello Erin, we got your mail on');
    expect(m?.html).toContain('Shop Inc, queue Orders.');
    expect(m?.html).not.toContain('@{');
    const session = await sessionOf(mid);
    expect(session.interactions.some((i: any) => i.type === 'auto_reply_sent')).toBe(true);
    expect(session.messages.find((x: any) => x.direction === 'outbound')?.kind).toBe('auto_reply');
  }, 60_000);

  it('answers a reply on a Paused session and on a Closed one (which reopens); not a reply on an active session', async () => {
    const mid = await append({ from: 'Fay <fay@customer.example>', subject: 'Paused case' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    await poll('first auto-reply', () => receivedWhere((x) => inReplyToOf(x) === mid), (l) => l.length === 1);
    expect((await svc.call('POST', `/api/sessions/${session.id}/status`, { status: 'paused' })).status).toBe(200);
    const onPaused = await append({ from: 'Fay <fay@customer.example>', subject: 'Re: Paused case', headers: [`In-Reply-To: <${mid}>`] });
    await poll('paused-reply auto-reply', () => receivedWhere((x) => inReplyToOf(x) === onPaused), (l) => l.length === 1);
    expect((await sessionOf(onPaused)).status).toBe('active');
    // Active and recently updated: no auto-reply.
    const onActive = await append({ from: 'Fay <fay@customer.example>', subject: 'Re: Paused case', headers: [`In-Reply-To: <${mid}>`] });
    await poll('stored', () => sessionOf(onActive), (s) => !!s);
    expect((await svc.call('POST', `/api/sessions/${session.id}/status`, { status: 'closed' })).status).toBe(200);
    const onClosed = await append({ from: 'Fay <fay@customer.example>', subject: 'Re: Paused case', headers: [`In-Reply-To: <${mid}>`] });
    await poll('closed-reply auto-reply', () => receivedWhere((x) => inReplyToOf(x) === onClosed), (l) => l.length === 1);
    expect((await sessionOf(onClosed)).status).toBe('reopened');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await receivedWhere((x) => inReplyToOf(x) === onActive)).toHaveLength(0);
  }, 90_000);

  it('answers a reply on an Active session with no status update for 15 days (stale), once', async () => {
    const mid = await append({ from: 'Lee <lee@customer.example>', subject: 'Stale case' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    await poll('new-thread auto-reply', () => receivedWhere((x) => inReplyToOf(x) === mid), (l) => l.length === 1);
    expect((await svc.call('POST', `/api/sessions/${session.id}/status`, { status: 'active' })).status).toBe(200);
    // 16 days pass without a status update (the session's status clock moved back; the timers do not touch Active
    // sessions for 30 days).
    const key = `session:${session.id}`;
    const stored = await svc.services.store.get<{ statusChangedAt: number; rev: number }>(key);
    await svc.services.store.commit([
      { op: 'check', key, rev: stored!.rev },
      { op: 'put', key, value: { ...stored, statusChangedAt: Date.now() - 16 * 86_400_000, rev: stored!.rev + 1 } },
    ]);
    const stale = await append({ from: 'Lee <lee@customer.example>', subject: 'Re: Stale case', headers: [`In-Reply-To: <${mid}>`] });
    const [m] = await poll('stale auto-reply', () => receivedWhere((x) => inReplyToOf(x) === stale), (l) => l.length === 1);
    expect(m?.subject).toBe('RE: Re: Stale case');
    const after = await sessionOf(stale);
    expect(after.interactions.filter((i: any) => i.type === 'auto_reply_sent').map((i: any) => i.data.trigger)).toEqual(['new_thread', 'stale_active_reply']);
  }, 60_000);

  it('never answers automatic mail, and at most 3 per sender per hour', async () => {
    const robots = [
      await append({ from: 'Gus <gus@customer.example>', subject: 'Out of office', headers: ['Auto-Submitted: auto-replied'] }),
      await append({ from: 'News <news@list.example>', subject: 'Weekly news', headers: ['List-Id: <news.list.example>', 'Precedence: list'] }),
      await append({ from: 'MAILER-DAEMON@mx.example', subject: 'Undelivered Mail Returned to Sender' }),
    ];
    const flood: string[] = [];
    for (let i = 0; i < 5; i++) flood.push(await append({ from: 'Hal <hal@customer.example>', subject: `Question ${i}` }));
    for (const id of [...robots, ...flood]) await poll('stored', () => sessionOf(id), (s) => !!s);
    await poll('3 auto-replies to Hal', () => receivedWhere((x) => flood.includes(inReplyToOf(x))), (l) => l.length >= 3);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await receivedWhere((x) => flood.includes(inReplyToOf(x)))).toHaveLength(3);
    expect(await receivedWhere((x) => robots.includes(inReplyToOf(x)))).toHaveLength(0);
  }, 90_000);
});

describe('bounces of our own mail', () => {
  it('files a DSN with the reply it reports on: marked bounced, no new session, no auto-reply', async () => {
    const mid = await append({ from: 'Ivy <ivy@customer.example>', subject: 'Bounce me' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'This will bounce.' });
    expect(res.status).toBe(202);
    const ourId = res.body.message.messageId as string;
    // Our reply itself sent (the session also holds the new-thread auto-reply, sent on its own schedule).
    await poll('sent', async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body, (d) => d.messages.some((x: any) => x.messageId === ourId && x.delivery?.state === 'sent'));
    const boundary = 'dsn-b';
    const dsnId = `dsn-${Date.now()}@mx.customer.example`;
    const dsn = [
      'From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>',
      `To: ${USER.user}`,
      'Subject: Undelivered Mail Returned to Sender',
      `Message-ID: <${dsnId}>`,
      `Date: ${new Date().toUTCString()}`,
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain',
      '',
      'I could not deliver your message to ivy@customer.example: mailbox unknown.',
      `--${boundary}`,
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.customer.example',
      '',
      'Final-Recipient: rfc822; ivy@customer.example',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 <ivy@customer.example>: Recipient address rejected: User unknown',
      '',
      `--${boundary}`,
      'Content-Type: text/rfc822-headers',
      '',
      `From: ${USER.user}`,
      'To: ivy@customer.example',
      `Message-ID: <${ourId}>`,
      'Subject: Re: Bounce me',
      '',
      `--${boundary}--`,
      '',
    ].join('\r\n');
    await imap((c) => c.append('INBOX', dsn));
    const after = await poll('bounce filed', async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body, (d) => d.messages.some((x: any) => x.kind === 'bounce'));
    const out = after.messages.find((x: any) => x.messageId === ourId);
    expect(out.delivery.state).toBe('bounced');
    expect(out.delivery.lastError).toContain('5.1.1');
    expect(after.interactions.some((i: any) => i.type === 'delivery_failed' && i.data.outcome === 'bounced')).toBe(true);
    expect(after.status).toBe('active');
    const claim = await svc.services.store.get<{ sessionId: string }>(`msgid:${dsnId}`);
    expect(claim?.sessionId).toBe(session.id);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await receivedWhere((x) => inReplyToOf(x) === dsnId)).toHaveLength(0);
  }, 60_000);
});

describe('a customer quoting a bounce', () => {
  it('stays an ordinary reply: threaded, not filed as a bounce, our mail still sent', async () => {
    const mid = await append({ from: 'Jo <jo@customer.example>', subject: 'Quoted bounce' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    const res = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Did you get this?' });
    const ourId = res.body.message.messageId as string;
    // Our reply itself sent (the session also holds the new-thread auto-reply, sent on its own schedule).
    await poll('sent', async () => (await svc.call('GET', `/api/sessions/${session.id}`)).body, (d) => d.messages.some((x: any) => x.messageId === ourId && x.delivery?.state === 'sent'));
    const answer = await append({
      from: 'Jo <jo@customer.example>',
      subject: 'Re: Quoted bounce',
      headers: [`In-Reply-To: <${ourId}>`],
      body: 'My colleague got this, is it you?\r\n> This message was created automatically by mail delivery software.\r\n> A message that you sent could not be delivered to one or more of its recipients.\r\n> 550 5.1.1 user unknown',
    });
    const after = await poll('answer stored', () => sessionOf(answer), (s) => !!s);
    expect(after.id).toBe(session.id);
    expect(after.messages.find((x: any) => x.messageId === answer)?.kind).toBe('customer');
    expect(after.messages.find((x: any) => x.messageId === ourId)?.delivery.state).toBe('sent');
    expect(after.interactions.some((i: any) => i.type === 'delivery_failed')).toBe(false);
  }, 60_000);
});

describe('email channel off (R-GLB-1)', () => {
  it('refuses replies and new sessions while the channel is off', async () => {
    const mid = await append({ subject: 'Channel off case' });
    const session = await poll('session', () => sessionOf(mid), (s) => !!s);
    expect((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: false } })).status).toBe(200);
    try {
      const before = smtp.received.length;
      const reply = await svc.call('POST', `/api/sessions/${session.id}/replies`, { agentId, text: 'Should not go out.' });
      expect(reply.status).toBe(409);
      expect(reply.body.error.message).toContain('email channel is off');
      const fresh = await svc.call('POST', '/api/sessions', { agentId, queueId, to: [{ address: 'zed@customer.example' }], subject: 'Nope', text: 'x' });
      expect(fresh.status).toBe(409);
      expect(smtp.received.length).toBe(before);
    } finally {
      await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } });
    }
  }, 60_000);
});

// /api/accounts against a private Dovecot and private SMTP servers [R-ACC-1..4, R-REL-4, R-API-1, R-API-2].
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendMessage, startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startTestService, type TestService } from '../helpers/service.js';

const ADDRESS = 'support@example.test';
const PASSWORD = 'Imap-Secret-pw-7781';
const WRONG = 'definitely-not-the-password';

interface SmtpHandle {
  port: number;
  logins: string[];
  close(): Promise<void>;
}

/** A private SMTP server on loopback that only accepts ADDRESS / PASSWORD. */
async function startSmtp(opts: { starttls: boolean }): Promise<SmtpHandle> {
  const port = await freePort();
  const logins: string[] = [];
  const server = new SMTPServer({
    authOptional: false,
    // Plain-text AUTH is allowed so that `starttls: 'off'` can log in; with STARTTLS on, the built-in
    // self-signed certificate is offered (a client that verifies certificates refuses it).
    allowInsecureAuth: true,
    disabledCommands: opts.starttls ? [] : ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push(auth.username ?? '');
      if (auth.username === ADDRESS && auth.password === PASSWORD) callback(null, { user: auth.username });
      else callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => callback());
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return { port, logins, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function rawMail(n: number): string {
  return [
    'From: Customer <customer@example.org>',
    `To: Support <${ADDRESS}>`,
    `Subject: Before the account ${n}`,
    `Message-ID: <before-${n}@example.org>`,
    'Date: Mon, 03 Feb 2025 10:00:00 +0000',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Old mail that must not be ingested.',
    '',
  ].join('\r\n');
}

let dovecot: DovecotHandle;
let smtp: SmtpHandle;
let smtpTls: SmtpHandle;
let closedPort: number;
let redis: RedisServerHandle;
let svc: TestService;

beforeAll(async () => {
  [smtp, smtpTls, closedPort, redis] = await Promise.all([startSmtp({ starttls: false }), startSmtp({ starttls: true }), freePort(), startRedis()]);
}, 60_000);

afterAll(async () => {
  await Promise.all([smtp?.close(), smtpTls?.close(), redis?.stop()]);
});

const imapEndpoint = (over: Record<string, unknown> = {}) => ({ host: '127.0.0.1', port: dovecot.port, secure: false, starttls: 'off', ...over });
const smtpEndpoint = (over: Record<string, unknown> = {}) => ({ host: '127.0.0.1', port: smtp.port, secure: false, starttls: 'off', ...over });

function body(over: Record<string, unknown> = {}) {
  return { address: ADDRESS, password: PASSWORD, imap: imapEndpoint(), smtp: smtpEndpoint(), ...over };
}

const fieldPaths = (res: { body: any }) => (res.body.error?.fields ?? []).map((f: { path: string }) => f.path);

async function remove(id: string) {
  expect((await svc.call('DELETE', `/api/accounts/${id}`)).status).toBe(204);
}

for (const backend of ['embedded', 'redis'] as const) describe(`accounts API on the ${backend} store`, () => {
  let mainId: string;

  beforeAll(async () => {
    // A fresh mailbox per backend: two messages predate the account, so its baseline must skip them.
    dovecot = await startDovecot({ users: [{ user: ADDRESS, password: PASSWORD }] });
    await appendMessage(dovecot, ADDRESS, rawMail(1));
    await appendMessage(dovecot, ADDRESS, rawMail(2));
    svc = await startTestService(backend === 'redis' ? { redisUrl: `${redis.url}/2` } : {});
  }, 60_000);

  afterAll(async () => {
    await svc?.stop();
    await dovecot?.stop();
  });

  it('creates an account with good credentials: both servers connected, password never returned [R-ACC-2, R-ACC-4]', async () => {
    const res = await svc.call('POST', '/api/accounts', body({ aliases: ['Sales@Example.test'] }));
    expect(res.status).toBe(201);
    mainId = res.body.id;
    expect(mainId).toMatch(/^acc_[0-9a-z]{16}$/);
    expect(res.body).toMatchObject({
      service: 'generic_imap',
      username: ADDRESS,
      address: ADDRESS,
      aliases: ['sales@example.test'],
      imap: { host: '127.0.0.1', port: dovecot.port, secure: false, starttls: 'off' },
      smtp: { host: '127.0.0.1', port: smtp.port, secure: false, starttls: 'off' },
      auth: { type: 'password' },
      passwordSet: true,
      outboundOnly: false,
      markAs: { type: 'seen' },
      importSince: null,
      status: {
        valid: true,
        imap: { state: 'connected', error: null, checkedAt: expect.any(String) },
        smtp: { state: 'connected', error: null, checkedAt: expect.any(String) },
      },
    });
    expect(res.body).not.toHaveProperty('password');
    expect(JSON.stringify(res.body)).not.toContain(PASSWORD);
    expect(smtp.logins).toContain(ADDRESS);
  });

  it('seals the password in the store: the plaintext is nowhere in the raw document [R-ACC-2, R-REL-4]', async () => {
    const raw = await svc.services.store.get<any>(`account:${mainId}`);
    expect(raw).toBeDefined();
    expect(JSON.stringify(raw)).not.toContain(PASSWORD);
    expect(raw.auth).toMatchObject({ type: 'password', password: { sealed: expect.any(String) } });
    expect(await svc.services.secrets.open(raw.auth.password.sealed)).toBe(PASSWORD);
    expect(await svc.services.store.get(`account-address:${ADDRESS}`)).toBe(mainId);
    expect(await svc.services.store.get('account-address:sales@example.test')).toBe(mainId);
  });

  it('records the INBOX baseline at creation so that older mail is not ingested', async () => {
    const checkpoint = await svc.services.store.get<{ uidValidity: string; lastUid: number }>(`mailbox:${mainId}:checkpoint`);
    expect(checkpoint).toEqual({ uidValidity: expect.stringMatching(/^\d+$/), lastUid: 2 });
  });

  it('reads, lists newest first and pages with a cursor [R-ACC-1]', async () => {
    const got = await svc.call('GET', `/api/accounts/${mainId}`);
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(mainId);
    expect(got.body).not.toHaveProperty('password');

    const other = await svc.call('POST', '/api/accounts', body({ address: 'second@example.test', outboundOnly: true, imap: undefined }));
    expect(other.status).toBe(201);
    const list = await svc.call('GET', '/api/accounts');
    expect(list.status).toBe(200);
    expect(list.body.items.map((a: { id: string }) => a.id)).toEqual([other.body.id, mainId]);
    expect(list.body.nextCursor).toBeNull();
    expect(JSON.stringify(list.body)).not.toContain(PASSWORD);

    const first = await svc.call('GET', '/api/accounts?limit=1');
    expect(first.body.items.map((a: { id: string }) => a.id)).toEqual([other.body.id]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await svc.call('GET', `/api/accounts?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((a: { id: string }) => a.id)).toEqual([mainId]);
    expect(second.body.nextCursor).toBeNull();
    const bad = await svc.call('GET', '/api/accounts?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
    expect(fieldPaths(bad)).toEqual(['query.cursor']);
    await remove(other.body.id);
  });

  it('PATCH without a password keeps the stored one: /test still connects, and the baseline is not moved', async () => {
    const res = await svc.call('PATCH', `/api/accounts/${mainId}`, { markAs: { type: 'keyword', keyword: '$Processed' }, username: ADDRESS });
    expect(res.status).toBe(200);
    expect(res.body.markAs).toEqual({ type: 'keyword', keyword: '$Processed' });
    expect(res.body.passwordSet).toBe(true);

    await appendMessage(dovecot, ADDRESS, rawMail(3));
    const tested = await svc.call('POST', `/api/accounts/${mainId}/test`);
    expect(tested.status).toBe(200);
    expect(tested.body.status).toMatchObject({ valid: true, imap: { state: 'connected' }, smtp: { state: 'connected' } });
    expect(Date.parse(tested.body.status.smtp.checkedAt)).toBeGreaterThanOrEqual(Date.parse(res.body.status.smtp.checkedAt));
    expect(await svc.services.store.get(`mailbox:${mainId}:checkpoint`)).toMatchObject({ lastUid: 2 });
  });

  it('PATCH with a wrong password is saved and reported auth_failed; a merge of one server field re-checks [R-ACC-4]', async () => {
    const bad = await svc.call('PATCH', `/api/accounts/${mainId}`, { password: WRONG });
    expect(bad.status).toBe(200);
    expect(bad.body.status).toMatchObject({ valid: false, imap: { state: 'auth_failed' }, smtp: { state: 'auth_failed' } });
    const fixed = await svc.call('PATCH', `/api/accounts/${mainId}`, { password: PASSWORD, smtp: { port: smtp.port } });
    expect(fixed.status).toBe(200);
    expect(fixed.body.status.valid).toBe(true);
    expect(fixed.body.smtp).toEqual(smtpEndpoint());
  });

  it('creates with a wrong password: 201, auth_failed on both servers, valid false [R-ACC-4]', async () => {
    const res = await svc.call('POST', '/api/accounts', body({ address: 'wrong@example.test', username: ADDRESS, password: WRONG }));
    expect(res.status).toBe(201);
    expect(res.body.status).toMatchObject({
      valid: false,
      imap: { state: 'auth_failed', error: expect.any(String) },
      smtp: { state: 'auth_failed', error: expect.stringContaining('535') },
    });
    expect(JSON.stringify(res.body)).not.toContain(WRONG);
    // No baseline without a successful login.
    expect(await svc.services.store.get(`mailbox:${res.body.id}:checkpoint`)).toBeUndefined();
    await remove(res.body.id);
  });

  it('reports a closed port as unreachable, and keeps serving other accounts meanwhile [R-ACC-4]', async () => {
    const [down, up] = await Promise.all([
      svc.call('POST', '/api/accounts', body({ address: 'down@example.test', imap: imapEndpoint({ port: closedPort }), smtp: smtpEndpoint({ port: closedPort }) })),
      svc.call('POST', '/api/accounts', body({ address: 'up@example.test', username: ADDRESS })),
    ]);
    expect(down.status).toBe(201);
    expect(down.body.status).toMatchObject({ valid: false, imap: { state: 'unreachable' }, smtp: { state: 'unreachable' } });
    expect(down.body.status.imap.error).toMatch(/ECONNREFUSED/);
    expect(up.status).toBe(201);
    expect(up.body.status.valid).toBe(true);
    await remove(down.body.id);
    await remove(up.body.id);
  });

  it('reports TLS problems as tls_error: implicit TLS on a plain port, an untrusted STARTTLS certificate, required STARTTLS not offered', async () => {
    const implicit = await svc.call(
      'POST',
      '/api/accounts',
      body({ address: 'tls1@example.test', username: ADDRESS, imap: imapEndpoint({ secure: true }), smtp: smtpEndpoint({ secure: true }) }),
    );
    expect(implicit.status).toBe(201);
    expect(implicit.body.status).toMatchObject({ valid: false, imap: { state: 'tls_error' }, smtp: { state: 'tls_error' } });

    // The STARTTLS server offers smtp-server's built-in self-signed certificate: verified, hence refused.
    const untrusted = await svc.call('POST', '/api/accounts', body({ address: 'tls2@example.test', username: ADDRESS, smtp: smtpEndpoint({ port: smtpTls.port, starttls: 'auto' }) }));
    expect(untrusted.body.status).toMatchObject({ valid: false, imap: { state: 'connected' }, smtp: { state: 'tls_error' } });
    // starttls 'off' never upgrades: the same server then accepts the login in clear.
    const off = await svc.call('PATCH', `/api/accounts/${untrusted.body.id}`, { smtp: { starttls: 'off' } });
    expect(off.body.status).toMatchObject({ valid: true, smtp: { state: 'connected' } });

    const required = await svc.call(
      'POST',
      '/api/accounts',
      body({ address: 'tls3@example.test', username: ADDRESS, imap: imapEndpoint({ starttls: 'required' }), smtp: smtpEndpoint({ starttls: 'required' }) }),
    );
    expect(required.body.status).toMatchObject({ valid: false, imap: { state: 'tls_error' }, smtp: { state: 'tls_error' } });
    for (const r of [implicit, untrusted, required]) await remove(r.body.id);
  });

  it('refuses an address or alias already used by any account with 409 naming the field', async () => {
    const dupAddress = await svc.call('POST', '/api/accounts', body({ address: 'SUPPORT@example.test' }));
    expect(dupAddress.status).toBe(409);
    expect(dupAddress.body.error.code).toBe('conflict');
    expect(fieldPaths(dupAddress)).toEqual(['address']);

    const aliasTaken = await svc.call('POST', '/api/accounts', body({ address: 'third@example.test', aliases: ['fine@example.test', 'sales@example.test'], outboundOnly: true, imap: null }));
    expect(aliasTaken.status).toBe(409);
    expect(fieldPaths(aliasTaken)).toEqual(['aliases.1']);

    const aliasIsAddress = await svc.call('POST', '/api/accounts', body({ address: 'fourth@example.test', aliases: [ADDRESS], outboundOnly: true, imap: null }));
    expect(aliasIsAddress.status).toBe(409);
    expect(fieldPaths(aliasIsAddress)).toEqual(['aliases.0']);

    // Nothing was claimed by the refused creations.
    expect(await svc.services.store.get('account-address:third@example.test')).toBeUndefined();
    expect(await svc.services.store.get('account-address:fine@example.test')).toBeUndefined();

    const other = await svc.call('POST', '/api/accounts', body({ address: 'fifth@example.test', outboundOnly: true, imap: undefined }));
    expect(other.status).toBe(201);
    const patchTaken = await svc.call('PATCH', `/api/accounts/${other.body.id}`, { aliases: ['Sales@example.test'] });
    expect(patchTaken.status).toBe(409);
    expect(fieldPaths(patchTaken)).toEqual(['aliases.0']);
    await remove(other.body.id);
  });

  it('creates only one of two concurrent accounts with the same address', async () => {
    const results = await Promise.all(
      [1, 2].map(() => svc.call('POST', '/api/accounts', body({ address: 'race@example.test', username: ADDRESS, outboundOnly: true, imap: undefined }))),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = results.find((r) => r.status === 201)!;
    expect(await svc.services.store.get('account-address:race@example.test')).toBe(winner.body.id);
    await remove(winner.body.id);
  });

  it('outbound-only: no IMAP server and no IMAP check; imap given is refused [R-ACC-3]', async () => {
    const before = dovecot.logTail(500);
    const res = await svc.call('POST', '/api/accounts', { address: 'noreply@example.test', username: ADDRESS, password: PASSWORD, smtp: smtpEndpoint(), outboundOnly: true });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ outboundOnly: true, imap: null, status: { valid: true, imap: null, smtp: { state: 'connected' } } });
    expect(await svc.services.store.get(`mailbox:${res.body.id}:checkpoint`)).toBeUndefined();
    expect(dovecot.logTail(500)).toBe(before);

    const withImap = await svc.call('POST', '/api/accounts', body({ address: 'noreply2@example.test', outboundOnly: true }));
    expect(withImap.status).toBe(400);
    expect(fieldPaths(withImap)).toEqual(['imap']);

    // Switching back to inbound needs an IMAP server; switching an inbound account to outbound-only clears it.
    const noImap = await svc.call('PATCH', `/api/accounts/${res.body.id}`, { outboundOnly: false });
    expect(noImap.status).toBe(400);
    expect(fieldPaths(noImap)).toEqual(['imap']);
    const inbound = await svc.call('PATCH', `/api/accounts/${res.body.id}`, { outboundOnly: false, imap: imapEndpoint() });
    expect(inbound.status).toBe(200);
    expect(inbound.body.status).toMatchObject({ valid: true, imap: { state: 'connected' } });
    const outbound = await svc.call('PATCH', `/api/accounts/${res.body.id}`, { outboundOnly: true });
    expect(outbound.status).toBe(200);
    expect(outbound.body).toMatchObject({ imap: null, status: { imap: null } });
    await remove(res.body.id);
  });

  it('the internal API gives workers the password, and lists only inbound accounts', async () => {
    const out = await svc.call('POST', '/api/accounts', body({ address: 'out@example.test', username: ADDRESS, outboundOnly: true, imap: undefined }));
    const forUse = await svc.services.accounts.getForUse(mainId);
    expect(forUse.password).toBe(PASSWORD);
    const inbound = await svc.services.accounts.listInbound();
    expect(inbound.map((a) => a.id)).toEqual([mainId]);
    await remove(out.body.id);
  });

  it.each([
    ['a bad email', { address: 'not-an-email' }, 'address'],
    ['port 0', { smtp: { host: '127.0.0.1', port: 0 } }, 'smtp.port'],
    ['port 65536', { imap: { host: '127.0.0.1', port: 65536 } }, 'imap.port'],
    ['CR/LF in the user name', { username: 'support\r\nRCPT TO:<x@y>' }, 'username'],
    ['NUL in the password', { password: 'abc\u0000def' }, 'password'],
    ['LF in a host', { imap: { host: 'imap.example.com\nx', port: 993 } }, 'imap.host'],
    ['an unknown field', { color: 'blue' }, 'color'],
    ['an unknown starttls mode', { smtp: { host: '127.0.0.1', port: 25, starttls: 'maybe' } }, 'smtp.starttls'],
    ['a bad keyword', { markAs: { type: 'keyword', keyword: 'has space' } }, 'markAs.keyword'],
    ['a bad importSince', { importSince: 'yesterday' }, 'importSince'],
    ['an oauth2 auth (not yet)', { auth: { type: 'oauth2' } }, 'auth.type'],
    ['a missing IMAP server', { imap: undefined }, 'imap'],
    ['the address as its own alias', { address: 'self@example.test', aliases: ['SELF@example.test'] }, 'aliases.0'],
  ])('refuses %s with 400 naming the field', async (_name, over, path) => {
    const res = await svc.call('POST', '/api/accounts', body(over));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(fieldPaths(res)).toContain(path);
  });

  it('refuses a PATCH with an unknown field or a bad port, and keeps the account', async () => {
    const res = await svc.call('PATCH', `/api/accounts/${mainId}`, { smtp: { port: 0 }, nope: 1 });
    expect(res.status).toBe(400);
    expect(fieldPaths(res)).toEqual(expect.arrayContaining(['smtp.port', 'nope']));
    expect((await svc.call('GET', `/api/accounts/${mainId}`)).body.smtp.port).toBe(smtp.port);
    const cr = await svc.call('PATCH', `/api/accounts/${mainId}`, { username: 'a\rb' });
    expect(cr.status).toBe(400);
    expect(fieldPaths(cr)).toEqual(['username']);
  });

  it('needs the admin token, and answers 404 for unknown ids [R-API-2]', async () => {
    expect((await svc.call('GET', '/api/accounts', undefined, null)).status).toBe(401);
    expect((await svc.call('POST', '/api/accounts', body(), null)).status).toBe(401);
    for (const [method, path] of [
      ['GET', '/api/accounts/acc_nope'],
      ['PATCH', '/api/accounts/acc_nope'],
      ['DELETE', '/api/accounts/acc_nope'],
      ['POST', '/api/accounts/acc_nope/test'],
    ] as const) {
      const res = await svc.call(method, path, method === 'PATCH' ? { outboundOnly: true } : undefined);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('deletes: 204, then 404, and the address and checkpoint are free again', async () => {
    await remove(mainId);
    expect((await svc.call('GET', `/api/accounts/${mainId}`)).status).toBe(404);
    expect(await svc.services.store.get(`account-address:${ADDRESS}`)).toBeUndefined();
    expect(await svc.services.store.get(`mailbox:${mainId}:checkpoint`)).toBeUndefined();
    const again = await svc.call('POST', '/api/accounts', body());
    expect(again.status).toBe(201);
    // The new account's baseline sees the three messages now in INBOX.
    expect(await svc.services.store.get(`mailbox:${again.body.id}:checkpoint`)).toMatchObject({ lastUid: 3 });
    await remove(again.body.id);
  });
});

describe('accounts API with ALLOW_PRIVATE_HOSTS=false [R-REL-4]', () => {
  let strict: TestService;
  beforeAll(async () => {
    strict = await startTestService({ env: { ALLOW_PRIVATE_HOSTS: 'false' } });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('refuses loopback hosts with 400 naming imap.host and smtp.host, before any connection', async () => {
    const loginsBefore = smtp.logins.length;
    const res = await strict.call('POST', '/api/accounts', body());
    expect(res.status).toBe(400);
    expect(fieldPaths(res)).toEqual(expect.arrayContaining(['imap.host', 'smtp.host']));
    expect(smtp.logins.length).toBe(loginsBefore);
    expect((await strict.call('GET', '/api/accounts')).body.items).toEqual([]);
  });
});

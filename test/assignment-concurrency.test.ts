// Auto-assignment under concurrency on real Redis with two service processes [R-ASG-5, R-ASG-3, R-ASG-4]: 500 mails
// arriving at once in two mailboxes, each read by a different instance, are assigned so that the agents' active counts
// differ by at most one and sum to 500; with a daily limit of 60 no agent gets more than 60 in the day and the rest waits.
import { chownSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotHandle } from './helpers/dovecot.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';
import { api, startServiceProcess, type RunningService } from './helpers/service-process.js';
import { startSmtpServer, type SmtpServerHandle } from './helpers/smtp-server.js';
import { tempDirs } from './helpers/temp-dirs.js';

const TOKEN = 'conc-admin-token-0123456789abcdef';
const SECRET = 'cd'.repeat(32);
const USERS = [
  { user: 'support1@shop.example', password: 'imap-pass-1' },
  { user: 'support2@shop.example', password: 'imap-pass-2' },
];
const AGENTS = 5;

let dovecot: DovecotHandle;
let smtp: SmtpServerHandle;
let redis: RedisServerHandle;
const procs: RunningService[] = [];

const temp = tempDirs('ec-conc-');
const tempDir = (): string => temp.make();

async function start(env: Record<string, string>): Promise<RunningService> {
  const p = await startServiceProcess({ ADMIN_TOKEN: TOKEN, SECRET_KEY: SECRET, LOG_LEVEL: 'error', ...env });
  procs.push(p);
  return p;
}

async function call(base: string, method: string, path: string, body?: unknown, status = 200) {
  const res = await api(base, TOKEN, method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(status);
  return res.body;
}

async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, everyMs = 200, show: (v: T) => unknown = (v) => v): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(show(last)).slice(0, 500)}\n${procs.map((p) => p.output().slice(-3000)).join('\n-----\n')}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

/**
 * Drops `count` messages into a user's maildir at once (written to tmp/, then renamed into new/ in a tight loop), so
 * the server announces them together: the closest thing to "250 mails arrive in the same instant".
 */
function dropMail(user: string, count: number, tag: string): void {
  const root = dovecot.maildir(user);
  const owner = statSync(root);
  const names: string[] = [];
  const box = user.split('@')[0];
  for (let i = 0; i < count; i++) {
    const raw = [
      `From: Customer ${i} <${tag}-${box}-c${i}@example.com>`,
      `To: ${user}`,
      `Subject: ${tag} question ${box} ${i}`,
      `Message-ID: <${tag}-${box}-${i}@example.com>`,
      `Date: ${new Date().toUTCString()}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Hello, this is message ${i} of ${tag}.`,
      '',
    ].join('\r\n');
    const name = `${Date.now()}.M${i}P${process.pid}${tag}${box}.test`;
    const file = join(root, 'tmp', name);
    writeFileSync(file, raw, { mode: 0o600 });
    chownSync(file, owner.uid, owner.gid);
    names.push(name);
  }
  for (const name of names) renameSync(join(root, 'tmp', name), join(root, 'new', name));
}

interface Summary {
  id: string;
  assigneeId: string | null;
  subject: string;
  createdAt: string;
}

async function sessionsWith(base: string, prefix: string): Promise<Summary[]> {
  const out: Summary[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const res: any = await api(base, TOKEN, 'GET', `/api/sessions?limit=1000&q=${prefix}${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...(res.body.items as Summary[]).filter((s) => s.subject.startsWith(prefix)));
    cursor = res.body.nextCursor;
    if (!cursor) break;
  }
  return out;
}

beforeAll(async () => {
  [dovecot, smtp, redis] = await Promise.all([startDovecot({ users: USERS }), startSmtpServer({ users: USERS }), startRedis({ appendfsync: 'everysec' })]);
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all([dovecot?.stop(), smtp?.stop(), redis?.stop()]);
  temp.removeAll();
});

describe('auto-assignment across two instances on one Redis', () => {
  it('500 mails at once: counts within one of each other and summing to 500; then a daily limit of 60 is never exceeded', async () => {
    const started = Date.now();
    const redisUrl = `${redis.url}/5`;
    const a = await start({ DATA_DIR: tempDir(), REDIS_URL: redisUrl });
    await call(a.base, 'PUT', '/api/settings', { emailChannel: { enabled: true } });
    const agents: string[] = [];
    for (let i = 0; i < AGENTS; i++) agents.push((await call(a.base, 'POST', '/api/agents', { name: `Agent ${i}`, email: `agent${i}@cc.example` }, 201)).id);
    const account = async (base: string, u: (typeof USERS)[number]) => {
      const res = await call(base, 'POST', '/api/accounts', {
        address: u.user,
        password: u.password,
        imap: { host: dovecot.host, port: dovecot.port, secure: false, starttls: 'off' },
        smtp: { host: smtp.host, port: smtp.port, secure: false, starttls: 'off' },
      }, 201);
      expect(res.status.valid, JSON.stringify(res.status)).toBe(true);
      return res.id as string;
    };
    const health = async (base: string) => ((await fetch(`${base}/health`).then((r) => r.json())) as any).mailboxes.map((m: any) => m.accountId).sort();
    // Instance A reads mailbox 1; instance B, started after, takes mailbox 2 the moment it is added through it.
    const acc1 = await account(a.base, USERS[0]!);
    const q1 = (await call(a.base, 'POST', '/api/queues', { name: 'Support', language: 'en', email: { enabled: true, addresses: [acc1], agents }, autoAssign: { enabled: true } }, 201)).id;
    await waitFor('A reads mailbox 1', () => health(a.base), (m) => m.length === 1, 20_000);
    const b = await start({ DATA_DIR: tempDir(), REDIS_URL: redisUrl });
    const acc2 = await account(b.base, USERS[1]!);
    await call(b.base, 'PATCH', `/api/queues/${q1}`, { email: { addresses: [acc1, acc2] } });
    await waitFor('B reads mailbox 2', () => health(b.base), (m) => m.length === 1, 20_000);
    await new Promise((r) => setTimeout(r, 6000)); // A's next reconcile sees mailbox 2 taken; routing caches refresh
    expect(await health(a.base)).toEqual([acc1]);
    expect(await health(b.base)).toEqual([acc2]);

    // Run 1: 250 + 250 mails at once, no limit.
    const t1 = Date.now();
    dropMail(USERS[0]!.user, 250, 'runone');
    dropMail(USERS[1]!.user, 250, 'runone');
    const assigned = await waitFor(
      '500 sessions assigned',
      () => sessionsWith(a.base, 'runone'),
      (s) => s.length === 500 && s.every((x) => x.assigneeId !== null),
      90_000,
      500,
      (s) => ({ sessions: s.length, assigned: s.filter((x) => x.assigneeId !== null).length }),
    );
    console.info(`run 1: 500 mails ingested and assigned by two instances in ${Date.now() - t1} ms`);
    const loads = await Promise.all(agents.map(async (id, i) => (await call(i % 2 ? a.base : b.base, 'GET', `/api/agents/${id}/load`)).active as number));
    const bySessions = agents.map((id) => assigned.filter((s) => s.assigneeId === id).length);
    console.info(`run 1 active counts: ${JSON.stringify(loads)} (from the sessions: ${JSON.stringify(bySessions)})`);
    expect(loads).toEqual(bySessions);
    expect(loads.reduce((x, y) => x + y, 0)).toBe(500);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    // The two instances worked at the same time: the creation times of each mailbox's sessions overlap.
    const span = (box: string) => {
      const times = assigned.filter((s) => s.subject.includes(` ${box} `)).map((s) => Date.parse(s.createdAt));
      return [Math.min(...times), Math.max(...times)] as const;
    };
    const [s1, s2] = [span('support1'), span('support2')];
    console.info(`run 1 ingest windows: A ${s1[1] - s1[0]} ms, B ${s2[1] - s2[0]} ms, overlapping ${Math.min(s1[1], s2[1]) - Math.max(s1[0], s2[0])} ms`);
    expect(Math.min(s1[1], s2[1]) - Math.max(s1[0], s2[0])).toBeGreaterThan(0);
    expect((await call(a.base, 'GET', `/api/queues/${q1}/waiting`)).count).toBe(0);

    // Run 2: a new queue with a daily limit of 60 takes both mailboxes; 500 more mails at once.
    const q2 = (await call(a.base, 'POST', '/api/queues', { name: 'Limited', language: 'en', email: { enabled: true, agents }, autoAssign: { enabled: true, dailyLimit: 60 } }, 201)).id;
    await call(a.base, 'PATCH', `/api/queues/${q1}`, { email: { addresses: [] } });
    await call(a.base, 'PATCH', `/api/queues/${q2}`, { email: { addresses: [acc1, acc2] } });
    await new Promise((r) => setTimeout(r, 6000)); // B's routing cache (5 s) sees the move
    const t2 = Date.now();
    dropMail(USERS[0]!.user, 250, 'runtwo');
    dropMail(USERS[1]!.user, 250, 'runtwo');
    const second = await waitFor(
      '500 more sessions, 300 assigned',
      () => sessionsWith(b.base, 'runtwo'),
      (s) => s.length === 500 && s.filter((x) => x.assigneeId !== null).length >= 300,
      90_000,
      500,
      (s) => ({ sessions: s.length, assigned: s.filter((x) => x.assigneeId !== null).length }),
    );
    await new Promise((r) => setTimeout(r, 1500)); // anything over the limit would show up now
    const final = await sessionsWith(b.base, 'runtwo');
    console.info(`run 2: 500 mails with dailyLimit 60 settled in ${Date.now() - t2} ms`);
    const perAgent = agents.map((id) => final.filter((s) => s.assigneeId === id).length);
    console.info(`run 2 assignments per agent: ${JSON.stringify(perAgent)}`);
    for (const n of perAgent) expect(n).toBe(60);
    expect(final.filter((s) => s.assigneeId === null)).toHaveLength(200);
    expect(second.length).toBe(500);
    const waiting = await call(a.base, 'GET', `/api/queues/${q2}/waiting`);
    expect(waiting).toMatchObject({ count: 200, reason: 'all_at_limit' });
    for (const [i, id] of agents.entries()) {
      const load = await call(i % 2 ? a.base : b.base, 'GET', `/api/agents/${id}/load`);
      expect(load.daily.find((d: any) => d.queueId === q2).count).toBe(60);
      expect(load.active).toBe(loads[i]! + 60);
    }
    console.info(`whole test ${Date.now() - started} ms`);
  }, 180_000);
});

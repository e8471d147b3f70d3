// Auto-assignment and manual assignment through the in-process service with a fake clock [R-ASG-1..5, R-QUE-4, R-SES-3]:
// each rule alone and combined, ties, day rollover in a non-UTC zone, holidays, presence expiry, manual vs auto,
// transfer, deactivation, waiting sessions, and active counts through status changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchedMessage } from '../src/core/ports.js';
import { startTestService, type TestService } from './helpers/service.js';

// Wednesday 2026-06-10 10:00 UTC (12:00 in Paris, UTC+2 in summer).
const T0 = Date.UTC(2026, 5, 10, 10, 0, 0);
const clock = { t: T0, now() { return this.t; } };
const at = (iso: string) => {
  clock.t = Date.parse(iso);
};
const advance = (ms: number) => {
  clock.t += ms;
};

let svc: TestService;
let uid = 0;
let mailNo = 0;

beforeAll(async () => {
  svc = await startTestService({ clock });
});
afterAll(async () => {
  await svc?.stop();
});

const settle = () => svc.services.assignment.settle();

async function ok(method: string, path: string, body?: unknown, status = 200, token?: string) {
  const res = await svc.call(method, path, body, token);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(status);
  return res.body;
}

let agentNo = 0;
async function agent(name = 'Agent'): Promise<string> {
  agentNo++;
  const body = await ok('POST', '/api/agents', { name: `${name} ${agentNo}`, email: `agent${agentNo}@cc.example` }, 201);
  return body.id as string;
}

async function queue(over: Record<string, unknown> = {}): Promise<string> {
  const body = await ok('POST', '/api/queues', { name: `Queue ${Math.random().toString(36).slice(2, 7)}`, language: 'en', ...over }, 201);
  return body.id as string;
}

/** New inbound mail lands in `queueId` (the default queue; the routing cache is 5 s on the fake clock). */
async function routeTo(queueId: string) {
  await ok('PUT', '/api/settings', { routing: { defaultQueueId: queueId } });
  advance(6000);
}

/** Delivers a new mail (a new session); returns the session id after assignment settled. */
async function mail(over: Partial<FetchedMessage> = {}, extraHeaders = ''): Promise<string> {
  mailNo++;
  const raw = `From: Customer ${mailNo} <c${mailNo}@example.com>\r\nTo: help@shop.example\r\nSubject: Question ${mailNo}\r\nMessage-ID: <q${mailNo}@example.com>\r\n${extraHeaders}Content-Type: text/plain\r\n\r\nHello ${mailNo}\r\n`;
  const bytes = new Uint8Array(Buffer.from(raw));
  uid++;
  const outcome = await svc.services.ingest.deliver({ accountId: 'acc_t', uidValidity: '1', uid, internalDate: clock.t, size: bytes.length, raw: bytes, imported: false, ...over });
  expect(outcome).toBe('stored');
  await settle();
  const claim = await svc.services.store.get<{ sessionId: string }>(`msgid:q${mailNo}@example.com`);
  return claim!.sessionId;
}

/** A reply by the customer of the session whose first mail was number `n`. */
async function reply(toMessageNo: number): Promise<void> {
  mailNo++;
  const raw = `From: Customer ${toMessageNo} <c${toMessageNo}@example.com>\r\nTo: help@shop.example\r\nSubject: Re: Question ${toMessageNo}\r\nMessage-ID: <q${mailNo}@example.com>\r\nIn-Reply-To: <q${toMessageNo}@example.com>\r\nContent-Type: text/plain\r\n\r\nMore\r\n`;
  const bytes = new Uint8Array(Buffer.from(raw));
  uid++;
  expect(await svc.services.ingest.deliver({ accountId: 'acc_t', uidValidity: '1', uid, internalDate: clock.t, size: bytes.length, raw: bytes, imported: false })).toBe('stored');
  await settle();
}

const session = async (id: string) => ok('GET', `/api/sessions/${id}`);
const assignee = async (id: string) => (await session(id)).assigneeId as string | null;
const load = async (agentId: string) => ok('GET', `/api/agents/${agentId}/load`);
const active = async (agentId: string) => (await load(agentId)).active as number;
const waiting = async (queueId: string) => ok('GET', `/api/queues/${queueId}/waiting`);
const online = async (agentId: string, on: boolean, ttlSeconds = 300) => {
  await ok('PUT', `/api/agents/${agentId}/presence`, { online: on, ttlSeconds });
  await settle();
};
const autoOn = (over: Record<string, unknown> = {}) => ({ autoAssign: { enabled: true, dailyLimit: null, businessHoursOnly: false, loggedInOnly: false, ...over } });
const allDay = { mon: [['00:00', '24:00']], tue: [['00:00', '24:00']], wed: [['00:00', '24:00']], thu: [['00:00', '24:00']], fri: [['00:00', '24:00']], sat: [['00:00', '24:00']], sun: [['00:00', '24:00']] };
const officeHours = { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']], wed: [['09:00', '17:00']], thu: [['09:00', '17:00']], fri: [['09:00', '17:00']], sat: [], sun: [] };

describe('ranking (R-ASG-3)', () => {
  it('gives each new mail to the agent with the fewest active sessions; ties: never assigned first, then the oldest last assignment', async () => {
    at('2026-06-10T10:00:00Z');
    const agents = [await agent(), await agent(), await agent()];
    const q = await queue({ email: { agents }, ...autoOn() });
    await routeTo(q);
    // All three never assigned and at 0: ties resolve by id, each gets one.
    const first: string[] = [];
    for (let i = 0; i < 3; i++) {
      advance(1000);
      first.push((await assignee(await mail()))!);
    }
    expect([...first].sort()).toEqual([...agents].sort());
    expect(first).toEqual([...agents].sort());
    // All at 1: the oldest last assignment (the first one assigned) wins, then the next.
    advance(1000);
    expect(await assignee(await mail())).toBe(first[0]);
    advance(1000);
    expect(await assignee(await mail())).toBe(first[1]);
    for (const a of agents) expect(await active(a)).toBe(a === first[2] ? 1 : 2);
    // Pausing one of first[0]'s sessions drops it to 1: it ties with first[2] at 1 but was assigned last → first[2] first.
    const mine = (await ok('GET', `/api/sessions?assignee=${first[0]}`)).items as { id: string }[];
    await ok('POST', `/api/sessions/${mine[0]!.id}/status`, { status: 'paused' });
    expect(await active(first[0]!)).toBe(1);
    advance(1000);
    expect(await assignee(await mail())).toBe(first[2]);
    advance(1000);
    expect(await assignee(await mail())).toBe(first[0]);
  });

  it('never auto-assigns imported mail, nor in a queue with auto-assignment off', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn() });
    await routeTo(q);
    expect(await assignee(await mail({ imported: true }))).toBeNull();
    expect((await waiting(q)).count).toBe(0);
    const off = await queue({ email: { agents: [a] } });
    await routeTo(off);
    expect(await assignee(await mail())).toBeNull();
    expect((await waiting(off)).count).toBe(0);
    expect(await active(a)).toBe(0);
  });
});

describe('active counts through status changes (R-SES-3)', () => {
  it('counts unopened, reopened and active; pause, resolve and close do not', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn() });
    await routeTo(q);
    const s = await mail();
    const n = mailNo;
    expect(await assignee(s)).toBe(a);
    expect(await active(a)).toBe(1);
    const status = async (to: string) => ok('POST', `/api/sessions/${s}/status`, { status: to });
    await status('paused');
    expect(await active(a)).toBe(0);
    await status('active');
    expect(await active(a)).toBe(1);
    await status('resolved');
    expect(await active(a)).toBe(0);
    await status('closed');
    expect(await active(a)).toBe(0);
    await status('reopened');
    expect(await active(a)).toBe(1);
    await status('closed');
    expect(await active(a)).toBe(0);
    // A customer reply reopens the closed session: active again, still the same agent (no new assignment).
    await reply(n);
    expect((await session(s)).status).toBe('reopened');
    expect(await active(a)).toBe(1);
    expect((await load(a)).daily[0].count).toBe(1);
    // The repair recount agrees.
    expect(await ok('POST', `/api/agents/${a}/load/recount`)).toEqual({ agentId: a, before: 1, after: 1 });
  });

  it('a reply to a closed session with no agent is auto-assigned (R-ASG-2)', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [] }, ...autoOn() });
    await routeTo(q);
    const s = await mail();
    const n = mailNo;
    expect(await assignee(s)).toBeNull();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'no_agent' });
    await ok('POST', `/api/sessions/${s}/status`, { status: 'closed' });
    // Closed: it leaves the waiting list at the next attempt.
    await svc.services.assignment.drain(q);
    expect((await waiting(q)).count).toBe(0);
    await ok('PATCH', `/api/queues/${q}`, { email: { agents: [a] } });
    await settle();
    expect(await assignee(s)).toBeNull();
    await reply(n);
    expect(await assignee(s)).toBe(a);
    expect(await active(a)).toBe(1);
  });

  it('recount repairs a wrong count from the assigned sessions', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn() });
    await routeTo(q);
    await mail();
    await mail();
    const key = `agent-load:${a}`;
    const doc = (await svc.services.store.get<any>(key))!;
    await svc.services.store.put(key, { ...doc, active: 17 });
    expect(await ok('POST', `/api/agents/${a}/load/recount`)).toEqual({ agentId: a, before: 17, after: 2 });
    expect(await active(a)).toBe(2);
  });
});

describe('daily limit (R-ASG-4)', () => {
  it('skips agents at the limit; the rest waits with the reason until the next local day', async () => {
    at('2026-06-10T10:00:00Z');
    const [a, b] = [await agent(), await agent()];
    const q = await queue({ email: { agents: [a, b] }, ...autoOn({ dailyLimit: 2 }) });
    await routeTo(q);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      advance(1000);
      ids.push(await mail());
    }
    const who = await Promise.all(ids.map(assignee));
    expect(who.filter((x) => x === a)).toHaveLength(2);
    expect(who.filter((x) => x === b)).toHaveLength(2);
    expect(who[4]).toBeNull();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'all_at_limit', autoAssignEnabled: true });
    // Resolving sessions frees load, not the day's count.
    await ok('POST', `/api/sessions/${ids[0]}/status`, { status: 'resolved' });
    await svc.services.assignment.sweep();
    expect(await assignee(ids[4]!)).toBeNull();
    // Next day (UTC queue): the limit resets and the waiting session is assigned by the sweep.
    at('2026-06-11T00:00:01Z');
    await svc.services.assignment.sweep();
    expect(await assignee(ids[4]!)).not.toBeNull();
    expect((await waiting(q)).count).toBe(0);
  });

  it('counts the day in the queue’s time zone: 23:30 UTC is already the next day in Paris', async () => {
    at('2026-06-10T21:30:00Z'); // 23:30 in Paris
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, hours: { timeZone: 'Europe/Paris', weekly: allDay }, ...autoOn({ dailyLimit: 1 }) });
    await routeTo(q);
    const first = await mail();
    expect(await assignee(first)).toBe(a);
    advance(60_000);
    const second = await mail();
    expect(await assignee(second)).toBeNull();
    expect((await waiting(q)).reason).toBe('all_at_limit');
    expect((await load(a)).parked).toEqual([{ queueId: q, reason: 'limit', until: '2026-06-10T22:00:00.000Z' }]);
    at('2026-06-10T23:30:00Z'); // still June 10 in UTC, 01:30 on June 11 in Paris
    await svc.services.assignment.sweep();
    expect(await assignee(second)).toBe(a);
    const days = (await load(a)).daily.filter((d: any) => d.queueId === q);
    expect(days).toEqual([
      { queueId: q, day: '2026-06-11', count: 1 },
      { queueId: q, day: '2026-06-10', count: 1 },
    ]);
  });

  it('a manual assignment counts toward the limit', async () => {
    at('2026-06-10T10:00:00Z');
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn({ dailyLimit: 1, enabled: false }) });
    await routeTo(q);
    const s1 = await mail();
    expect(await assignee(s1)).toBeNull();
    await ok('POST', `/api/sessions/${s1}/assign`, { agentId: a });
    await ok('PATCH', `/api/queues/${q}`, { autoAssign: { enabled: true } });
    await settle();
    const s2 = await mail();
    expect(await assignee(s2)).toBeNull();
    expect((await waiting(q)).reason).toBe('all_at_limit');
  });
});

describe('business hours (R-ASG-4)', () => {
  it('waits outside the hours and on holidays, and assigns in FIFO order when the queue opens', async () => {
    const a = await agent();
    const hours = { timeZone: 'Europe/Paris', weekly: officeHours, holidays: ['2026-06-12'] };
    const q = await queue({ email: { agents: [a] }, hours, ...autoOn({ businessHoursOnly: true }) });
    await routeTo(q);
    at('2026-06-11T16:30:00Z'); // Thursday 18:30 in Paris: closed
    const evening = await mail();
    expect(await assignee(evening)).toBeNull();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'closed', oldestSince: '2026-06-11T16:30:00.000Z' });
    at('2026-06-12T08:00:00Z'); // Friday 10:00 in Paris, but a holiday
    const holiday = await mail();
    await svc.services.assignment.sweep();
    expect(await assignee(evening)).toBeNull();
    expect(await assignee(holiday)).toBeNull();
    expect((await waiting(q)).count).toBe(2);
    at('2026-06-13T08:00:00Z'); // Saturday: closed
    await svc.services.assignment.sweep();
    expect((await waiting(q)).count).toBe(2);
    at('2026-06-15T06:59:00Z'); // Monday 08:59 in Paris
    await svc.services.assignment.sweep();
    expect((await waiting(q)).count).toBe(2);
    at('2026-06-15T07:00:00Z'); // Monday 09:00: open
    await svc.services.assignment.sweep();
    expect(await assignee(evening)).toBe(a);
    expect(await assignee(holiday)).toBe(a);
    expect(await waiting(q)).toMatchObject({ count: 0, reason: null });
    // FIFO: the evening mail was assigned first.
    const at1 = (await session(evening)).interactions.find((i: any) => i.type === 'agent_assigned').at;
    const at2 = (await session(holiday)).interactions.find((i: any) => i.type === 'agent_assigned').at;
    expect(at1 <= at2).toBe(true);
    expect((await session(evening)).updatedAt <= (await session(holiday)).updatedAt).toBe(true);
  });

  it('without businessHoursOnly the hours do not matter', async () => {
    at('2026-06-13T22:00:00Z'); // Sunday midnight in Paris
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, hours: { timeZone: 'Europe/Paris', weekly: officeHours }, ...autoOn() });
    await routeTo(q);
    expect(await assignee(await mail())).toBe(a);
  });
});

describe('presence (R-ASG-4 logged-in only)', () => {
  it('assigns only online agents; an expired presence is offline; coming online takes the waiting sessions', async () => {
    at('2026-06-10T10:00:00Z');
    const [a, b] = [await agent(), await agent()];
    const q = await queue({ email: { agents: [a, b] }, ...autoOn({ loggedInOnly: true }) });
    await routeTo(q);
    await online(a, true, 60);
    expect(await assignee(await mail())).toBe(a);
    expect(await assignee(await mail())).toBe(a); // b is offline even with fewer sessions
    advance(61_000); // a's presence expires
    const s3 = await mail();
    expect(await assignee(s3)).toBeNull();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'all_offline' });
    await online(b, true);
    expect(await assignee(s3)).toBe(b);
    expect((await waiting(q)).count).toBe(0);
    // a comes back online: un-parked at once, and ranks after b only by load.
    await online(a, true);
    expect((await load(a)).parked).toEqual([]);
    expect(await assignee(await mail())).toBe(b); // b: 1 active, a: 2
  });

  it('combines the limit, the hours and presence', async () => {
    at('2026-06-10T07:30:00Z'); // Wednesday 09:30 in Paris
    const [a, b, c] = [await agent(), await agent(), await agent()];
    const q = await queue({
      email: { agents: [a, b, c] },
      hours: { timeZone: 'Europe/Paris', weekly: officeHours },
      ...autoOn({ dailyLimit: 1, loggedInOnly: true, businessHoursOnly: true }),
    });
    await routeTo(q);
    await online(a, true, 86_400);
    await online(b, true, 86_400);
    const s1 = await mail();
    const s2 = await mail();
    const s3 = await mail();
    expect([await assignee(s1), await assignee(s2)].sort()).toEqual([a, b].sort());
    expect(await assignee(s3)).toBeNull();
    expect((await waiting(q)).reason).toBe('all_at_limit'); // a and b full, c offline
    await online(c, true, 86_400);
    expect(await assignee(s3)).toBe(c);
    // Closed in the evening: even with fresh limits (next day) nothing is assigned before 09:00.
    at('2026-06-10T18:00:00Z');
    const s4 = await mail();
    expect((await waiting(q)).reason).toBe('closed');
    at('2026-06-11T06:00:00Z'); // Thursday 08:00 Paris: new day, still closed
    await svc.services.assignment.sweep();
    expect(await assignee(s4)).toBeNull();
    at('2026-06-11T07:00:00Z'); // 09:00: open, limits reset
    await svc.services.assignment.sweep();
    expect(await assignee(s4)).not.toBeNull();
  });
});

describe('manual assignment (R-ASG-1, SPEC §11b)', () => {
  it('admin assigns members only (409 otherwise); agent tokens assign or unassign themselves only (403 otherwise)', async () => {
    at('2026-06-10T10:00:00Z');
    const [a, b, outsider] = [await agent(), await agent(), await agent()];
    const team = await ok('POST', '/api/teams', { name: `Team ${agentNo}`, agentIds: [b] }, 201);
    const q = await queue({ email: { agents: [a, team.id] } });
    await routeTo(q);
    const s = await mail();
    expect(await assignee(s)).toBeNull();
    const conflict = await svc.call('POST', `/api/sessions/${s}/assign`, { agentId: outsider });
    expect(conflict.status).toBe(409);
    expect((await svc.call('POST', `/api/sessions/${s}/assign`, { agentId: 'agt_nobody' })).status).toBe(409);
    expect((await svc.call('POST', `/api/sessions/SZZZZZZZZZZ/assign`, { agentId: a })).status).toBe(404);
    expect((await svc.call('POST', `/api/sessions/${s}/assign`, {})).status).toBe(400);
    // Through the team.
    expect((await ok('POST', `/api/sessions/${s}/assign`, { agentId: b })).assigneeId).toBe(b);
    expect(await active(b)).toBe(1);
    const tokenA = (await ok('POST', `/api/agents/${a}/tokens`, {}, 201)).token as string;
    // a may not give it to b, nor take b off it, but may take it.
    expect((await svc.call('POST', `/api/sessions/${s}/assign`, { agentId: b }, tokenA)).status).toBe(403);
    expect((await svc.call('POST', `/api/sessions/${s}/assign`, { agentId: null }, tokenA)).status).toBe(403);
    expect((await ok('POST', `/api/sessions/${s}/assign`, { agentId: a }, 200, tokenA)).assigneeId).toBe(a);
    expect(await active(a)).toBe(1);
    expect(await active(b)).toBe(0);
    expect((await ok('POST', `/api/sessions/${s}/assign`, { agentId: null }, 200, tokenA)).assigneeId).toBeNull();
    expect(await active(a)).toBe(0);
    const kinds = (await session(s)).interactions.filter((i: any) => i.type.startsWith('agent_')).map((i: any) => [i.type, i.data.agentId, i.actor.split(':')[0]]);
    expect(kinds).toEqual([
      ['agent_assigned', b, 'admin'],
      ['agent_unassigned', b, 'agent'],
      ['agent_assigned', a, 'agent'],
      ['agent_unassigned', a, 'agent'],
    ]);
    // The agent's own load: readable by itself, not by another agent.
    expect((await svc.call('GET', `/api/agents/${a}/load`, undefined, tokenA)).status).toBe(200);
    expect((await svc.call('GET', `/api/agents/${b}/load`, undefined, tokenA)).status).toBe(403);
    expect((await svc.call('POST', `/api/agents/${a}/load/recount`, undefined, tokenA)).status).toBe(403);
  });

  it('a manual assignment takes the session out of the waiting list', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn({ loggedInOnly: true }) });
    await routeTo(q);
    const s = await mail();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'all_offline' });
    await ok('POST', `/api/sessions/${s}/assign`, { agentId: a });
    expect((await waiting(q)).count).toBe(0);
  });
});

describe('transfer (R-QUE-4)', () => {
  it('moves the session with an interaction, with or without an agent, and runs the target’s rules', async () => {
    at('2026-06-10T10:00:00Z');
    const [a, b, c] = [await agent(), await agent(), await agent()];
    const from = await queue({ email: { agents: [a] }, ...autoOn() });
    const toAuto = await queue({ email: { agents: [b] }, ...autoOn() });
    const toManual = await queue({ email: { agents: [b, c] } });
    const other = await queue({ email: { agents: [a] } });
    await routeTo(from);
    const s = await mail();
    expect(await assignee(s)).toBe(a);
    // Same queue / unknown queue / non-member.
    expect((await svc.call('POST', `/api/sessions/${s}/transfer`, { queueId: from })).status).toBe(409);
    expect((await svc.call('POST', `/api/sessions/${s}/transfer`, { queueId: 'que_nope' })).status).toBe(404);
    expect((await svc.call('POST', `/api/sessions/${s}/transfer`, { queueId: toManual, agentId: a })).status).toBe(409);
    // Without an agent into an auto-assigning queue: the target's rules pick b.
    const t1 = await ok('POST', `/api/sessions/${s}/transfer`, { queueId: toAuto });
    expect(t1).toMatchObject({ queueId: toAuto, assigneeId: b, autoAssign: { assigned: true, agentId: b, waiting: null } });
    expect(await active(a)).toBe(0);
    expect(await active(b)).toBe(1);
    // With an agent: assigned to that member directly.
    const t2 = await ok('POST', `/api/sessions/${s}/transfer`, { queueId: toManual, agentId: c });
    expect(t2).toMatchObject({ queueId: toManual, assigneeId: c, autoAssign: null });
    expect(await active(b)).toBe(0);
    expect(await active(c)).toBe(1);
    // Without an agent into a manual queue: unassigned.
    const t3 = await ok('POST', `/api/sessions/${s}/transfer`, { queueId: other });
    expect(t3).toMatchObject({ queueId: other, assigneeId: null, autoAssign: null });
    const detail = await session(s);
    const transfers = detail.interactions.filter((i: any) => i.type === 'transferred').map((i: any) => [i.data.from, i.data.to]);
    expect(transfers).toEqual([
      [from, toAuto],
      [toAuto, toManual],
      [toManual, other],
    ]);
    expect(await active(c)).toBe(0);
    const list = (await ok('GET', `/api/sessions?queue=${toManual}`)).items;
    expect(list.map((x: any) => x.id)).not.toContain(s);
  });

  it('an agent token may transfer to itself or to nobody only', async () => {
    const [a, b] = [await agent(), await agent()];
    const q1 = await queue({ email: { agents: [a] } });
    const q2 = await queue({ email: { agents: [a, b] } });
    await routeTo(q1);
    const s = await mail();
    const tokenA = (await ok('POST', `/api/agents/${a}/tokens`, {}, 201)).token as string;
    expect((await svc.call('POST', `/api/sessions/${s}/transfer`, { queueId: q2, agentId: b }, tokenA)).status).toBe(403);
    expect((await ok('POST', `/api/sessions/${s}/transfer`, { queueId: q2, agentId: a }, 200, tokenA)).assigneeId).toBe(a);
  });
});

describe('deactivation and queue changes', () => {
  it('a deactivated agent’s open sessions are unassigned and re-assigned; closed ones keep their history', async () => {
    at('2026-06-10T10:00:00Z');
    const [a, b] = [await agent(), await agent()];
    const q = await queue({ email: { agents: [a] }, ...autoOn() });
    await routeTo(q);
    const s1 = await mail();
    const s2 = await mail();
    const s3 = await mail();
    await ok('POST', `/api/sessions/${s3}/status`, { status: 'closed' });
    await ok('POST', `/api/sessions/${s2}/status`, { status: 'paused' });
    expect(await active(a)).toBe(1);
    await ok('PATCH', `/api/queues/${q}`, { email: { agents: [a, b] } });
    await ok('PATCH', `/api/agents/${a}`, { active: false });
    await settle();
    expect(await assignee(s1)).toBe(b);
    expect(await assignee(s2)).toBe(b);
    expect(await assignee(s3)).toBe(a);
    expect(await active(a)).toBe(0);
    expect(await active(b)).toBe(1); // s1 unopened counts, s2 paused does not
    expect((await load(a)).queues).toEqual([]);
    const types = (await session(s1)).interactions.filter((i: any) => i.type.startsWith('agent_')).map((i: any) => `${i.type}:${i.data.agentId}`);
    expect(types).toEqual([`agent_assigned:${a}`, `agent_unassigned:${a}`, `agent_assigned:${b}`]);
    // And a deactivated agent can no longer be assigned by hand.
    expect((await svc.call('POST', `/api/sessions/${s1}/assign`, { agentId: a })).status).toBe(409);
  });

  it('a session waiting for an agent is assigned when one is added to the queue', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [] }, ...autoOn() });
    await routeTo(q);
    const s = await mail();
    expect(await waiting(q)).toMatchObject({ count: 1, reason: 'no_agent' });
    await ok('PATCH', `/api/queues/${q}`, { email: { agents: [a] } });
    await settle();
    expect(await assignee(s)).toBe(a);
  });

  it('a waiting session survives a restart and is assigned by the sweep', async () => {
    const a = await agent();
    const q = await queue({ email: { agents: [a] }, ...autoOn({ loggedInOnly: true }) });
    await routeTo(q);
    const s = await mail();
    expect((await waiting(q)).count).toBe(1);
    await svc.restart();
    await ok('PUT', `/api/agents/${a}/presence`, { online: true });
    await svc.services.assignment.settle();
    expect(await assignee(s)).toBe(a);
  });
});

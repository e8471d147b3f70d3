// The status machine [R-SES-3, R-SES-4, R-ARP-3, R-ASG-2, SPEC §11c].
import { describe, expect, it } from 'vitest';
import { SESSION_STATUSES, type Session, type SessionStatus } from './model.js';
import { DAY_MS, isTimerDue, timerCutoff, timerEntry, type TimerSettings } from './timers.js';
import { MANUAL_TRANSITIONS, STALE_ACTIVE_MS, newInboundSession, transition } from './transition.js';

const T0 = Date.UTC(2026, 10, 1, 9, 0);
const timers: TimerSettings = {
  pausedToClosed: { enabled: true, days: 60 },
  resolvedToClosed: { enabled: true, days: 30 },
  activeToPaused: { enabled: true, days: 30 },
  closedToReopened: { enabled: true, days: 30 },
};
const customer = { address: 'ann@example.com', name: 'Ann' };

function session(status: SessionStatus, over: Partial<Session> = {}): Session {
  const s = newInboundSession({ id: 'S0000000001', queueId: 'que_1', subject: 'Printer broken', customer, messageId: '<m1@x>', imported: false, now: T0 }).session;
  return { ...s, status, ...over };
}

const inbound = (from = customer.address) => ({ type: 'inbound' as const, from: { address: from }, messageId: '<m2@x>', knownSender: from === customer.address });

describe('manual status changes follow SPEC §11c exactly', () => {
  const table: Record<SessionStatus, SessionStatus[]> = {
    unopened: ['active', 'paused', 'resolved', 'closed'],
    active: ['paused', 'resolved', 'closed'],
    paused: ['active', 'resolved', 'closed'],
    resolved: ['active', 'closed'],
    closed: ['reopened'],
    reopened: ['active', 'paused', 'resolved', 'closed'],
  };
  for (const from of SESSION_STATUSES) {
    for (const to of SESSION_STATUSES) {
      if (from === to) continue;
      const allowed = table[from].includes(to);
      it(`${from} → ${to}: ${allowed ? 'allowed' : '409'}`, () => {
        const r = transition(session(from), { type: 'set_status', to, actor: 'agent:a1' }, { now: T0 + 1000, timers });
        if (allowed) {
          expect(r.kind).toBe('applied');
          if (r.kind !== 'applied') return;
          expect(r.session.status).toBe(to);
          expect(r.session.statusChangedAt).toBe(T0 + 1000);
          expect(r.effects).toEqual([{ type: 'status_changed', from, to, actor: 'agent:a1' }]);
          expect(r.session.interactions.at(-1)).toMatchObject({ actor: 'agent:a1', data: { from, to } });
        } else {
          expect(r.kind).toBe('illegal');
        }
      });
    }
  }
  it('the exported table is the spec table', () => expect(MANUAL_TRANSITIONS).toEqual(table));
});

describe('inbound mail', () => {
  it('a new session is unopened, gets the new-thread auto-reply and auto-assignment', () => {
    const { session: s, effects } = newInboundSession({ id: 'S1', queueId: 'q', subject: 's', customer, messageId: '<a@b>', imported: false, now: T0 });
    expect(s.status).toBe('unopened');
    expect(effects).toEqual([{ type: 'auto_reply', trigger: 'new_thread' }, { type: 'auto_assign', reason: 'new_inbound' }]);
    expect(s.interactions.map((i) => i.type)).toEqual(['message_received', 'entered_queue']);
  });
  it('an imported session gets neither auto-reply nor auto-assignment', () => {
    expect(newInboundSession({ id: 'S1', queueId: 'q', subject: 's', customer, messageId: '<a@b>', imported: true, now: T0 }).effects).toEqual([]);
  });
  it('on Paused → Active with the paused-reply auto-reply [R-ARP-3]', () => {
    const r = transition(session('paused', { assigneeId: 'a1' }), inbound(), { now: T0 + DAY_MS, timers });
    expect(r.kind === 'applied' && r.session.status).toBe('active');
    expect(r.kind === 'applied' && r.effects).toContainEqual({ type: 'auto_reply', trigger: 'paused_reply' });
  });
  it('on Closed within the window → Reopened, auto-reply, and assignment when nobody has it [R-SES-4, R-ASG-2]', () => {
    const s = session('closed', { statusChangedAt: T0 });
    const r = transition(s, inbound(), { now: T0 + 30 * DAY_MS, timers });
    expect(r.kind).toBe('applied');
    if (r.kind !== 'applied') return;
    expect(r.session.status).toBe('reopened');
    expect(r.effects).toEqual([
      { type: 'status_changed', from: 'closed', to: 'reopened', actor: 'customer' },
      { type: 'auto_reply', trigger: 'closed_reply' },
      { type: 'auto_assign', reason: 'reply_unassigned_closed' },
    ]);
  });
  it('on Closed past the window, or with reopening off → a new linked session', () => {
    const s = session('closed', { statusChangedAt: T0 });
    expect(transition(s, inbound(), { now: T0 + 30 * DAY_MS + 1, timers }).kind).toBe('start_new_session');
    const off = { ...timers, closedToReopened: { enabled: false, days: 30 } };
    expect(transition(s, inbound(), { now: T0 + 1000, timers: off }).kind).toBe('start_new_session');
  });
  it('on Active: auto-reply only after 15 days without a status update [R-ARP-3]', () => {
    const fresh = transition(session('active', { assigneeId: 'a1', statusChangedAt: T0 }), inbound(), { now: T0 + STALE_ACTIVE_MS - 1, timers });
    expect(fresh.kind === 'applied' && fresh.effects).toEqual([]);
    const stale = transition(session('active', { assigneeId: 'a1', statusChangedAt: T0 }), inbound(), { now: T0 + STALE_ACTIVE_MS, timers });
    expect(stale.kind === 'applied' && stale.effects).toEqual([{ type: 'auto_reply', trigger: 'stale_active_reply' }]);
  });
  it('on Active with no agent → auto-assign, no auto-reply [R-ASG-2]', () => {
    const r = transition(session('active'), inbound(), { now: T0 + 1000, timers });
    expect(r.kind === 'applied' && r.effects).toEqual([{ type: 'auto_assign', reason: 'reply_unassigned_active' }]);
  });
  it('records a sender who was never part of the session as a participant', () => {
    const r = transition(session('active', { assigneeId: 'a1' }), inbound('mallory@example.org'), { now: T0 + 1000, timers });
    expect(r.kind === 'applied' && r.session.participants).toEqual([{ address: 'mallory@example.org' }]);
    expect(r.kind === 'applied' && r.session.interactions.at(-1)?.type).toBe('participant_added');
  });
  it('updates last activity and the message count', () => {
    const r = transition(session('unopened'), inbound(), { now: T0 + 5000, timers });
    expect(r.kind === 'applied' && [r.session.lastActivityAt, r.session.messageCount]).toEqual([T0 + 5000, 2]);
  });
});

describe('agent replies', () => {
  it.each(['unopened', 'reopened', 'paused', 'resolved'] as const)('move %s to active', (from) => {
    const r = transition(session(from), { type: 'agent_reply', agentId: 'a1', messageId: '<r@x>' }, { now: T0 + 1, timers });
    expect(r.kind === 'applied' && r.session.status).toBe('active');
  });
  it('reopen a closed session within the window, else start a linked one [R-SES-4]', () => {
    const s = session('closed', { statusChangedAt: T0 });
    const inWindow = transition(s, { type: 'agent_reply', agentId: 'a1', messageId: '<r@x>' }, { now: T0 + DAY_MS, timers });
    expect(inWindow.kind === 'applied' && inWindow.effects.map((e) => e.type === 'status_changed' && e.to)).toEqual(['reopened', 'active']);
    expect(transition(s, { type: 'agent_reply', agentId: 'a1', messageId: '<r@x>' }, { now: T0 + 31 * DAY_MS, timers }).kind).toBe('start_new_session');
  });
});

describe('timers [R-SES-4, R-SES-5]', () => {
  it('Paused → Closed after 60 days, not a minute before', () => {
    const s = session('paused', { statusChangedAt: T0 });
    expect(transition(s, { type: 'timer', timer: 'pausedToClosed' }, { now: T0 + 60 * DAY_MS - 60_000, timers }).kind).toBe('noop');
    const r = transition(s, { type: 'timer', timer: 'pausedToClosed' }, { now: T0 + 60 * DAY_MS, timers });
    expect(r.kind === 'applied' && r.session.status).toBe('closed');
    expect(r.kind === 'applied' && r.effects[0]).toMatchObject({ actor: 'timer:pausedToClosed' });
  });
  it('Resolved → Closed and Active → Paused (inactivity counts from the last message)', () => {
    expect(isTimerDue(session('resolved', { statusChangedAt: T0 }), 'resolvedToClosed', timers.resolvedToClosed, T0 + 30 * DAY_MS)).toBe(true);
    const active = session('active', { statusChangedAt: T0, lastActivityAt: T0 + 10 * DAY_MS });
    expect(isTimerDue(active, 'activeToPaused', timers.activeToPaused, T0 + 30 * DAY_MS)).toBe(false);
    expect(isTimerDue(active, 'activeToPaused', timers.activeToPaused, T0 + 40 * DAY_MS)).toBe(true);
  });
  it('a disabled timer never fires; a changed threshold applies to existing sessions', () => {
    const s = session('paused', { statusChangedAt: T0 });
    expect(isTimerDue(s, 'pausedToClosed', { enabled: false, days: 1 }, T0 + 100 * DAY_MS)).toBe(false);
    expect(isTimerDue(s, 'pausedToClosed', { enabled: true, days: 5 }, T0 + 5 * DAY_MS)).toBe(true);
  });
  it('a timer no longer applies once the status changed', () => {
    const r = transition(session('active', { statusChangedAt: T0 }), { type: 'timer', timer: 'pausedToClosed' }, { now: T0 + 100 * DAY_MS, timers });
    expect(r.kind).toBe('noop');
  });
  it('index entries and cutoffs', () => {
    expect(timerEntry(session('paused', { statusChangedAt: 5 }), 'pausedToClosed')).toBe(5);
    expect(timerEntry(session('active'), 'pausedToClosed')).toBeNull();
    expect(timerCutoff(T0, { enabled: true, days: 2 })).toBe(T0 - 2 * DAY_MS);
  });
});

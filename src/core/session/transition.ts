// The session status machine (R-SES-3, R-SES-4, R-ARP-3, SPEC §11c): transition(session, event, now)
// returns the new session and the effects to run, or says why it cannot apply. Pure: no I/O.
import type { Interaction, Participant, Session, SessionStatus } from './model.js';
import { canReopen, isTimerDue, TIMERS, DAY_MS, type TimerName, type TimerSettings } from './timers.js';

/** A reply on an Active session with no status update for this long gets an auto-reply (R-ARP-3). */
export const STALE_ACTIVE_MS = 15 * DAY_MS;

export type SessionEvent =
  | { type: 'inbound'; from: Participant; messageId: string; knownSender: boolean }
  | { type: 'agent_reply'; agentId: string; messageId: string }
  | { type: 'agent_opened'; agentId: string }
  | { type: 'set_status'; to: SessionStatus; actor: string }
  | { type: 'timer'; timer: TimerName };

export type AutoReplyTrigger = 'new_thread' | 'closed_reply' | 'paused_reply' | 'stale_active_reply';

export type SessionEffect =
  | { type: 'status_changed'; from: SessionStatus; to: SessionStatus; actor: string }
  | { type: 'auto_reply'; trigger: AutoReplyTrigger }
  | { type: 'auto_assign'; reason: 'new_inbound' | 'reply_unassigned_active' | 'reply_unassigned_closed' };

export type TransitionResult =
  | { kind: 'applied'; session: Session; effects: SessionEffect[] }
  /** Activity on a closed session past its reopen window (or with reopening off): start a linked session. */
  | { kind: 'start_new_session'; reason: string }
  /** Not allowed from this status (HTTP 409). */
  | { kind: 'illegal'; message: string }
  /** Nothing to do (a timer that is no longer due, a status set to itself). */
  | { kind: 'noop' };

/** Manual status changes (SPEC §11c). */
export const MANUAL_TRANSITIONS: Record<SessionStatus, readonly SessionStatus[]> = {
  unopened: ['active', 'paused', 'resolved', 'closed'],
  active: ['paused', 'resolved', 'closed'],
  paused: ['active', 'resolved', 'closed'],
  resolved: ['active', 'closed'],
  closed: ['reopened'],
  reopened: ['active', 'paused', 'resolved', 'closed'],
};

export interface TransitionContext {
  now: number;
  timers: TimerSettings;
}

function withStatus(session: Session, to: SessionStatus, actor: string, now: number, effects: SessionEffect[], interactions: Interaction[]): Session {
  if (session.status === to) return session;
  effects.push({ type: 'status_changed', from: session.status, to, actor });
  interactions.push({ type: to === 'closed' ? 'closed' : 'status_changed', at: now, actor, data: { from: session.status, to } });
  return { ...session, status: to, statusChangedAt: now };
}

function finish(base: Session, next: Session, now: number, interactions: Interaction[], effects: SessionEffect[]): TransitionResult {
  return { kind: 'applied', session: { ...next, updatedAt: now, interactions: [...base.interactions, ...interactions] }, effects };
}

export function transition(session: Session, event: SessionEvent, ctx: TransitionContext): TransitionResult {
  const { now } = ctx;
  const effects: SessionEffect[] = [];
  const interactions: Interaction[] = [];

  switch (event.type) {
    case 'inbound': {
      if (session.status === 'closed' && !canReopen(session, ctx.timers.closedToReopened, now)) {
        return { kind: 'start_new_session', reason: ctx.timers.closedToReopened.enabled ? 'reopen window passed' : 'reopening is off' };
      }
      interactions.push({ type: 'message_received', at: now, actor: 'customer', data: { messageId: event.messageId, from: event.from.address } });
      let next: Session = { ...session, lastActivityAt: now, messageCount: session.messageCount + 1 };
      if (!event.knownSender && !isKnownParticipant(session, event.from.address)) {
        next = { ...next, participants: [...next.participants, event.from] };
        interactions.push({ type: 'participant_added', at: now, actor: 'system', data: { address: event.from.address } });
      }
      switch (session.status) {
        case 'closed':
          next = withStatus(next, 'reopened', 'customer', now, effects, interactions);
          if (!session.imported) effects.push({ type: 'auto_reply', trigger: 'closed_reply' });
          if (!session.assigneeId) effects.push({ type: 'auto_assign', reason: 'reply_unassigned_closed' });
          break;
        case 'paused':
          next = withStatus(next, 'active', 'customer', now, effects, interactions);
          if (!session.imported) effects.push({ type: 'auto_reply', trigger: 'paused_reply' });
          // It is now an active session with no agent (R-ASG-2).
          if (!session.assigneeId) effects.push({ type: 'auto_assign', reason: 'reply_unassigned_active' });
          break;
        case 'resolved':
          // The customer writes again after resolution: the thread needs attention again.
          next = withStatus(next, 'reopened', 'customer', now, effects, interactions);
          if (!session.assigneeId) effects.push({ type: 'auto_assign', reason: 'reply_unassigned_closed' });
          break;
        case 'active':
          if (!session.imported && now - session.statusChangedAt >= STALE_ACTIVE_MS) effects.push({ type: 'auto_reply', trigger: 'stale_active_reply' });
          if (!session.assigneeId) effects.push({ type: 'auto_assign', reason: 'reply_unassigned_active' });
          break;
        case 'unopened':
        case 'reopened':
          if (!session.assigneeId) effects.push({ type: 'auto_assign', reason: 'reply_unassigned_active' });
          break;
      }
      return finish(session, next, now, interactions, effects);
    }

    case 'agent_reply': {
      if (session.status === 'closed' && !canReopen(session, ctx.timers.closedToReopened, now)) {
        return { kind: 'start_new_session', reason: ctx.timers.closedToReopened.enabled ? 'reopen window passed' : 'reopening is off' };
      }
      const actor = `agent:${event.agentId}`;
      interactions.push({ type: 'agent_replied', at: now, actor, data: { messageId: event.messageId } });
      let next: Session = { ...session, lastActivityAt: now, messageCount: session.messageCount + 1 };
      if (next.status === 'closed') next = withStatus(next, 'reopened', actor, now, effects, interactions);
      // An agent reply moves unopened/reopened/paused (and resolved) to active (SPEC §11c).
      next = withStatus(next, 'active', actor, now, effects, interactions);
      return finish(session, next, now, interactions, effects);
    }

    case 'agent_opened': {
      if (session.status !== 'unopened') return { kind: 'noop' };
      const next = withStatus(session, 'active', `agent:${event.agentId}`, now, effects, interactions);
      return finish(session, next, now, interactions, effects);
    }

    case 'set_status': {
      if (event.to === session.status) return { kind: 'noop' };
      if (!MANUAL_TRANSITIONS[session.status].includes(event.to)) {
        return { kind: 'illegal', message: `a session cannot go from ${session.status} to ${event.to}` };
      }
      const next = withStatus(session, event.to, event.actor, now, effects, interactions);
      return finish(session, next, now, interactions, effects);
    }

    case 'timer': {
      const def = TIMERS[event.timer];
      if (!isTimerDue(session, event.timer, ctx.timers[event.timer], now)) return { kind: 'noop' };
      const next = withStatus(session, def.to, `timer:${event.timer}`, now, effects, interactions);
      return finish(session, next, now, interactions, effects);
    }
  }
}

function isKnownParticipant(session: Session, address: string): boolean {
  const a = address.toLowerCase();
  return session.customer.address.toLowerCase() === a || session.participants.some((p) => p.address.toLowerCase() === a);
}

/** A new session for a first inbound mail (R-ARP-3 new thread; R-ASG-2 new inbound). */
export function newInboundSession(input: {
  id: string;
  queueId: string | null;
  subject: string;
  customer: Participant;
  messageId: string;
  imported: boolean;
  linkedFrom?: string | null;
  now: number;
}): { session: Session; effects: SessionEffect[] } {
  const { now } = input;
  const session: Session = {
    id: input.id,
    status: 'unopened',
    queueId: input.queueId,
    assigneeId: null,
    subject: input.subject,
    customer: input.customer,
    participants: [],
    ticketId: null,
    linkedFrom: input.linkedFrom ?? null,
    imported: input.imported,
    createdAt: now,
    updatedAt: now,
    statusChangedAt: now,
    lastActivityAt: now,
    messageCount: 1,
    interactions: [
      { type: 'message_received', at: now, actor: 'customer', data: { messageId: input.messageId, from: input.customer.address } },
      ...(input.queueId ? [{ type: 'entered_queue' as const, at: now, actor: 'system', data: { queueId: input.queueId } }] : []),
    ],
  };
  const effects: SessionEffect[] = input.imported
    ? []
    : [
        { type: 'auto_reply', trigger: 'new_thread' },
        { type: 'auto_assign', reason: 'new_inbound' },
      ];
  return { session, effects };
}

/** A new session started by an agent's mail to a customer (R-AGT-2), or an agent reply past the reopen window (R-SES-4). */
export function newOutboundSession(input: {
  id: string;
  queueId: string | null;
  subject: string;
  customer: Participant;
  participants?: Participant[];
  agentId: string;
  messageId: string;
  linkedFrom?: string | null;
  now: number;
}): Session {
  const { now } = input;
  const actor = `agent:${input.agentId}`;
  return {
    id: input.id,
    status: 'active',
    queueId: input.queueId,
    assigneeId: input.agentId,
    subject: input.subject,
    customer: input.customer,
    participants: input.participants ?? [],
    ticketId: null,
    linkedFrom: input.linkedFrom ?? null,
    imported: false,
    createdAt: now,
    updatedAt: now,
    statusChangedAt: now,
    lastActivityAt: now,
    messageCount: 1,
    origin: 'agent',
    interactions: [
      ...(input.linkedFrom ? [{ type: 'status_changed' as const, at: now, actor: 'system', data: { linkedFrom: input.linkedFrom, reason: 'agent reply on a closed session past its reopen window' } }] : []),
      ...(input.queueId ? [{ type: 'entered_queue' as const, at: now, actor, data: { queueId: input.queueId } }] : []),
      { type: 'agent_assigned' as const, at: now, actor, data: { agentId: input.agentId, reason: 'started the session' } },
      { type: 'agent_replied' as const, at: now, actor, data: { messageId: input.messageId } },
    ],
  };
}

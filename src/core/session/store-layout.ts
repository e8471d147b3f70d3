// How sessions, messages and their indexes are laid out in the Store, as pure functions that turn a
// session change into WriteOps. Key and index names are documented in src/core/keys.ts.
import type { WriteOp } from '../ports.js';
import type { Session, SessionStatus } from './model.js';
import { TIMER_NAMES, timerEntry } from './timers.js';

export const sessionKey = (id: string): string => `session:${id}`;
export const messageKey = (id: string): string => `smsg:${id}`;
export const messageIdKey = (identity: string): string => `msgid:${identity}`;
export const quarantineKey = (id: string): string => `quarantine:${id}`;
export const quarantineSourceKey = (accountId: string, uidValidity: string, uid: number): string => `quarantine-src:${accountId}:${uidValidity}:${uid}`;
export const rawBlobKey = (messageId: string): string => `blob:raw:${messageId}`;

export const IDX_SESSIONS = 'sessions:updated';
/** Every stored message, scored by when it was stored: the retention sweep reads only its due part (R-STO-1). */
export const IDX_MESSAGES_RECEIVED = 'messages:received';

/** The index op that makes a message visible to the retention sweep. */
export function retentionIndexOp(messageInternalId: string, storedAt: number): WriteOp {
  return { op: 'index', index: IDX_MESSAGES_RECEIVED, member: messageInternalId, score: storedAt };
}
export const IDX_QUARANTINE = 'quarantine:created';
export const idxSessionsByQueue = (queueId: string): string => `sessions:queue:${queueId}`;
export const idxSessionsByStatus = (status: SessionStatus): string => `sessions:status:${status}`;
export const idxSessionsByAssignee = (agentId: string): string => `sessions:assignee:${agentId}`;
export const IDX_SESSIONS_UNASSIGNED = 'sessions:unassigned';
export const idxSessionsByCustomer = (address: string): string => `sessions:customer:${address.toLowerCase()}`;
export const idxSessionMessages = (sessionId: string): string => `session-messages:${sessionId}`;
export const idxTimer = (timer: string): string => `timers:${timer}`;

/** A stored session: the core Session plus its optimistic-concurrency revision. */
export type StoredSession = Session & { rev: number };

/** Index memberships of a session, as (index, score) pairs; all scored by last update unless a timer. */
function memberships(s: Session): Map<string, number> {
  const m = new Map<string, number>();
  m.set(IDX_SESSIONS, s.updatedAt);
  if (s.queueId) m.set(idxSessionsByQueue(s.queueId), s.updatedAt);
  m.set(idxSessionsByStatus(s.status), s.updatedAt);
  if (s.assigneeId) m.set(idxSessionsByAssignee(s.assigneeId), s.updatedAt);
  else m.set(IDX_SESSIONS_UNASSIGNED, s.updatedAt);
  if (s.customer.address) m.set(idxSessionsByCustomer(s.customer.address), s.updatedAt);
  for (const timer of TIMER_NAMES) {
    const score = timerEntry(s, timer);
    if (score !== null) m.set(idxTimer(timer), score);
  }
  return m;
}

/**
 * The ops that save `next` over `prev` (null for a new session): a rev check (so a concurrent change
 * makes the commit fail and the caller decide again), the document, and the index moves.
 */
export function saveSessionOps(prev: StoredSession | null, next: Session): { ops: WriteOp[]; stored: StoredSession } {
  const stored: StoredSession = { ...next, rev: (prev?.rev ?? 0) + 1 };
  const ops: WriteOp[] = [
    { op: 'check', key: sessionKey(next.id), rev: prev ? prev.rev : null },
    { op: 'put', key: sessionKey(next.id), value: stored },
  ];
  const before = prev ? memberships(prev) : new Map<string, number>();
  const after = memberships(next);
  for (const [index] of before) if (!after.has(index)) ops.push({ op: 'unindex', index, member: next.id });
  for (const [index, score] of after) if (before.get(index) !== score) ops.push({ op: 'index', index, member: next.id, score });
  return { ops, stored };
}

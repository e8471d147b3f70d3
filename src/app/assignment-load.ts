// Agent load bookkeeping for auto-assignment (R-ASG-3/5): the `agent-load:<agentId>` document, where it places the agent in each queue's indexes, and the ops that keep active counts right whenever a session is saved.
//
// Model. `active` counts the sessions assigned to the agent whose status is Unopened, Reopened or Active
// (R-SES-3), across all queues (an agent's workload is one number). For every queue the agent is a member of
// (`queues`), the agent sits in exactly one of two ordered indexes:
//   assign:load:<queueId>    score loadScore(active, lastAssignedAt): the lowest entry is the next pick (R-ASG-3);
//   assign:parked:<queueId>  score = when to look again: set aside because the daily limit of the queue is
//                            reached (until the next local midnight) or because the agent was offline in a
//                            logged-in-only queue (until it comes online, or a recheck a few minutes later).
// The document and every index entry it implies change in ONE commit with a `check` op on the document's
// rev, so two writers (instances, or two emails at once) never both act on the same count (R-ASG-5).
import { loadScore } from '../core/assignment/rank.js';
import { agentLoadKey, assignLoadIndex, assignParkedIndex, assignWaitingIndex, ASSIGN_WAITING_QUEUES_INDEX } from '../core/keys.js';
import type { Store, WriteOp } from '../core/ports.js';
import { ACTIVE_FOR_ASSIGNMENT, type Session } from '../core/session/model.js';
import type { SessionEffect } from '../core/session/transition.js';

export type ParkReason = 'limit' | 'offline';

export interface ParkedEntry {
  reason: ParkReason;
  /** Epoch ms after which the agent is put back in the load index (and checked again). */
  until: number;
}

export interface AgentLoadDoc {
  agentId: string;
  /** Assigned sessions that are Unopened, Reopened or Active (all queues). */
  active: number;
  /** Epoch ms of the last assignment (auto or manual); null = never. */
  lastAssignedAt: number | null;
  /** Assignments per queue and local day of that queue: `"<queueId>|<YYYY-MM-DD>"` → count (old days pruned). */
  daily: Record<string, number>;
  /** Queues whose assignment indexes list this agent. */
  queues: string[];
  /** Queues where the agent is set aside (in `assign:parked:<q>` instead of `assign:load:<q>`). */
  parked: Record<string, ParkedEntry>;
  rev: number;
}

/** What an assignment adds to the assignee's document (auto or manual; R-ASG-4 daily limit counts both). */
export interface AssignmentMark {
  queueId: string;
  at: number;
  /** Local day of the queue at `at` (hours.localDay in the queue's time zone). */
  day: string;
  /** The queue's daily limit; when reached the agent is parked in that queue until `capUntil`. */
  dailyLimit: number | null;
  /** The next local midnight of the queue (epoch ms). */
  capUntil: number;
}

/** Daily entries older than this many days (by date string) are dropped when the document is written. */
const DAILY_KEEP_DAYS = 3;

export const dailyKey = (queueId: string, day: string): string => `${queueId}|${day}`;

export function emptyLoadDoc(agentId: string): AgentLoadDoc {
  return { agentId, active: 0, lastAssignedAt: null, daily: {}, queues: [], parked: {}, rev: 0 };
}

/** Whether a session in this state adds one to its assignee's active count (R-SES-3). */
export function countsAsActive(s: Pick<Session, 'status' | 'assigneeId'> | null): s is Pick<Session, 'status'> & { assigneeId: string } {
  return !!s && !!s.assigneeId && ACTIVE_FOR_ASSIGNMENT.includes(s.status);
}

/** The load index score of a document. */
export const scoreOf = (doc: Pick<AgentLoadDoc, 'active' | 'lastAssignedAt'>): number => loadScore(doc.active, doc.lastAssignedAt);

function placement(doc: AgentLoadDoc | null, queueId: string): { index: string; score: number } | null {
  if (!doc || !doc.queues.includes(queueId)) return null;
  const parked = doc.parked[queueId];
  if (parked) return { index: assignParkedIndex(queueId), score: parked.until };
  return { index: assignLoadIndex(queueId), score: scoreOf(doc) };
}

/**
 * The ops that replace `prev` (null = no document yet) by `next`: a rev check, the document (rev + 1), and
 * the index moves of every queue either lists. Pure; `next.rev` is ignored and set here.
 */
export function loadDocOps(prev: AgentLoadDoc | null, next: AgentLoadDoc): { ops: WriteOp[]; stored: AgentLoadDoc } {
  const prevRev = prev && prev.rev > 0 ? prev.rev : null;
  const stored: AgentLoadDoc = { ...next, queues: [...new Set(next.queues)], rev: (prevRev ?? 0) + 1 };
  for (const q of Object.keys(stored.parked)) if (!stored.queues.includes(q)) delete stored.parked[q];
  const key = agentLoadKey(next.agentId);
  const ops: WriteOp[] = [
    { op: 'check', key, rev: prevRev },
    { op: 'put', key, value: stored },
  ];
  const queues = new Set([...(prev?.queues ?? []), ...stored.queues]);
  for (const q of queues) {
    const a = placement(prev, q);
    const b = placement(stored, q);
    if (a && (!b || a.index !== b.index)) ops.push({ op: 'unindex', index: a.index, member: next.agentId });
    if (b && (!a || a.index !== b.index || a.score !== b.score)) ops.push({ op: 'index', index: b.index, member: next.agentId, score: b.score });
  }
  return { ops, stored };
}

function pruneDaily(daily: Record<string, number>, today: string): Record<string, number> {
  // Dates compare as strings (YYYY-MM-DD); a queue's local day is within a day of UTC's.
  const cutoff = shiftDate(today, -DAILY_KEEP_DAYS);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(daily)) {
    const day = k.slice(k.lastIndexOf('|') + 1);
    if (day >= cutoff) out[k] = v;
  }
  return out;
}

function shiftDate(day: string, days: number): string {
  const t = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(t) ? day : new Date(t + days * 86_400_000).toISOString().slice(0, 10);
}

/** Applies an active-count delta and an optional assignment to a document (pure). */
export function applyLoadChange(doc: AgentLoadDoc, delta: number, mark?: AssignmentMark): AgentLoadDoc {
  const next: AgentLoadDoc = { ...doc, active: Math.max(0, doc.active + delta), daily: { ...doc.daily }, parked: { ...doc.parked }, queues: [...doc.queues] };
  if (mark) {
    next.lastAssignedAt = Math.max(doc.lastAssignedAt ?? 0, mark.at);
    const key = dailyKey(mark.queueId, mark.day);
    const count = (next.daily[key] ?? 0) + 1;
    next.daily = pruneDaily({ ...next.daily, [key]: count }, mark.day);
    if (mark.dailyLimit !== null && count >= mark.dailyLimit && next.queues.includes(mark.queueId)) {
      next.parked[mark.queueId] = { reason: 'limit', until: mark.capUntil };
    }
  }
  return next;
}

/**
 * The extra ops a session save needs so agents' active counts stay right (R-ASG-3): when the assignee or the
 * "counts as active" flag changes between `prev` and `next`, the documents of the old and new assignee are
 * read (or taken from `known`, when the caller decided on them) and rewritten with a rev check, and their
 * index scores move. With `mark`, `next.assigneeId` also gets the assignment recorded (last assignment time,
 * daily count, parking at the limit). No change → no reads, no ops. Append the ops to the same commit as the
 * session's own (`saveSessionOps`); a `CommitConflictError` means "re-read and decide again". `store` may be any
 * reader with `getMany` (ingest passes its group reader, so two messages of one commit chain their revs).
 */
export async function agentLoadOps(
  store: Pick<Store, 'getMany'>,
  prev: Pick<Session, 'status' | 'assigneeId'> | null,
  next: Pick<Session, 'status' | 'assigneeId'>,
  opts: { mark?: AssignmentMark; known?: ReadonlyMap<string, AgentLoadDoc> } = {},
): Promise<{ ops: WriteOp[]; docs: Map<string, AgentLoadDoc> }> {
  const deltas = new Map<string, number>();
  const before = countsAsActive(prev) ? prev.assigneeId : null;
  const after = countsAsActive(next) ? next.assigneeId : null;
  if (before !== after) {
    if (before) deltas.set(before, (deltas.get(before) ?? 0) - 1);
    if (after) deltas.set(after, (deltas.get(after) ?? 0) + 1);
  }
  const marked = opts.mark && next.assigneeId ? next.assigneeId : null;
  if (marked && !deltas.has(marked)) deltas.set(marked, 0);
  const docs = new Map<string, AgentLoadDoc>();
  if (deltas.size === 0) return { ops: [], docs };
  const ids = [...deltas.keys()];
  const missing = ids.filter((id) => !opts.known?.has(id));
  const read = missing.length > 0 ? await store.getMany<AgentLoadDoc>(missing.map(agentLoadKey)) : [];
  const current = new Map<string, AgentLoadDoc | null>();
  missing.forEach((id, i) => current.set(id, read[i] ?? null));
  for (const id of ids) if (opts.known?.has(id)) current.set(id, opts.known.get(id) ?? null);
  const ops: WriteOp[] = [];
  for (const id of ids) {
    const prevDoc = current.get(id) ?? null;
    const base = prevDoc ?? emptyLoadDoc(id);
    const changed = applyLoadChange(base, deltas.get(id) ?? 0, id === marked ? opts.mark : undefined);
    const { ops: docOps, stored } = loadDocOps(prevDoc, changed);
    ops.push(...docOps);
    docs.set(id, stored);
  }
  return { ops, docs };
}

/**
 * Durable auto-assignment intent (R-ASG-2): when a save carries an `auto_assign` effect for a session of a
 * queue with no assignee (never an imported one), the same commit records it in the queue's waiting index,
 * so a crash before the assignment runs loses nothing (the sweep picks it up). Scored by when the session
 * entered its status, so a second mail on a waiting session keeps its place. Pure.
 */
export function autoAssignIntentOps(session: Session, effects: readonly SessionEffect[], now: number): WriteOp[] {
  if (!session.queueId || session.assigneeId || session.imported) return [];
  if (!effects.some((e) => e.type === 'auto_assign')) return [];
  return [
    { op: 'index', index: assignWaitingIndex(session.queueId), member: session.id, score: Math.min(session.statusChangedAt, now) },
    { op: 'index', index: ASSIGN_WAITING_QUEUES_INDEX, member: session.queueId, score: now },
  ];
}

// Auto-assignment and manual assignment (R-ASG-1..5, R-QUE-4): picks the least-loaded eligible agent of a queue from an ordered load index, commits the session and the agent's load together with optimistic checks, keeps waiting sessions until someone can take them, transfers and deactivations.
//
// Decision (one session, `assign`): read the session and its queue → check the queue's members are in sync with
// its indexes (on a queue change, else once a minute) → hours (`closed`) → put back agents whose parking expired →
// scan `assign:load:<queueId>` from the lowest score in small batches, parking agents that are offline (logged-in
// only) or at the daily limit, dropping deactivated ones → commit session (assignee + interaction, rev check) +
// agent-load document (active + 1, last assignment, daily count, rev check) + the agent's index scores in every
// queue + removal from the waiting index. A `CommitConflictError` (another instance, another email) means
// decide again from fresh reads (bounded, jittered). The chosen agent's document must still match the index
// entry it was read from, so the pick is the minimum of one consistent snapshot; the rev check makes the commit
// fail if the agent changed since — counts never drift and a limit is never exceeded (R-ASG-5).
// Cost per decision: O(log n) index reads for n agents in the queue (a few entries read), O(q) index writes
// for the q queues of the agent. Decisions of one queue run one at a time per process (no self-contention).
//
// Nobody available (closed, no agent, all offline, all at the limit): the session stays unassigned in the queue,
// listed in `assign:waiting:<queueId>` (FIFO by when it started waiting) with the reason in `assign:reason:<q>`.
// It is assigned by `drain` when someone may be available: agent online, queue changed, and the periodic sweep
// (hours opening, day rollover, parked agents coming back).
import type { Principal } from '../core/auth.js';
import { pickAgent, type AgentLoad, type AssignOptions, type NoPickReason } from '../core/assignment/rank.js';
import { AppError, conflict, notFound } from '../core/errors.js';
import { isOpen, localDay, zonedToEpoch } from '../core/hours/hours.js';
import {
  agentLoadKey,
  assignLoadIndex,
  assignMembersKey,
  assignParkedIndex,
  assignReasonKey,
  assignWaitingIndex,
  ASSIGN_WAITING_QUEUES_INDEX,
} from '../core/keys.js';
import { CommitConflictError, type Clock, type IndexEntry, type Logger, type Store, type WriteOp } from '../core/ports.js';
import type { Interaction, Session, SessionStatus } from '../core/session/model.js';
import { idxSessionsByAssignee, saveSessionOps, sessionKey, type StoredSession } from '../core/session/store-layout.js';
import type { SessionEffect } from '../core/session/transition.js';
import {
  agentLoadOps,
  countsAsActive,
  dailyKey,
  emptyLoadDoc,
  loadDocOps,
  scoreOf,
  type AgentLoadDoc,
  type AssignmentMark,
  type ParkReason,
} from './assignment-load.js';
import { queueKey, type Queue } from './queues-service.js';

/** What the assignment engine needs to know about agents (src/app/agents-service.ts provides it). */
export interface AgentDirectory {
  /** A queue's `email.agents` (agent ids and team ids) → the distinct active agent ids (teams expanded). */
  expandMembers(ids: string[]): Promise<string[]>;
  /** Presence now of each agent (absent or expired = offline). */
  onlineMap(agentIds: string[]): Promise<Map<string, boolean>>;
  /** Whether the agent exists and is active (not deactivated). */
  isActive(agentId: string): Promise<boolean>;
}

export interface AssignmentDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  directory: AgentDirectory;
  /** After a transfer is committed (R-QUE-4): the CRM side moves the record (group / owner). */
  onTransferred?(session: Session, fromQueueId: string | null): void;
  /** Randomness for retry jitter (tests may fix it). */
  random?: () => number;
}

/** Why a session waits: a NoPickReason of rank.ts, or `busy` (kept losing races; retried shortly). */
export type WaitingReason = NoPickReason | 'busy';

export type AssignOutcome =
  | { kind: 'assigned'; agentId: string; session: StoredSession }
  | { kind: 'waiting'; reason: WaitingReason }
  /** Not for auto-assignment (already assigned, resolved/closed, imported, no queue, auto-assignment off, gone). */
  | { kind: 'skipped'; why: 'gone' | 'no_queue' | 'assigned' | 'not_open' | 'imported' | 'disabled' };

export interface WaitingView {
  queueId: string;
  /** Sessions of the queue awaiting auto-assignment. */
  count: number;
  /** Why the last attempt found nobody (null when nothing waits). */
  reason: WaitingReason | null;
  /** When the oldest waiting session started waiting (ISO), or null. */
  oldestSince: string | null;
  autoAssignEnabled: boolean;
}

export interface AgentLoadView {
  agentId: string;
  active: number;
  lastAssignedAt: string | null;
  /** Assignments per queue for each recent local day of that queue. */
  daily: { queueId: string; day: string; count: number }[];
  queues: string[];
  parked: { queueId: string; reason: ParkReason; until: string }[];
}

interface MembersMarker {
  queueRev: number;
  syncedAt: number;
  rev: number;
}

/** Statuses a session may be (auto-)assigned in: not Resolved or Closed. */
const ASSIGNABLE: readonly SessionStatus[] = ['unopened', 'active', 'paused', 'reopened'];

/** Load index entries read per step of a decision (growing: the first entry is usually the pick), at most MAX_SCAN. */
const SCAN_BATCHES = [4, 16, 64] as const;
const MAX_SCAN = 2000;
const MAX_DECIDE_ATTEMPTS = 30;
/** Parked entries released per decision (the rest on the next ones). */
const RELEASE_BATCH = 50;
/** Queue membership is matched against the indexes at least this often (team changes), and at every queue change. */
export const MEMBERS_TTL_MS = 60_000;
/** An agent parked as offline is looked at again after this long even without a presence event. */
export const OFFLINE_RECHECK_MS = 5 * 60_000;
const MAX_MEMBERS = 100_000;
const MEMBERS_COMMIT_CHUNK = 50;
/** Waiting sessions handled per queue per drain, and queues per sweep. */
export const DRAIN_PER_QUEUE = 200;
const SWEEP_QUEUES = 200;
/** Sessions unassigned per batch when an agent is deactivated, and at most this many per call. */
const DEACTIVATE_BATCH = 100;
const DEACTIVATE_MAX = 20_000;
const RECOUNT_MAX = 200_000;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const iso = (ms: number) => new Date(ms).toISOString();

function options(queue: Queue): AssignOptions {
  return {
    dailyLimit: queue.autoAssign?.dailyLimit ?? null,
    loggedInOnly: queue.autoAssign?.loggedInOnly ?? false,
    businessHoursOnly: queue.autoAssign?.businessHoursOnly ?? false,
  };
}

const zoneOf = (queue: Queue): string => queue.hours?.timeZone ?? 'UTC';

/** The actor string of interactions for a principal. */
export function actorOf(principal: Principal): string {
  return principal.role === 'agent' ? `agent:${principal.agentId}` : `admin:${principal.tokenId}`;
}

type Decision = { agentId: string; doc: AgentLoadDoc } | { none: NoPickReason } | { retry: true };

export class AssignmentService {
  private readonly random: () => number;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly synced = new Map<string, { rev: number; at: number }>();
  private readonly pending = new Set<Promise<unknown>>();
  private sweeping: Promise<void> | null = null;
  private sweepAgain = false;
  private closed = false;

  constructor(private readonly deps: AssignmentDeps) {
    this.random = deps.random ?? Math.random;
  }

  // ---------------------------------------------------------------------------------------------
  // Hooks (wired in src/entry/services.ts)

  /** Session effects after a commit (ingest, sessions): `auto_assign` runs the queue's rules (R-ASG-2). */
  onSessionEffects(session: Session, effects: readonly SessionEffect[]): void {
    if (!effects.some((e) => e.type === 'auto_assign')) return;
    if (!session.queueId || session.assigneeId || session.imported) return;
    this.background(this.assign(session.id), { sessionId: session.id });
  }

  /** Presence written (agents service): an agent coming online gets its offline parkings lifted and waiting sessions are drained. */
  async onPresenceChange(agentId: string, online: boolean): Promise<void> {
    if (!online) return;
    await this.updateLoadDoc(agentId, (doc) => {
      const parked = Object.fromEntries(Object.entries(doc.parked).filter(([, p]) => p.reason !== 'offline'));
      return Object.keys(parked).length === Object.keys(doc.parked).length ? null : { ...doc, parked };
    });
    this.background(this.sweep(), { agentId });
  }

  /** A queue was created, changed or deleted: members and options are matched again at the next decision; drain now. */
  onQueuesChanged(): void {
    this.synced.clear();
    this.background(this.sweep(), {});
  }

  /**
   * An agent was deactivated: it leaves every queue's indexes, and its open sessions (not Resolved/Closed) are
   * unassigned and go through their queue's auto-assignment again. The first batch is handled before this
   * resolves, the rest continues in the background.
   */
  async onAgentDeactivated(agentId: string): Promise<void> {
    await this.updateLoadDoc(agentId, (doc) => (doc.queues.length === 0 ? null : { ...doc, queues: [], parked: {} }));
    const first = await this.reassignBatch(agentId, undefined);
    if (first.cursor) {
      let cursor: IndexEntry | undefined = first.cursor;
      this.background(
        (async () => {
          for (let done = first.seen; cursor && done < DEACTIVATE_MAX; ) {
            const batch = await this.reassignBatch(agentId, cursor);
            done += batch.seen;
            cursor = batch.cursor;
          }
        })(),
        { agentId },
      );
    }
  }

  /** Waits until background work started by hooks is done (tests, graceful stop). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settle();
  }

  private background(p: Promise<unknown>, ctx: Record<string, unknown>): void {
    const tracked = p.catch((err: unknown) => {
      if (!this.closed) this.deps.logger.warn({ ...ctx, err: (err as Error).message }, 'assignment work failed; the sweep retries');
    });
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  // ---------------------------------------------------------------------------------------------
  // Auto-assignment

  /** Runs the queue's auto-assignment rules for one session (R-ASG-2..5). */
  async assign(sessionId: string): Promise<AssignOutcome> {
    const s = await this.deps.store.get<StoredSession>(sessionKey(sessionId));
    if (!s) return { kind: 'skipped', why: 'gone' };
    if (!s.queueId) return { kind: 'skipped', why: 'no_queue' };
    return this.withQueueLock(s.queueId, () => this.assignLocked(sessionId));
  }

  private async assignLocked(sessionId: string): Promise<AssignOutcome> {
    const { store } = this.deps;
    let lastQueue: string | null = null;
    for (let attempt = 0; attempt < MAX_DECIDE_ATTEMPTS; attempt++) {
      const now = this.deps.clock.now();
      const prev = await store.get<StoredSession>(sessionKey(sessionId));
      if (!prev) return { kind: 'skipped', why: 'gone' };
      const queueId = prev.queueId;
      if (!queueId) return { kind: 'skipped', why: 'no_queue' };
      lastQueue = queueId;
      const skip = prev.assigneeId ? 'assigned' : prev.imported ? 'imported' : !ASSIGNABLE.includes(prev.status) ? 'not_open' : null;
      if (skip) {
        await store.indexRemove(assignWaitingIndex(queueId), sessionId);
        return { kind: 'skipped', why: skip };
      }
      const queue = await store.get<Queue>(queueKey(queueId));
      if (!queue || !queue.autoAssign?.enabled) {
        await store.indexRemove(assignWaitingIndex(queueId), sessionId);
        return { kind: 'skipped', why: 'disabled' };
      }
      await this.ensureMembers(queue, now);
      const pick = await this.pick(queue, now);
      if ('retry' in pick) continue;
      if ('none' in pick) {
        await this.recordWaiting(sessionId, queueId, pick.none, now);
        return { kind: 'waiting', reason: pick.none };
      }
      const next: Session = {
        ...prev,
        assigneeId: pick.agentId,
        updatedAt: now,
        interactions: [...prev.interactions, { type: 'agent_assigned', at: now, actor: 'system', data: { agentId: pick.agentId, by: 'auto' } }],
      };
      const { ops, stored } = saveSessionOps(prev, next);
      const load = await agentLoadOps(store, prev, next, { mark: this.markFor(queue, now), known: new Map([[pick.agentId, pick.doc]]) });
      try {
        await store.commit([...ops, ...load.ops, { op: 'unindex', index: assignWaitingIndex(queueId), member: sessionId }]);
        return { kind: 'assigned', agentId: pick.agentId, session: stored };
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        await pause(this.random() * Math.min(50, 2 * 2 ** Math.min(attempt, 5)));
      }
    }
    // Kept losing races: leave it waiting and try again shortly (the sweep would in any case).
    if (lastQueue) {
      await this.recordWaiting(sessionId, lastQueue, 'busy', this.deps.clock.now());
      const queueId = lastQueue;
      this.background(
        pause(200 + this.random() * 300).then(() => this.drain(queueId)),
        { queueId },
      );
    }
    return { kind: 'waiting', reason: 'busy' };
  }

  /** One pick over a consistent snapshot of the load index (see the header). */
  private async pick(queue: Queue, now: number): Promise<Decision> {
    const { store, directory } = this.deps;
    const opts = options(queue);
    const open = !queue.hours || isOpen(queue.hours, now);
    if (opts.businessHoursOnly && !open) return { none: 'closed' };
    await this.releaseDue(queue.id, now);
    const zone = zoneOf(queue);
    const today = dailyKey(queue.id, localDay(now, zone));
    const loadIndex = assignLoadIndex(queue.id);
    const seen: AgentLoad[] = [];
    let after: IndexEntry | undefined;
    for (let scanned = 0, step = 0; scanned < MAX_SCAN; step++) {
      const batch = SCAN_BATCHES[Math.min(step, SCAN_BATCHES.length - 1)] ?? 64;
      const entries = await store.indexRange(loadIndex, { limit: batch, ...(after ? { after } : {}) });
      if (entries.length === 0) break;
      scanned += entries.length;
      after = entries[entries.length - 1];
      const docs = await store.getMany<AgentLoadDoc>(entries.map((e) => agentLoadKey(e.member)));
      const online = opts.loggedInOnly ? await directory.onlineMap(entries.map((e) => e.member)) : null;
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as IndexEntry;
        const doc = docs[i];
        const agentId = entry.member;
        if (!doc || !doc.queues.includes(queue.id)) {
          await store.indexRemove(loadIndex, agentId); // left the queue; the entry is stale
          continue;
        }
        if (doc.parked[queue.id]) continue; // parked since the index read
        // The document moved since the index was read: another agent may rank first now. Read again.
        if (scoreOf(doc) !== entry.score) return { retry: true };
        const load: AgentLoad = {
          agentId,
          active: doc.active,
          lastAssignedAt: doc.lastAssignedAt,
          assignedToday: doc.daily[today] ?? 0,
          online: online ? online.get(agentId) === true : true,
          activeAgent: true,
        };
        seen.push(load);
        if (opts.loggedInOnly && !load.online) {
          await this.park(doc, queue.id, 'offline', now + OFFLINE_RECHECK_MS);
          continue;
        }
        if (opts.dailyLimit !== null && load.assignedToday >= opts.dailyLimit) {
          await this.park(doc, queue.id, 'limit', this.capUntil(now, zone));
          continue;
        }
        if (!(await directory.isActive(agentId))) {
          load.activeAgent = false;
          await this.updateLoadDoc(agentId, (d) => ({ ...d, queues: d.queues.filter((q) => q !== queue.id) }));
          continue;
        }
        return { agentId, doc };
      }
      if (entries.length < batch) break;
    }
    // Nobody in the load index: name the reason the way pickAgent does, from what was seen and what is parked.
    const parked = await this.parkedLoads(queue, today, now);
    const result = pickAgent([...seen, ...parked.loads], opts, { open });
    if ('agentId' in result) {
      // A parked agent is available after all (came online without a presence event): put it back, decide again.
      await this.updateLoadDoc(result.agentId, (d) => this.withoutPark(d, queue.id));
      return { retry: true };
    }
    return result;
  }

  /** A bounded sample of the queue's parked agents as AgentLoad (to name the reason). */
  private async parkedLoads(queue: Queue, today: string, now: number): Promise<{ loads: AgentLoad[] }> {
    const entries = await this.deps.store.indexRange(assignParkedIndex(queue.id), { limit: 50 });
    if (entries.length === 0) return { loads: [] };
    const docs = await this.deps.store.getMany<AgentLoadDoc>(entries.map((e) => agentLoadKey(e.member)));
    const online = queue.autoAssign?.loggedInOnly ? await this.deps.directory.onlineMap(entries.map((e) => e.member)) : null;
    const loads: AgentLoad[] = [];
    entries.forEach((e, i) => {
      const doc = docs[i];
      const p = doc?.parked[queue.id];
      if (!doc || !p || p.until <= now) return;
      loads.push({
        agentId: e.member,
        active: doc.active,
        lastAssignedAt: doc.lastAssignedAt,
        assignedToday: doc.daily[today] ?? 0,
        online: online ? online.get(e.member) === true : true,
        activeAgent: true,
      });
    });
    return { loads };
  }

  private capUntil(now: number, zone: string): number {
    return zonedToEpoch(localDay(now, zone), 1440, zone);
  }

  private markFor(queue: Queue, now: number): AssignmentMark {
    const zone = zoneOf(queue);
    return { queueId: queue.id, at: now, day: localDay(now, zone), dailyLimit: queue.autoAssign?.dailyLimit ?? null, capUntil: this.capUntil(now, zone) };
  }

  private withoutPark(doc: AgentLoadDoc, queueId: string): AgentLoadDoc | null {
    if (!doc.parked[queueId]) return null;
    const parked = { ...doc.parked };
    delete parked[queueId];
    return { ...doc, parked };
  }

  /** Sets an agent aside in a queue; a concurrent change wins (the next decision sees the agent again). */
  private async park(doc: AgentLoadDoc, queueId: string, reason: ParkReason, until: number): Promise<void> {
    const { ops } = loadDocOps(doc, { ...doc, parked: { ...doc.parked, [queueId]: { reason, until } } });
    try {
      await this.deps.store.commit(ops);
    } catch (err) {
      if (!(err instanceof CommitConflictError)) throw err;
    }
  }

  /** Puts back agents whose parking in the queue expired (day rollover, offline recheck); bounded per call. */
  private async releaseDue(queueId: string, now: number): Promise<void> {
    const due = await this.deps.store.indexRange(assignParkedIndex(queueId), { max: now, limit: RELEASE_BATCH });
    for (const e of due) {
      const doc = await this.deps.store.get<AgentLoadDoc>(agentLoadKey(e.member));
      if (!doc || !doc.queues.includes(queueId) || !doc.parked[queueId]) {
        await this.deps.store.indexRemove(assignParkedIndex(queueId), e.member);
        continue;
      }
      if ((doc.parked[queueId]?.until ?? 0) > now) continue;
      const next = this.withoutPark(doc, queueId);
      if (!next) continue;
      try {
        await this.deps.store.commit(loadDocOps(doc, next).ops);
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
  }

  private async recordWaiting(sessionId: string, queueId: string, reason: WaitingReason, now: number): Promise<void> {
    const { store } = this.deps;
    const index = assignWaitingIndex(queueId);
    if ((await store.indexScore(index, sessionId)) === undefined) await store.indexAdd(index, sessionId, now);
    await store.indexAdd(ASSIGN_WAITING_QUEUES_INDEX, queueId, now);
    await store.put(assignReasonKey(queueId), { reason, at: now });
  }

  // ---------------------------------------------------------------------------------------------
  // Queue membership ↔ indexes

  /** Matches the queue's indexes to its members when the queue changed, or once per MEMBERS_TTL_MS (team changes). */
  private async ensureMembers(queue: Queue, now: number): Promise<void> {
    const cached = this.synced.get(queue.id);
    if (cached && cached.rev === queue.rev && now - cached.at < MEMBERS_TTL_MS && now >= cached.at) return;
    const marker = await this.deps.store.get<MembersMarker>(assignMembersKey(queue.id));
    if (marker && marker.queueRev === queue.rev && now - marker.syncedAt < MEMBERS_TTL_MS && now >= marker.syncedAt) {
      this.synced.set(queue.id, { rev: queue.rev, at: marker.syncedAt });
      return;
    }
    await this.syncMembers(queue, now, !marker || marker.queueRev !== queue.rev);
  }

  /**
   * Adds the queue to its members' documents (and indexes) and removes it from former members'. When the queue
   * itself changed (`releaseParked`), every parking in it is lifted too: options (limit, presence) may differ.
   */
  async syncMembers(queue: Queue, now: number, releaseParked: boolean): Promise<void> {
    const { store } = this.deps;
    const members = new Set(await this.deps.directory.expandMembers(queue.email?.agents ?? []));
    const inLoad = await this.allMembers(assignLoadIndex(queue.id));
    const inParked = await this.allMembers(assignParkedIndex(queue.id));
    const touch = new Set<string>();
    for (const m of members) if (!inLoad.has(m) && !inParked.has(m)) touch.add(m);
    for (const m of [...inLoad, ...inParked]) if (!members.has(m)) touch.add(m);
    if (releaseParked) for (const m of inParked) touch.add(m);
    const ids = [...touch];
    for (let i = 0; i < ids.length; i += MEMBERS_COMMIT_CHUNK) {
      await this.syncChunk(queue.id, ids.slice(i, i + MEMBERS_COMMIT_CHUNK), members, releaseParked);
    }
    const markerKey = assignMembersKey(queue.id);
    const prevMarker = await store.get<MembersMarker>(markerKey);
    await store.put(markerKey, { queueRev: queue.rev, syncedAt: now, rev: (prevMarker?.rev ?? 0) + 1 } satisfies MembersMarker);
    this.synced.set(queue.id, { rev: queue.rev, at: now });
  }

  private async syncChunk(queueId: string, ids: string[], members: Set<string>, releaseParked: boolean): Promise<void> {
    const change = (doc: AgentLoadDoc): AgentLoadDoc => {
      const member = members.has(doc.agentId);
      const queues = member ? [...new Set([...doc.queues, queueId])] : doc.queues.filter((q) => q !== queueId);
      const parked = { ...doc.parked };
      if (!member || releaseParked) delete parked[queueId];
      return { ...doc, queues, parked };
    };
    // One commit for the chunk; on a conflict each agent is done on its own with retries.
    const docs = await this.deps.store.getMany<AgentLoadDoc>(ids.map(agentLoadKey));
    const ops: WriteOp[] = [];
    ids.forEach((id, i) => {
      const prev = docs[i] ?? null;
      const next = change(prev ?? emptyLoadDoc(id));
      ops.push(...loadDocOps(prev, next).ops, ...this.placementOps(next, queueId));
    });
    try {
      await this.deps.store.commit(ops);
    } catch (err) {
      if (!(err instanceof CommitConflictError)) throw err;
      for (const id of ids) await this.updateLoadDoc(id, change, queueId);
    }
  }

  /** Explicit index placement of an agent in one queue (repairs an entry lost to a race). */
  private placementOps(doc: AgentLoadDoc, queueId: string): WriteOp[] {
    const load = assignLoadIndex(queueId);
    const parkedIdx = assignParkedIndex(queueId);
    if (!doc.queues.includes(queueId)) {
      return [
        { op: 'unindex', index: load, member: doc.agentId },
        { op: 'unindex', index: parkedIdx, member: doc.agentId },
      ];
    }
    const p = doc.parked[queueId];
    return p
      ? [
          { op: 'unindex', index: load, member: doc.agentId },
          { op: 'index', index: parkedIdx, member: doc.agentId, score: p.until },
        ]
      : [
          { op: 'unindex', index: parkedIdx, member: doc.agentId },
          { op: 'index', index: load, member: doc.agentId, score: scoreOf(doc) },
        ];
  }

  private async allMembers(index: string): Promise<Set<string>> {
    const out = new Set<string>();
    let after: IndexEntry | undefined;
    while (out.size < MAX_MEMBERS) {
      const entries = await this.deps.store.indexRange(index, { limit: 1000, ...(after ? { after } : {}) });
      for (const e of entries) out.add(e.member);
      if (entries.length < 1000) break;
      after = entries[entries.length - 1];
    }
    return out;
  }

  /**
   * Read-modify-write of one agent-load document with a rev check (bounded retries). `fn` returns null for
   * "nothing to change". With `placeIn`, the agent's entry in that queue's indexes is written explicitly.
   */
  private async updateLoadDoc(agentId: string, fn: (doc: AgentLoadDoc) => AgentLoadDoc | null, placeIn?: string): Promise<AgentLoadDoc | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const prev = (await this.deps.store.get<AgentLoadDoc>(agentLoadKey(agentId))) ?? null;
      const next = fn(prev ?? emptyLoadDoc(agentId));
      if (!next) return prev;
      const { ops, stored } = loadDocOps(prev, next);
      try {
        await this.deps.store.commit(placeIn ? [...ops, ...this.placementOps(stored, placeIn)] : ops);
        return stored;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        await pause(this.random() * Math.min(50, 2 * 2 ** Math.min(attempt, 5)));
      }
    }
    throw conflict(`the load of agent ${agentId} kept changing; try again`);
  }

  // ---------------------------------------------------------------------------------------------
  // Waiting sessions

  /** Assigns the queue's waiting sessions, oldest first, until one finds nobody (bounded). */
  async drain(queueId: string, max = DRAIN_PER_QUEUE): Promise<{ assigned: number; stoppedBy: WaitingReason | null }> {
    const { store } = this.deps;
    const index = assignWaitingIndex(queueId);
    let assigned = 0;
    let handled = 0;
    let after: IndexEntry | undefined;
    let stoppedBy: WaitingReason | null = null;
    outer: while (handled < max) {
      const entries = await store.indexRange(index, { limit: 20, ...(after ? { after } : {}) });
      if (entries.length === 0) break;
      for (const e of entries) {
        handled++;
        const out = await this.assign(e.member);
        if (out.kind === 'assigned') assigned++;
        if (out.kind === 'skipped' && (out.why === 'gone' || out.why === 'no_queue')) await store.indexRemove(index, e.member);
        if (out.kind === 'skipped' && out.why === 'disabled') {
          stoppedBy = null;
          break outer;
        }
        if (out.kind === 'waiting' && out.reason !== 'busy') {
          stoppedBy = out.reason;
          break outer;
        }
        if (handled >= max) break outer;
      }
      after = entries[entries.length - 1];
      if (entries.length < 20) break;
    }
    if ((await store.indexCount(index)) === 0) {
      await store.indexRemove(ASSIGN_WAITING_QUEUES_INDEX, queueId);
      // A session may have started waiting in between: keep the queue listed then.
      if ((await store.indexCount(index)) > 0) await store.indexAdd(ASSIGN_WAITING_QUEUES_INDEX, queueId, this.deps.clock.now());
    }
    return { assigned, stoppedBy };
  }

  /**
   * Drains every queue with waiting sessions (the periodic sweep: hours opening, day rollover, parkings expiring;
   * also run after presence and queue changes). Concurrent calls coalesce into one follow-up run.
   */
  sweep(): Promise<void> {
    if (this.sweeping) {
      this.sweepAgain = true;
      return this.sweeping;
    }
    const run = (async () => {
      do {
        this.sweepAgain = false;
        const queues = await this.deps.store.indexRange(ASSIGN_WAITING_QUEUES_INDEX, { limit: SWEEP_QUEUES });
        for (const q of queues) {
          try {
            await this.drain(q.member);
          } catch (err) {
            this.deps.logger.warn({ queueId: q.member, err: (err as Error).message }, 'draining waiting sessions failed; next sweep retries');
          }
        }
      } while (this.sweepAgain && !this.closed);
    })();
    this.sweeping = run.finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  /** GET /api/queues/:id/waiting. */
  async waiting(queueId: string): Promise<WaitingView> {
    const { store } = this.deps;
    const queue = await store.get<Queue>(queueKey(queueId));
    if (!queue) throw notFound('queue', queueId);
    const index = assignWaitingIndex(queueId);
    const [count, oldest, reason] = await Promise.all([
      store.indexCount(index),
      store.indexRange(index, { limit: 1 }),
      store.get<{ reason: WaitingReason; at: number }>(assignReasonKey(queueId)),
    ]);
    return {
      queueId,
      count,
      reason: count > 0 ? (reason?.reason ?? null) : null,
      oldestSince: oldest[0] ? iso(oldest[0].score) : null,
      autoAssignEnabled: queue.autoAssign?.enabled ?? false,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Manual assignment and transfer

  /**
   * POST /api/sessions/:id/assign (R-ASG-1). `agentId` null unassigns. The agent must be an active member of the
   * session's queue (409 otherwise). An agent token may only assign the session to itself or unassign itself
   * (403 otherwise); an admin token may assign anyone. Counts in the agent's daily count.
   */
  async manualAssign(sessionId: string, agentId: string | null, principal: Principal): Promise<StoredSession> {
    const { store } = this.deps;
    if (principal.role === 'agent' && agentId !== null && agentId !== principal.agentId) {
      throw new AppError('forbidden', 'An agent token can only assign the session to its own agent');
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      const prev = await store.get<StoredSession>(sessionKey(sessionId));
      if (!prev) throw notFound('session', sessionId);
      if (principal.role === 'agent' && agentId === null && prev.assigneeId !== null && prev.assigneeId !== principal.agentId) {
        throw new AppError('forbidden', 'An agent token can only unassign its own agent');
      }
      if (prev.assigneeId === agentId) return prev;
      const now = this.deps.clock.now();
      const actor = actorOf(principal);
      let queue: Queue | undefined;
      if (agentId !== null) {
        queue = prev.queueId ? await store.get<Queue>(queueKey(prev.queueId)) : undefined;
        if (!queue) throw conflict(`session ${sessionId} is in no queue; transfer it to a queue first`);
        await this.assertMember(queue, agentId);
      }
      const interactions: Interaction[] = [];
      if (prev.assigneeId) interactions.push({ type: 'agent_unassigned', at: now, actor, data: { agentId: prev.assigneeId } });
      if (agentId) interactions.push({ type: 'agent_assigned', at: now, actor, data: { agentId, by: 'manual' } });
      const next: Session = { ...prev, assigneeId: agentId, updatedAt: now, interactions: [...prev.interactions, ...interactions] };
      const { ops, stored } = saveSessionOps(prev, next);
      const load = await agentLoadOps(store, prev, next, queue ? { mark: this.markFor(queue, now) } : {});
      const extra: WriteOp[] = agentId && prev.queueId ? [{ op: 'unindex', index: assignWaitingIndex(prev.queueId), member: sessionId }] : [];
      try {
        await store.commit([...ops, ...load.ops, ...extra]);
        return stored;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        await pause(this.random() * Math.min(50, 2 * 2 ** attempt));
      }
    }
    throw conflict(`session ${sessionId} changed concurrently; try again`);
  }

  /**
   * POST /api/sessions/:id/transfer (R-QUE-4): moves the session to another queue (a `transferred` interaction),
   * unassigned unless `agentId` (an active member of the target) is given; then the target's auto-assignment runs
   * when it is on. An agent token may only name its own agent.
   */
  async transfer(sessionId: string, input: { queueId: string; agentId?: string | null | undefined }, principal: Principal): Promise<{ session: StoredSession; autoAssign: AssignOutcome | null }> {
    const { store } = this.deps;
    const agentId = input.agentId ?? null;
    if (principal.role === 'agent' && agentId !== null && agentId !== principal.agentId) {
      throw new AppError('forbidden', 'An agent token can only transfer to its own agent (or to nobody)');
    }
    for (let attempt = 0; attempt < 10; attempt++) {
      const prev = await store.get<StoredSession>(sessionKey(sessionId));
      if (!prev) throw notFound('session', sessionId);
      const target = await store.get<Queue>(queueKey(input.queueId));
      if (!target) throw notFound('queue', input.queueId);
      if (prev.queueId === target.id) throw conflict(`session ${sessionId} is already in queue ${target.id}`);
      if (agentId) await this.assertMember(target, agentId);
      const now = this.deps.clock.now();
      const actor = actorOf(principal);
      const from = prev.queueId;
      const interactions: Interaction[] = [{ type: 'transferred', at: now, actor, data: { from, to: target.id, ...(agentId ? { agentId } : {}) } }];
      if (prev.assigneeId && prev.assigneeId !== agentId) interactions.push({ type: 'agent_unassigned', at: now, actor, data: { agentId: prev.assigneeId, reason: 'transferred' } });
      if (agentId && agentId !== prev.assigneeId) interactions.push({ type: 'agent_assigned', at: now, actor, data: { agentId, by: 'transfer' } });
      const next: Session = { ...prev, queueId: target.id, assigneeId: agentId, updatedAt: now, interactions: [...prev.interactions, ...interactions] };
      const { ops, stored } = saveSessionOps(prev, next);
      const load = await agentLoadOps(store, prev, next, agentId && agentId !== prev.assigneeId ? { mark: this.markFor(target, now) } : {});
      const auto = !agentId && target.autoAssign?.enabled === true && !prev.imported && ASSIGNABLE.includes(next.status);
      const extra: WriteOp[] = [
        ...(from ? [{ op: 'unindex', index: assignWaitingIndex(from), member: sessionId } as WriteOp] : []),
        ...(auto
          ? ([
              { op: 'index', index: assignWaitingIndex(target.id), member: sessionId, score: now },
              { op: 'index', index: ASSIGN_WAITING_QUEUES_INDEX, member: target.id, score: now },
            ] as WriteOp[])
          : []),
      ];
      try {
        await store.commit([...ops, ...load.ops, ...extra]);
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        await pause(this.random() * Math.min(50, 2 * 2 ** attempt));
        continue;
      }
      try {
        this.deps.onTransferred?.(stored, from);
      } catch (err) {
        this.deps.logger.warn({ sessionId, err: (err as Error).message }, 'onTransferred hook failed');
      }
      if (!auto) return { session: stored, autoAssign: null };
      const outcome = await this.assign(sessionId);
      return { session: outcome.kind === 'assigned' ? outcome.session : ((await store.get<StoredSession>(sessionKey(sessionId))) ?? stored), autoAssign: outcome };
    }
    throw conflict(`session ${sessionId} changed concurrently; try again`);
  }

  private async assertMember(queue: Queue, agentId: string): Promise<void> {
    const members = await this.deps.directory.expandMembers(queue.email?.agents ?? []);
    if (!members.includes(agentId)) throw conflict(`agent ${agentId} is not an active member of queue ${queue.id} (directly or through a team)`);
  }

  /** Unassigns one batch of open sessions of a (deactivated) agent and runs auto-assignment for them; returns where to go on. */
  private async reassignBatch(agentId: string, after: IndexEntry | undefined): Promise<{ seen: number; cursor: IndexEntry | undefined }> {
    const entries = await this.deps.store.indexRange(idxSessionsByAssignee(agentId), { limit: DEACTIVATE_BATCH, ...(after ? { after } : {}) });
    for (const e of entries) {
      const queueId = await this.unassignDeactivated(e.member, agentId);
      if (queueId) await this.assign(e.member);
    }
    return { seen: entries.length, cursor: entries.length === DEACTIVATE_BATCH ? entries[entries.length - 1] : undefined };
  }

  /** Unassigns one session from a deactivated agent (closed/resolved ones stay as they are, for history). Returns its queue when auto-assignment should run. */
  private async unassignDeactivated(sessionId: string, agentId: string): Promise<string | null> {
    const { store } = this.deps;
    for (let attempt = 0; attempt < 10; attempt++) {
      const prev = await store.get<StoredSession>(sessionKey(sessionId));
      if (!prev || prev.assigneeId !== agentId) return null;
      if (!ASSIGNABLE.includes(prev.status)) return null; // resolved/closed: the assignee stays, for history
      const now = this.deps.clock.now();
      const queue = prev.queueId ? await store.get<Queue>(queueKey(prev.queueId)) : undefined;
      const next: Session = {
        ...prev,
        assigneeId: null,
        updatedAt: now,
        interactions: [...prev.interactions, { type: 'agent_unassigned', at: now, actor: 'system', data: { agentId, reason: 'agent_deactivated' } }],
      };
      const { ops } = saveSessionOps(prev, next);
      const load = await agentLoadOps(store, prev, next);
      const auto = !!queue && queue.autoAssign?.enabled === true && !prev.imported;
      const extra: WriteOp[] =
        auto && prev.queueId
          ? [
              { op: 'index', index: assignWaitingIndex(prev.queueId), member: sessionId, score: now },
              { op: 'index', index: ASSIGN_WAITING_QUEUES_INDEX, member: prev.queueId, score: now },
            ]
          : [];
      try {
        await store.commit([...ops, ...load.ops, ...extra]);
        return auto ? prev.queueId : null;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        await pause(this.random() * Math.min(50, 2 * 2 ** attempt));
      }
    }
    throw conflict(`session ${sessionId} changed concurrently while unassigning it`);
  }

  // ---------------------------------------------------------------------------------------------
  // Agent load: view and repair

  async load(agentId: string): Promise<AgentLoadView> {
    const doc = (await this.deps.store.get<AgentLoadDoc>(agentLoadKey(agentId))) ?? emptyLoadDoc(agentId);
    return {
      agentId,
      active: doc.active,
      lastAssignedAt: doc.lastAssignedAt === null ? null : iso(doc.lastAssignedAt),
      daily: Object.entries(doc.daily)
        .map(([k, count]) => ({ queueId: k.slice(0, k.lastIndexOf('|')), day: k.slice(k.lastIndexOf('|') + 1), count }))
        .sort((a, b) => (a.day === b.day ? (a.queueId < b.queueId ? -1 : 1) : a.day < b.day ? 1 : -1)),
      queues: doc.queues,
      parked: Object.entries(doc.parked).map(([queueId, p]) => ({ queueId, reason: p.reason, until: iso(p.until) })),
    };
  }

  /**
   * Recounts an agent's active sessions from the `sessions:assignee:<id>` index (admin repair, bounded). Any
   * session change of the agent during the scan moves the document's rev, so the scan is done again.
   */
  async recount(agentId: string): Promise<{ agentId: string; before: number; after: number }> {
    const { store } = this.deps;
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = (await store.get<AgentLoadDoc>(agentLoadKey(agentId))) ?? null;
      let count = 0;
      let scanned = 0;
      let after: IndexEntry | undefined;
      while (scanned < RECOUNT_MAX) {
        const entries = await store.indexRange(idxSessionsByAssignee(agentId), { limit: 500, ...(after ? { after } : {}) });
        if (entries.length === 0) break;
        scanned += entries.length;
        const docs = await store.getMany<StoredSession>(entries.map((e) => sessionKey(e.member)));
        for (const s of docs) if (s && s.assigneeId === agentId && countsAsActive(s)) count++;
        if (entries.length < 500) break;
        after = entries[entries.length - 1];
      }
      const base = prev ?? emptyLoadDoc(agentId);
      if (prev && base.active === count) return { agentId, before: count, after: count };
      try {
        await store.commit(loadDocOps(prev, { ...base, active: count }).ops);
        return { agentId, before: base.active, after: count };
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`the sessions of agent ${agentId} kept changing during the recount; try again`);
  }

  // ---------------------------------------------------------------------------------------------

  private withQueueLock<T>(queueId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(queueId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(queueId, tail);
    void tail.then(() => {
      if (this.locks.get(queueId) === tail) this.locks.delete(queueId);
    });
    return run;
  }
}

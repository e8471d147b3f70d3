// Unit tests of the agent-load bookkeeping: which session changes move active counts, the index ops of a document change, daily counts and parking.
import { describe, expect, it } from 'vitest';
import { loadScore } from '../core/assignment/rank.js';
import type { Session } from '../core/session/model.js';
import { agentLoadOps, applyLoadChange, autoAssignIntentOps, emptyLoadDoc, loadDocOps, type AgentLoadDoc } from './assignment-load.js';

const docs = new Map<string, AgentLoadDoc>();
const reader = { getMany: async <T>(keys: string[]) => keys.map((k) => docs.get(k) as T | undefined) };
const s = (status: Session['status'], assigneeId: string | null) => ({ status, assigneeId });

describe('agentLoadOps', () => {
  it('moves nothing (and reads nothing) when the counted assignee does not change', async () => {
    let reads = 0;
    const counting = { getMany: async <T>(keys: string[]) => ((reads += keys.length), keys.map(() => undefined as T | undefined)) };
    expect((await agentLoadOps(counting, s('active', 'a'), s('reopened', 'a'))).ops).toEqual([]);
    expect((await agentLoadOps(counting, s('paused', 'a'), s('resolved', 'a'))).ops).toEqual([]);
    expect((await agentLoadOps(counting, null, s('unopened', null))).ops).toEqual([]);
    expect(reads).toBe(0);
  });

  it('adds one when a session starts counting and takes one when it stops or changes hands', async () => {
    docs.clear();
    docs.set('agent-load:a', { ...emptyLoadDoc('a'), active: 2, queues: ['q1'], rev: 4 });
    const pause = await agentLoadOps(reader, s('active', 'a'), s('paused', 'a'));
    expect(pause.docs.get('a')).toMatchObject({ active: 1, rev: 5 });
    expect(pause.ops[0]).toEqual({ op: 'check', key: 'agent-load:a', rev: 4 });
    expect(pause.ops).toContainEqual({ op: 'index', index: 'assign:load:q1', member: 'a', score: loadScore(1, null) });
    const handOver = await agentLoadOps(reader, s('active', 'a'), s('active', 'b'));
    expect(handOver.docs.get('a')?.active).toBe(1);
    expect(handOver.docs.get('b')).toMatchObject({ active: 1, rev: 1 });
    expect(handOver.ops).toContainEqual({ op: 'check', key: 'agent-load:b', rev: null });
  });

  it('records an assignment: last assignment, daily count, parking at the limit', async () => {
    docs.clear();
    docs.set('agent-load:a', { ...emptyLoadDoc('a'), queues: ['q1', 'q2'], daily: { 'q1|2026-06-10': 1, 'q1|2026-05-01': 9 }, rev: 1 });
    const mark = { queueId: 'q1', at: 1000, day: '2026-06-10', dailyLimit: 2, capUntil: 5000 };
    const r = await agentLoadOps(reader, s('unopened', null), s('unopened', 'a'), { mark });
    const doc = r.docs.get('a')!;
    expect(doc).toMatchObject({ active: 1, lastAssignedAt: 1000, daily: { 'q1|2026-06-10': 2 }, parked: { q1: { reason: 'limit', until: 5000 } } });
    expect(doc.daily['q1|2026-05-01']).toBeUndefined();
    expect(r.ops).toContainEqual({ op: 'unindex', index: 'assign:load:q1', member: 'a' });
    expect(r.ops).toContainEqual({ op: 'index', index: 'assign:parked:q1', member: 'a', score: 5000 });
    expect(r.ops).toContainEqual({ op: 'index', index: 'assign:load:q2', member: 'a', score: loadScore(1, 1000) });
  });
});

describe('loadDocOps', () => {
  it('writes only the index moves that changed', () => {
    const prev: AgentLoadDoc = { ...emptyLoadDoc('a'), active: 1, queues: ['q1', 'q2'], parked: { q2: { reason: 'offline', until: 9 } }, rev: 3 };
    const next = applyLoadChange({ ...prev, queues: ['q1', 'q3'] }, 0);
    const { ops, stored } = loadDocOps(prev, next);
    expect(stored.rev).toBe(4);
    expect(stored.parked).toEqual({});
    expect(ops).toEqual([
      { op: 'check', key: 'agent-load:a', rev: 3 },
      { op: 'put', key: 'agent-load:a', value: stored },
      { op: 'unindex', index: 'assign:parked:q2', member: 'a' },
      { op: 'index', index: 'assign:load:q3', member: 'a', score: loadScore(1, null) },
    ]);
  });
});

describe('autoAssignIntentOps', () => {
  const base = { id: 'S1', queueId: 'q', assigneeId: null, imported: false, statusChangedAt: 50 } as unknown as Session;
  const effect = [{ type: 'auto_assign', reason: 'new_inbound' }] as const;
  it('records the intent for an unassigned, not imported session of a queue', () => {
    expect(autoAssignIntentOps(base, [...effect], 100)).toEqual([
      { op: 'index', index: 'assign:waiting:q', member: 'S1', score: 50 },
      { op: 'index', index: 'assign:waiting-queues', member: 'q', score: 100 },
    ]);
    expect(autoAssignIntentOps({ ...base, imported: true }, [...effect], 100)).toEqual([]);
    expect(autoAssignIntentOps({ ...base, assigneeId: 'a' }, [...effect], 100)).toEqual([]);
    expect(autoAssignIntentOps({ ...base, queueId: null }, [...effect], 100)).toEqual([]);
    expect(autoAssignIntentOps(base, [], 100)).toEqual([]);
  });
});

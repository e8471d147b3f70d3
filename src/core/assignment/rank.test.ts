// Unit tests of auto-assignment ranking: each filter alone and combined, ties, reasons, and the load score's order and bounds.
import { describe, expect, it } from 'vitest';
import {
  type AgentLoad,
  type AssignOptions,
  MAX_SCORED_ACTIVE,
  MAX_SCORED_TIMESTAMP,
  compareAgents,
  decodeLoadScore,
  eligible,
  loadScore,
  pickAgent,
  rankKey,
} from './rank.js';

const agent = (agentId: string, over: Partial<AgentLoad> = {}): AgentLoad => ({
  agentId,
  active: 0,
  lastAssignedAt: null,
  assignedToday: 0,
  online: true,
  activeAgent: true,
  ...over,
});
const noRules: AssignOptions = { dailyLimit: null, loggedInOnly: false, businessHoursOnly: false };
const open = { open: true };

describe('eligible', () => {
  it('applies each rule alone', () => {
    expect(eligible(agent('a'), noRules)).toBe(true);
    expect(eligible(agent('a', { activeAgent: false }), noRules)).toBe(false);
    expect(eligible(agent('a', { online: false }), noRules)).toBe(true);
    expect(eligible(agent('a', { online: false }), { ...noRules, loggedInOnly: true })).toBe(false);
    expect(eligible(agent('a', { assignedToday: 99 }), noRules)).toBe(true);
    expect(eligible(agent('a', { assignedToday: 4 }), { ...noRules, dailyLimit: 5 })).toBe(true);
    expect(eligible(agent('a', { assignedToday: 5 }), { ...noRules, dailyLimit: 5 })).toBe(false);
    expect(eligible(agent('a'), { ...noRules, dailyLimit: 0 })).toBe(false);
  });
});

describe('rankKey / compareAgents', () => {
  it('puts never-assigned before any timestamp', () => {
    expect(rankKey(agent('a'))).toEqual([0, -Infinity, 'a']);
    expect(compareAgents(agent('a', { lastAssignedAt: 0 }), agent('b'))).toBeGreaterThan(0);
  });

  it('orders by active, then oldest assignment, then agentId', () => {
    const list = [
      agent('d', { active: 1, lastAssignedAt: 100 }),
      agent('c', { active: 0, lastAssignedAt: 500 }),
      agent('b', { active: 0, lastAssignedAt: 200 }),
      agent('a', { active: 2, lastAssignedAt: null }),
      agent('f', { active: 0, lastAssignedAt: 200 }),
      agent('e', { active: 0, lastAssignedAt: null }),
    ];
    expect([...list].sort(compareAgents).map((a) => a.agentId)).toEqual(['e', 'b', 'f', 'c', 'd', 'a']);
  });
});

describe('pickAgent', () => {
  it('picks the fewest active sessions', () => {
    const agents = [agent('a', { active: 3 }), agent('b', { active: 1, lastAssignedAt: 900 }), agent('c', { active: 2 })];
    expect(pickAgent(agents, noRules, open)).toEqual({ agentId: 'b' });
  });

  it('breaks ties by the oldest last assignment, never-assigned first, then agentId', () => {
    expect(pickAgent([agent('a', { active: 1, lastAssignedAt: 200 }), agent('b', { active: 1, lastAssignedAt: 100 })], noRules, open)).toEqual({ agentId: 'b' });
    expect(pickAgent([agent('a', { active: 1, lastAssignedAt: 1 }), agent('b', { active: 1 })], noRules, open)).toEqual({ agentId: 'b' });
    expect(pickAgent([agent('b', { active: 1 }), agent('a', { active: 1 })], noRules, open)).toEqual({ agentId: 'a' });
  });

  it('is independent of input order', () => {
    const agents = [agent('x', { active: 1, lastAssignedAt: 5 }), agent('y', { active: 1, lastAssignedAt: 5 }), agent('z', { active: 1, lastAssignedAt: 4 })];
    expect(pickAgent(agents, noRules, open)).toEqual({ agentId: 'z' });
    expect(pickAgent([...agents].reverse(), noRules, open)).toEqual({ agentId: 'z' });
  });

  it('skips deactivated agents even when they rank first', () => {
    const agents = [agent('a', { activeAgent: false }), agent('b', { active: 4 })];
    expect(pickAgent(agents, noRules, open)).toEqual({ agentId: 'b' });
  });

  it('skips agents at the daily limit', () => {
    const opts = { ...noRules, dailyLimit: 10 };
    const agents = [agent('a', { assignedToday: 10 }), agent('b', { active: 5, assignedToday: 9 })];
    expect(pickAgent(agents, opts, open)).toEqual({ agentId: 'b' });
  });

  it('skips offline agents only when presence is required', () => {
    const agents = [agent('a', { online: false }), agent('b', { active: 1 })];
    expect(pickAgent(agents, noRules, open)).toEqual({ agentId: 'a' });
    expect(pickAgent(agents, { ...noRules, loggedInOnly: true }, open)).toEqual({ agentId: 'b' });
  });

  it('respects business hours only when asked', () => {
    const agents = [agent('a')];
    expect(pickAgent(agents, noRules, { open: false })).toEqual({ agentId: 'a' });
    expect(pickAgent(agents, { ...noRules, businessHoursOnly: true }, { open: false })).toEqual({ none: 'closed' });
    expect(pickAgent(agents, { ...noRules, businessHoursOnly: true }, { open: true })).toEqual({ agentId: 'a' });
  });

  it('combines limit, hours and presence', () => {
    const opts: AssignOptions = { dailyLimit: 3, loggedInOnly: true, businessHoursOnly: true };
    const agents = [
      agent('a', { active: 0, online: false }), // offline
      agent('b', { active: 0, assignedToday: 3 }), // at limit
      agent('c', { active: 1, activeAgent: false }), // deactivated
      agent('d', { active: 2, lastAssignedAt: 50 }),
      agent('e', { active: 2, lastAssignedAt: 40, assignedToday: 2 }),
    ];
    expect(pickAgent(agents, opts, open)).toEqual({ agentId: 'e' });
    expect(pickAgent(agents, opts, { open: false })).toEqual({ none: 'closed' });
    expect(pickAgent(agents, { ...opts, businessHoursOnly: false }, { open: false })).toEqual({ agentId: 'e' });
  });

  it('explains why nobody was picked, most specific reason', () => {
    const hours = { ...noRules, businessHoursOnly: true };
    // Closed wins over everything, even an empty queue.
    expect(pickAgent([], hours, { open: false })).toEqual({ none: 'closed' });
    expect(pickAgent([], noRules, open)).toEqual({ none: 'no_agent' });
    expect(pickAgent([agent('a', { activeAgent: false })], noRules, open)).toEqual({ none: 'no_agent' });
    const presence = { ...noRules, loggedInOnly: true };
    expect(pickAgent([agent('a', { online: false }), agent('b', { online: false, activeAgent: false })], presence, open)).toEqual({ none: 'all_offline' });
    const limit = { ...noRules, dailyLimit: 2 };
    expect(pickAgent([agent('a', { assignedToday: 2 }), agent('b', { assignedToday: 7 })], limit, open)).toEqual({ none: 'all_at_limit' });
    // Nobody online: offline is the reason, whatever the limits.
    const both = { ...noRules, loggedInOnly: true, dailyLimit: 2 };
    expect(pickAgent([agent('a', { online: false }), agent('b', { online: false, assignedToday: 2 })], both, open)).toEqual({ none: 'all_offline' });
    // Someone online but full: the limit is the reason.
    expect(pickAgent([agent('a', { online: false }), agent('b', { assignedToday: 2 })], both, open)).toEqual({ none: 'all_at_limit' });
  });
});

describe('loadScore', () => {
  const YEAR_2200 = Date.UTC(2200, 0, 1);

  it('covers ms timestamps up to 2248 and active up to 1023, topping out at MAX_SAFE_INTEGER', () => {
    expect(MAX_SCORED_ACTIVE).toBe(1023);
    expect(MAX_SCORED_TIMESTAMP).toBe(2 ** 43 - 2);
    expect(new Date(MAX_SCORED_TIMESTAMP).toISOString()).toBe('2248-09-26T15:10:22.206Z');
    expect(YEAR_2200).toBeLessThan(MAX_SCORED_TIMESTAMP);
    expect(loadScore(0, null)).toBe(0);
    expect(loadScore(0, 0)).toBe(1);
    expect(loadScore(MAX_SCORED_ACTIVE, MAX_SCORED_TIMESTAMP)).toBe(Number.MAX_SAFE_INTEGER);
    expect(Number.isSafeInteger(loadScore(MAX_SCORED_ACTIVE, MAX_SCORED_TIMESTAMP))).toBe(true);
  });

  it('stays strictly ordered at every boundary', () => {
    for (const a of [0, 1, 512, MAX_SCORED_ACTIVE - 1]) {
      expect(loadScore(a, MAX_SCORED_TIMESTAMP)).toBeLessThan(loadScore(a + 1, null));
      expect(loadScore(a + 1, null) - loadScore(a, MAX_SCORED_TIMESTAMP)).toBe(1);
    }
    const a = MAX_SCORED_ACTIVE;
    expect(loadScore(a, null)).toBeLessThan(loadScore(a, 0));
    expect(loadScore(a, YEAR_2200 - 1)).toBeLessThan(loadScore(a, YEAR_2200));
    expect(loadScore(a, MAX_SCORED_TIMESTAMP - 1)).toBeLessThan(loadScore(a, MAX_SCORED_TIMESTAMP));
  });

  it('decodes back inside the exact domain', () => {
    const cases: [number, number | null][] = [
      [0, null],
      [0, 0],
      [7, 1_767_225_600_123],
      [MAX_SCORED_ACTIVE, YEAR_2200],
      [MAX_SCORED_ACTIVE, MAX_SCORED_TIMESTAMP],
      [MAX_SCORED_ACTIVE, null],
    ];
    for (const [active, lastAssignedAt] of cases) {
      expect(decodeLoadScore(loadScore(active, lastAssignedAt))).toEqual({ active, lastAssignedAt });
    }
    expect(() => decodeLoadScore(-1)).toThrow(RangeError);
    expect(() => decodeLoadScore(2 ** 53)).toThrow(RangeError);
    expect(() => decodeLoadScore(1.5)).toThrow(RangeError);
  });

  it('saturates outside the domain without losing precision or order among active counts below the cap', () => {
    expect(loadScore(1_000_000, YEAR_2200)).toBe(loadScore(MAX_SCORED_ACTIVE, YEAR_2200));
    expect(Number.isSafeInteger(loadScore(1_000_000, 1e15))).toBe(true);
    expect(loadScore(-3, -5)).toBe(loadScore(0, 0));
    expect(loadScore(5, 1e15)).toBe(loadScore(5, MAX_SCORED_TIMESTAMP));
    expect(loadScore(MAX_SCORED_ACTIVE - 1, MAX_SCORED_TIMESTAMP)).toBeLessThan(loadScore(1_000_000, null));
  });

  it('orders (score, agentId) exactly like compareAgents on 10,000 random agents', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const now = Date.UTC(2026, 0, 1);
    const agents: AgentLoad[] = Array.from({ length: 10_000 }, (_, i) => {
      const r = rand();
      // Mix of small and extreme loads, never-assigned, dense and boundary timestamps (to force ties).
      const active = r < 0.1 ? MAX_SCORED_ACTIVE - Math.floor(rand() * 3) : Math.floor(rand() * 8);
      const t = rand();
      const lastAssignedAt =
        t < 0.15 ? null : t < 0.2 ? MAX_SCORED_TIMESTAMP - Math.floor(rand() * 3) : t < 0.25 ? Math.floor(rand() * 3) : now + Math.floor(rand() * 2000);
      return agent(`agent-${Math.floor(rand() * 1e9).toString(36)}-${i}`, { active, lastAssignedAt });
    });
    const byComparator = [...agents].sort(compareAgents).map((a) => a.agentId);
    const byScore = agents
      .map((a) => ({ id: a.agentId, s: loadScore(a.active, a.lastAssignedAt) }))
      .sort((x, y) => x.s - y.s || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
      .map((x) => x.id);
    expect(byScore).toEqual(byComparator);
    // And the score alone never inverts the comparator.
    const sorted = [...agents].sort(compareAgents);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      expect(loadScore(prev.active, prev.lastAssignedAt)).toBeLessThanOrEqual(loadScore(cur.active, cur.lastAssignedAt));
    }
  });
});

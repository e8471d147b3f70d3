// Auto-assignment ranking (R-ASG-3/4): eligibility filters, the agent order, the pick with a reason, and a sortable load score.

export interface AgentLoad {
  agentId: string;
  /** Sessions Unopened | Reopened | Active assigned to this agent in the queue. */
  active: number;
  /** Epoch ms of the agent's last assignment; null when never assigned. */
  lastAssignedAt: number | null;
  /** Assignments counted for the current local day of the queue (see hours.localDay). */
  assignedToday: number;
  /** Presence: logged in now. */
  online: boolean;
  /** False when the agent is deactivated. */
  activeAgent: boolean;
}

export interface AssignOptions {
  /** Assignments per agent per local day; null = no limit (0 = nobody gets any). */
  dailyLimit: number | null;
  /** Assign only to agents who are online. */
  loggedInOnly: boolean;
  /** Assign only while the queue is open. */
  businessHoursOnly: boolean;
}

/**
 * Why nobody was picked: `closed` (outside business hours), `no_agent` (no active agent in the queue),
 * `all_offline` (presence required and no active agent is online), `all_at_limit` (every remaining
 * agent reached the daily limit).
 */
export type NoPickReason = 'closed' | 'no_agent' | 'all_at_limit' | 'all_offline';
export type PickResult = { agentId: string } | { none: NoPickReason };

export type RankKey = [active: number, lastAssignedAt: number, agentId: string];

/** Whether the agent may receive an assignment now (hours are checked by pickAgent, not per agent). */
export function eligible(agent: AgentLoad, opts: AssignOptions): boolean {
  return agent.activeAgent && (!opts.loggedInOnly || agent.online) && !atLimit(agent, opts);
}

function atLimit(agent: AgentLoad, opts: AssignOptions): boolean {
  return opts.dailyLimit !== null && agent.assignedToday >= opts.dailyLimit;
}

/**
 * The ranking key, compared left to right: fewest active sessions, then the oldest last assignment
 * (never assigned = oldest), then agentId so equal agents always resolve the same way.
 */
export function rankKey(agent: AgentLoad): RankKey {
  return [agent.active, agent.lastAssignedAt ?? -Infinity, agent.agentId];
}

/** Negative when `a` ranks before `b` (should be picked first); a total order over distinct agentIds. */
export function compareAgents(a: AgentLoad, b: AgentLoad): number {
  if (a.active !== b.active) return a.active < b.active ? -1 : 1;
  const ta = a.lastAssignedAt ?? -Infinity;
  const tb = b.lastAssignedAt ?? -Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  // Code-unit order, not localeCompare: the same on every runtime and locale.
  return a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0;
}

/**
 * Chooses the agent for one assignment, or says why nobody. Filters apply in this order and the
 * reason names the one that removed the last candidates: hours (`closed`), deactivated (`no_agent`),
 * presence (`all_offline`), daily limit (`all_at_limit`). So "everyone online is full" is
 * `all_at_limit`, while "nobody is online" is `all_offline` whatever the limits.
 */
export function pickAgent(agents: readonly AgentLoad[], opts: AssignOptions, ctx: { open: boolean }): PickResult {
  if (opts.businessHoursOnly && !ctx.open) return { none: 'closed' };
  const enabled = agents.filter((a) => a.activeAgent);
  if (enabled.length === 0) return { none: 'no_agent' };
  const present = opts.loggedInOnly ? enabled.filter((a) => a.online) : enabled;
  if (present.length === 0) return { none: 'all_offline' };
  let best: AgentLoad | null = null;
  for (const a of present) {
    if (atLimit(a, opts)) continue;
    if (best === null || compareAgents(a, best) < 0) best = a;
  }
  return best === null ? { none: 'all_at_limit' } : { agentId: best.agentId };
}

// ---------------------------------------------------------------------------------------------
// Load score for an ordered index (e.g. a Redis sorted set scored by load, members = agentIds)
//
// score = active * 2^43 + slot, slot = 0 when never assigned, else lastAssignedAt + 1.
//
// Arithmetic. Scores are doubles, exact for integers up to 2^53 - 1. Millisecond timestamps up to
// year 2200 (7.26e12 ms) need 43 bits (2^42 ms only reaches 2109-05-15), leaving 53 - 43 = 10 bits for
// `active`. Exactness at ms resolution for active up to 1,000,000 would need 20 + 43 = 63 bits, which
// no double has, so the exact domain is:
//   active          0 … 1023                      (MAX_SCORED_ACTIVE)
//   lastAssignedAt  0 … 2^43 - 2 ms, i.e. up to 2248-09-26 (MAX_SCORED_TIMESTAMP), or null
// and the largest score is 1023 * 2^43 + 2^43 - 1 = 2^53 - 1 = Number.MAX_SAFE_INTEGER.
// Inside it, ordering by (score, agentId) is exactly compareAgents. Outside it values saturate: a
// timestamp before 1970 counts as 1970-01-01T00:00:00.000Z, after the bound as the bound; an active count
// above 1023 counts as 1023, so agents that all hold 1023+ active sessions rank among themselves by
// last assignment only (the score never overflows or loses integer precision).

export const SCORE_TIME_BITS = 43;
const TIME_SPAN = 2 ** SCORE_TIME_BITS;
export const MAX_SCORED_ACTIVE = 2 ** (53 - SCORE_TIME_BITS) - 1;
export const MAX_SCORED_TIMESTAMP = TIME_SPAN - 2;

/** The agent's position as one exact integer; see the comment above for the exact domain. */
export function loadScore(active: number, lastAssignedAt: number | null): number {
  const a = clampInt(active, 0, MAX_SCORED_ACTIVE);
  const slot = lastAssignedAt === null ? 0 : clampInt(lastAssignedAt, 0, MAX_SCORED_TIMESTAMP) + 1;
  return a * TIME_SPAN + slot;
}

/** Inverse of loadScore inside the exact domain (saturated inputs come back saturated). */
export function decodeLoadScore(score: number): { active: number; lastAssignedAt: number | null } {
  if (!Number.isSafeInteger(score) || score < 0) throw new RangeError(`not a load score: ${score}`);
  const active = Math.floor(score / TIME_SPAN);
  const slot = score - active * TIME_SPAN;
  return { active, lastAssignedAt: slot === 0 ? null : slot - 1 };
}

function clampInt(v: number, min: number, max: number): number {
  if (Number.isNaN(v)) return min;
  return Math.min(max, Math.max(min, Math.floor(v)));
}

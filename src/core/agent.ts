// Agents and teams (R-QUE-3, SPEC §11a /api/agents, /api/teams): who works the queues' email.

export interface Agent {
  id: string;
  name: string;
  firstName: string;
  email: string;
  company: string;
  /** Team ids this agent belongs to (kept in sync with Team.agentIds). */
  teams: string[];
  /** Deactivated agents get no new sessions and cannot use their tokens. */
  active: boolean;
  createdAt: string;
  updatedAt: string;
  rev: number;
}

export interface Team {
  id: string;
  name: string;
  agentIds: string[];
  createdAt: string;
  updatedAt: string;
  rev: number;
}

/** Presence (R-ASG-4 logged-in only): online until `until` (epoch ms); a crashed client expires by itself. */
export interface Presence {
  online: boolean;
  until: number;
  source: 'api' | 'crm';
  updatedAt: number;
}

/** An agent token as stored: only its SHA-256 hash; the token itself is shown once at creation. */
export interface AgentToken {
  id: string;
  agentId: string;
  /** hex SHA-256 of the token */
  hash: string;
  label: string;
  createdAt: string;
  lastUsedAt: string | null;
}

// Agents, teams, agent tokens and presence (R-QUE-3, R-ASG-4, SPEC §11a/§11b): membership kept consistent both ways, hashed tokens, expiring presence.
import { z } from 'zod';
import type { Agent, AgentToken, Presence, Team } from '../core/agent.js';
import type { Principal, TokenResolver } from '../core/auth.js';
import { AppError, conflict, notFound, validationError, type FieldError } from '../core/errors.js';
import { isSafeId, newId, type RandomSource } from '../core/ids.js';
import {
  ACTIVE_AGENTS_BY_CREATED_INDEX,
  AGENTS_BY_CREATED_INDEX,
  agentEmailKey,
  agentKey,
  agentTokenKey,
  agentTokenListKey,
  presenceKey,
  teamKey,
  TEAMS_BY_CREATED_INDEX,
} from '../core/keys.js';
import { decodeCursor, pageFromEntries, type Page } from '../core/paging.js';
import { CommitConflictError, type Clock, type Logger, type Store, type WriteOp } from '../core/ports.js';
import { parseOrThrow } from '../config/validation.js';

/** Bounds: every read and every commit stays small. */
export const MAX_TEAMS_PER_AGENT = 50;
export const MAX_TEAM_SIZE = 500;
export const MAX_TOKENS_PER_AGENT = 20;
/** `expandMembers` reads at most this many input ids and answers at most this many agents. */
export const MAX_EXPAND_INPUT = 1000;
export const MAX_EXPANDED = 5000;
export const PRESENCE_TTL_DEFAULT_S = 300;
export const PRESENCE_TTL_MIN_S = 30;
export const PRESENCE_TTL_MAX_S = 86_400;
/** `lastUsedAt` of a token is written at most this often. */
export const TOKEN_TOUCH_INTERVAL_MS = 60_000;
/** Agent tokens: `eca_` + 32 random bytes in base64url (43 characters). */
export const AGENT_TOKEN_PREFIX = 'eca_';
const AGENT_TOKEN_PATTERN = /^eca_[A-Za-z0-9_-]{43}$/;
const MAX_ATTEMPTS = 5;
const READ_CHUNK = 500;

// ---------------------------------------------------------------------------------------------------
// Input schemas (plain zod with `.meta({ id })`: named OpenAPI components; the routes validate with them).

const NO_CONTROL = /^[^\r\n\0]*$/;
const line = (max: number) => z.string().trim().max(max).regex(NO_CONTROL, 'must not contain CR, LF or NUL');
const idList = (max: number) => z.array(z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id')).max(max);

const agentShape = {
  name: line(200).min(1, 'must not be empty'),
  firstName: line(100).describe('Used by the `@{agent}` tag; defaults to the first word of `name`'),
  email: z.email('must be an email address').max(254).describe('Lowercased; unique among agents (409 naming `email`); the signature alias'),
  company: line(200).describe('Used by the `@{company}` signature tag'),
  teams: idList(MAX_TEAMS_PER_AGENT).describe('Team ids; the teams’ `agentIds` follow in the same write'),
  active: z.boolean().describe('false = deactivated: no new sessions, tokens refused, hidden from lists unless `includeInactive=true`'),
};

export const AgentInputSchema = z
  .object({
    name: agentShape.name,
    firstName: agentShape.firstName.optional(),
    email: agentShape.email,
    company: agentShape.company.default(''),
    teams: agentShape.teams.default([]),
    active: agentShape.active.default(true),
  })
  .strict()
  .meta({ id: 'AgentInput' });

export const AgentPatchSchema = z.object(agentShape).partial().strict().meta({ id: 'AgentPatch' });

const teamShape = {
  name: line(200).min(1, 'must not be empty'),
  agentIds: idList(MAX_TEAM_SIZE).describe('Agent ids; the agents’ `teams` follow in the same write'),
};

export const TeamInputSchema = z
  .object({ name: teamShape.name, agentIds: teamShape.agentIds.default([]) })
  .strict()
  .meta({ id: 'TeamInput' });

export const TeamPatchSchema = z.object(teamShape).partial().strict().meta({ id: 'TeamPatch' });

export const PresenceInputSchema = z
  .object({
    online: z.boolean(),
    ttlSeconds: z
      .number()
      .int('must be a whole number')
      .min(PRESENCE_TTL_MIN_S, `must be between ${PRESENCE_TTL_MIN_S} and ${PRESENCE_TTL_MAX_S}`)
      .max(PRESENCE_TTL_MAX_S, `must be between ${PRESENCE_TTL_MIN_S} and ${PRESENCE_TTL_MAX_S}`)
      .default(PRESENCE_TTL_DEFAULT_S)
      .describe('The presence expires after this many seconds unless set again (a crashed client goes offline by itself)'),
  })
  .strict()
  .meta({ id: 'PresenceInput' });

export const AgentTokenInputSchema = z
  .object({ label: line(100).default('').describe('What the token is for, e.g. "workspace laptop"') })
  .strict()
  .meta({ id: 'AgentTokenInput' });

// ---------------------------------------------------------------------------------------------------

/** `agent-tokens:<agentId>`: the agent's tokens (ids and hashes), for listing and revoking. */
interface AgentTokenList {
  rev: number;
  tokens: { id: string; hash: string }[];
}

export interface AgentTokenView {
  id: string;
  label: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** A new token: `token` is shown here once and never again. */
export interface CreatedAgentToken {
  id: string;
  token: string;
  label: string;
  createdAt: string;
}

export interface PresenceView {
  agentId: string;
  /** Effective: false when never set, set offline, or expired. */
  online: boolean;
  /** When the current presence expires (ISO); null when there is none. */
  until: string | null;
  source: Presence['source'] | null;
  updatedAt: string | null;
}

export interface AgentsDeps {
  store: Store;
  clock: Clock;
  logger?: Logger;
  /** After an agent is deactivated (PATCH active:false or DELETE): the assignment engine unassigns its open sessions. */
  onAgentDeactivated?: (agentId: string) => void | Promise<void>;
  /**
   * After an agent's effective presence changes by a write (offline/expired → online, online → offline).
   * Expiry by TTL fires nothing: readers treat an expired presence as offline.
   */
  onPresenceChange?: (agentId: string, online: boolean) => void | Promise<void>;
  /** Randomness for token bytes (tests); default WebCrypto. */
  random?: RandomSource;
}

const defaultRandom: RandomSource = (bytes) => globalThis.crypto.getRandomValues(bytes);

function base64Url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** The first index at which an id appears a second time, or -1. */
function firstDuplicate(ids: string[]): number {
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (seen.has(id)) return i;
    seen.add(id);
  }
  return -1;
}

export class AgentsService {
  private readonly random: RandomSource;

  constructor(private readonly deps: AgentsDeps) {
    this.random = deps.random ?? defaultRandom;
  }

  private nowIso(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  /** getMany in bounded chunks. */
  private async readMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    const out: (T | undefined)[] = [];
    for (let i = 0; i < keys.length; i += READ_CHUNK) out.push(...(await this.deps.store.getMany<T>(keys.slice(i, i + READ_CHUNK))));
    return out;
  }

  private async fire(hook: string, run: () => void | Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.deps.logger?.warn({ err: (err as Error).message, hook }, 'agents hook failed');
    }
  }

  // ---- agents ----

  /** Agents newest first; inactive ones only with `includeInactive`. */
  async list(opts: { limit: number; cursor?: string | undefined; includeInactive?: boolean | undefined }): Promise<Page<Agent>> {
    const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
    if (opts.cursor !== undefined && !after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    const index = opts.includeInactive ? AGENTS_BY_CREATED_INDEX : ACTIVE_AGENTS_BY_CREATED_INDEX;
    const entries = await this.deps.store.indexRange(index, { reverse: true, limit: opts.limit + 1, ...(after ? { after } : {}) });
    const docs = await this.readMany<Agent>(entries.slice(0, opts.limit).map((e) => agentKey(e.member)));
    const byId = new Map(docs.filter((d): d is Agent => !!d).map((d) => [d.id, d]));
    return pageFromEntries(entries, opts.limit, (e) => byId.get(e.member));
  }

  async find(id: string): Promise<Agent | undefined> {
    if (!isSafeId(id)) return undefined;
    return this.deps.store.get<Agent>(agentKey(id));
  }

  /** The agent with this email (unique among agents), e.g. the author of a CRM reply. */
  async findByEmail(email: string): Promise<Agent | undefined> {
    const id = await this.deps.store.get<string>(agentEmailKey(email.trim().toLowerCase()));
    return id ? this.find(id) : undefined;
  }

  async get(id: string): Promise<Agent> {
    const agent = await this.find(id);
    if (!agent) throw notFound('agent', id);
    return agent;
  }

  /** Agents by id (unknown ids are left out), e.g. for signature tags. */
  async findMany(ids: string[]): Promise<Map<string, Agent>> {
    const wanted = [...new Set(ids.filter(isSafeId))];
    const docs = await this.readMany<Agent>(wanted.map(agentKey));
    return new Map(docs.filter((d): d is Agent => !!d).map((d) => [d.id, d]));
  }

  async create(input: unknown): Promise<Agent> {
    const data = parseOrThrow(AgentInputSchema, input);
    const now = this.nowIso();
    const agent: Agent = {
      id: newId('agt', this.random),
      name: data.name,
      firstName: data.firstName ?? data.name.split(/\s+/)[0] ?? data.name,
      email: data.email.toLowerCase(),
      company: data.company,
      teams: data.teams,
      active: data.active,
      createdAt: now,
      updatedAt: now,
      rev: 1,
    };
    await this.saveAgentWithRetry(() => Promise.resolve({ prev: null, next: agent }));
    return agent;
  }

  /** Partial update; `active: false` deactivates (the hook runs), `active: true` reactivates. */
  async update(id: string, patch: unknown): Promise<Agent> {
    const data = parseOrThrow(AgentPatchSchema, patch);
    const { prev: before, next: saved } = await this.saveAgentWithRetry(async () => {
      const prev = await this.get(id);
      const next: Agent = {
        ...prev,
        ...(data.name !== undefined ? { name: data.name } : {}),
        ...(data.firstName !== undefined ? { firstName: data.firstName } : {}),
        ...(data.email !== undefined ? { email: data.email.toLowerCase() } : {}),
        ...(data.company !== undefined ? { company: data.company } : {}),
        ...(data.teams !== undefined ? { teams: data.teams } : {}),
        ...(data.active !== undefined ? { active: data.active } : {}),
        updatedAt: this.nowIso(),
        rev: prev.rev + 1,
      };
      return { prev, next };
    });
    if (before?.active && !saved.active) await this.fire('onAgentDeactivated', () => this.deps.onAgentDeactivated?.(id));
    return saved;
  }

  /** Soft delete (DELETE /api/agents/:id): kept for history, marked inactive. Idempotent. */
  async deactivate(id: string): Promise<Agent> {
    const agent = await this.get(id);
    if (!agent.active) return agent;
    return this.update(id, { active: false });
  }

  /** Builds the next version (re-read on each attempt) and saves it; retries a concurrent change, bounded. */
  private async saveAgentWithRetry(build: () => Promise<{ prev: Agent | null; next: Agent }>): Promise<{ prev: Agent | null; next: Agent }> {
    let id = '';
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const step = await build();
      id = step.next.id;
      try {
        await this.saveAgent(step.prev, step.next);
        return step;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`agent ${id} changed concurrently; try again`);
  }

  private async saveAgent(prev: Agent | null, next: Agent): Promise<void> {
    const store = this.deps.store;
    const dup = firstDuplicate(next.teams);
    if (dup >= 0) throw validationError([{ path: `teams.${dup}`, message: 'lists a team twice' }]);
    const prevTeams = prev?.teams ?? [];
    const added = next.teams.filter((t) => !prevTeams.includes(t));
    const removed = prevTeams.filter((t) => !next.teams.includes(t));
    const teamDocs = await this.readMany<Team>([...added, ...removed].map(teamKey));
    const fields: FieldError[] = [];
    added.forEach((t, i) => {
      const team = teamDocs[i];
      const path = `teams.${next.teams.indexOf(t)}`;
      if (!team) fields.push({ path, message: `unknown team ${t}` });
      else if (team.agentIds.length >= MAX_TEAM_SIZE) fields.push({ path, message: `team ${t} already has ${MAX_TEAM_SIZE} agents` });
    });
    if (fields.length > 0) throw validationError(fields);

    const emailChanged = prev?.email !== next.email;
    if (emailChanged) {
      const owner = await store.get<string>(agentEmailKey(next.email));
      if (owner !== undefined && owner !== next.id) throw this.emailTaken(next.email, owner);
    }

    const now = next.updatedAt;
    const ops: WriteOp[] = [
      { op: 'check', key: agentKey(next.id), rev: prev ? prev.rev : null },
      { op: 'put', key: agentKey(next.id), value: next },
    ];
    const score = Date.parse(next.createdAt);
    if (!prev) ops.push({ op: 'index', index: AGENTS_BY_CREATED_INDEX, member: next.id, score });
    if (next.active && !prev?.active) ops.push({ op: 'index', index: ACTIVE_AGENTS_BY_CREATED_INDEX, member: next.id, score });
    if (prev?.active && !next.active) {
      ops.push({ op: 'unindex', index: ACTIVE_AGENTS_BY_CREATED_INDEX, member: next.id }, { op: 'del', key: presenceKey(next.id) });
    }
    if (emailChanged) {
      ops.push({ op: 'check', key: agentEmailKey(next.email), rev: null }, { op: 'put', key: agentEmailKey(next.email), value: next.id });
      if (prev) ops.push({ op: 'del', key: agentEmailKey(prev.email) });
    }
    [...added, ...removed].forEach((t, i) => {
      const team = teamDocs[i];
      if (!team) return; // a removed team that no longer exists
      const agentIds = added.includes(t) ? [...team.agentIds.filter((a) => a !== next.id), next.id] : team.agentIds.filter((a) => a !== next.id);
      ops.push({ op: 'check', key: teamKey(t), rev: team.rev }, { op: 'put', key: teamKey(t), value: { ...team, agentIds, updatedAt: now, rev: team.rev + 1 } satisfies Team });
    });
    try {
      await store.commit(ops);
    } catch (err) {
      if (err instanceof CommitConflictError && err.key === agentEmailKey(next.email)) {
        throw this.emailTaken(next.email, (await store.get<string>(err.key)) ?? '(another)');
      }
      throw err;
    }
  }

  private emailTaken(email: string, owner: string): AppError {
    return new AppError('conflict', `email ${email} is already used by agent ${owner}`, [{ path: 'email', message: `${email} is already used by another agent` }]);
  }

  // ---- teams ----

  async listTeams(opts: { limit: number; cursor?: string | undefined }): Promise<Page<Team>> {
    const after = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor);
    if (opts.cursor !== undefined && !after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    const entries = await this.deps.store.indexRange(TEAMS_BY_CREATED_INDEX, { reverse: true, limit: opts.limit + 1, ...(after ? { after } : {}) });
    const docs = await this.readMany<Team>(entries.slice(0, opts.limit).map((e) => teamKey(e.member)));
    const byId = new Map(docs.filter((d): d is Team => !!d).map((d) => [d.id, d]));
    return pageFromEntries(entries, opts.limit, (e) => byId.get(e.member));
  }

  async getTeam(id: string): Promise<Team> {
    const team = isSafeId(id) ? await this.deps.store.get<Team>(teamKey(id)) : undefined;
    if (!team) throw notFound('team', id);
    return team;
  }

  async createTeam(input: unknown): Promise<Team> {
    const data = parseOrThrow(TeamInputSchema, input);
    const now = this.nowIso();
    const team: Team = { id: newId('team', this.random), name: data.name, agentIds: data.agentIds, createdAt: now, updatedAt: now, rev: 1 };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await this.saveTeam(null, team);
        return team;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict('the team’s agents changed concurrently; try again');
  }

  async updateTeam(id: string, patch: unknown): Promise<Team> {
    const data = parseOrThrow(TeamPatchSchema, patch);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const prev = await this.getTeam(id);
      const next: Team = {
        ...prev,
        ...(data.name !== undefined ? { name: data.name } : {}),
        ...(data.agentIds !== undefined ? { agentIds: data.agentIds } : {}),
        updatedAt: this.nowIso(),
        rev: prev.rev + 1,
      };
      try {
        await this.saveTeam(prev, next);
        return next;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`team ${id} changed concurrently; try again`);
  }

  /** Deletes a team and removes it from its agents, in one commit. */
  async deleteTeam(id: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const team = await this.getTeam(id);
      const agents = await this.readMany<Agent>(team.agentIds.map(agentKey));
      const now = this.nowIso();
      const ops: WriteOp[] = [
        { op: 'check', key: teamKey(id), rev: team.rev },
        { op: 'del', key: teamKey(id) },
        { op: 'unindex', index: TEAMS_BY_CREATED_INDEX, member: id },
      ];
      for (const agent of agents) {
        if (!agent || !agent.teams.includes(id)) continue;
        ops.push(
          { op: 'check', key: agentKey(agent.id), rev: agent.rev },
          { op: 'put', key: agentKey(agent.id), value: { ...agent, teams: agent.teams.filter((t) => t !== id), updatedAt: now, rev: agent.rev + 1 } satisfies Agent },
        );
      }
      try {
        await this.deps.store.commit(ops);
        return;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`team ${id} changed concurrently; try again`);
  }

  private async saveTeam(prev: Team | null, next: Team): Promise<void> {
    const dup = firstDuplicate(next.agentIds);
    if (dup >= 0) throw validationError([{ path: `agentIds.${dup}`, message: 'lists an agent twice' }]);
    const prevIds = prev?.agentIds ?? [];
    const added = next.agentIds.filter((a) => !prevIds.includes(a));
    const removed = prevIds.filter((a) => !next.agentIds.includes(a));
    const docs = await this.readMany<Agent>([...added, ...removed].map(agentKey));
    const fields: FieldError[] = [];
    added.forEach((a, i) => {
      const agent = docs[i];
      const path = `agentIds.${next.agentIds.indexOf(a)}`;
      if (!agent) fields.push({ path, message: `unknown agent ${a}` });
      else if (agent.teams.length >= MAX_TEAMS_PER_AGENT && !agent.teams.includes(next.id)) fields.push({ path, message: `agent ${a} is already in ${MAX_TEAMS_PER_AGENT} teams` });
    });
    if (fields.length > 0) throw validationError(fields);
    const ops: WriteOp[] = [
      { op: 'check', key: teamKey(next.id), rev: prev ? prev.rev : null },
      { op: 'put', key: teamKey(next.id), value: next },
    ];
    if (!prev) ops.push({ op: 'index', index: TEAMS_BY_CREATED_INDEX, member: next.id, score: Date.parse(next.createdAt) });
    [...added, ...removed].forEach((a, i) => {
      const agent = docs[i];
      if (!agent) return; // a removed agent that no longer exists
      const teams = added.includes(a) ? [...agent.teams.filter((t) => t !== next.id), next.id] : agent.teams.filter((t) => t !== next.id);
      ops.push(
        { op: 'check', key: agentKey(a), rev: agent.rev },
        { op: 'put', key: agentKey(a), value: { ...agent, teams, updatedAt: next.updatedAt, rev: agent.rev + 1 } satisfies Agent },
      );
    });
    await this.deps.store.commit(ops);
  }

  /**
   * Agent ids and team ids (a queue's `email.agents`) → the distinct ACTIVE agent ids, in the order given
   * (a team's members in its order). Unknown ids are ignored. Bounded: MAX_EXPAND_INPUT in, MAX_EXPANDED out.
   */
  async expandMembers(ids: string[]): Promise<string[]> {
    const input = [...new Set(ids.filter(isSafeId))].slice(0, MAX_EXPAND_INPUT);
    if (input.length === 0) return [];
    const [agentDocs, teamDocs] = await Promise.all([this.readMany<Agent>(input.map(agentKey)), this.readMany<Team>(input.map(teamKey))]);
    const known = new Map<string, Agent>();
    const candidates: string[] = [];
    input.forEach((id, i) => {
      const agent = agentDocs[i];
      if (agent) {
        known.set(id, agent);
        candidates.push(id);
      }
      const team = teamDocs[i];
      if (team) candidates.push(...team.agentIds);
    });
    const distinct = [...new Set(candidates)].slice(0, MAX_EXPANDED);
    const missing = distinct.filter((id) => !known.has(id) && isSafeId(id));
    const more = await this.readMany<Agent>(missing.map(agentKey));
    more.forEach((agent, i) => {
      const id = missing[i];
      if (agent && id) known.set(id, agent);
    });
    return distinct.filter((id) => known.get(id)?.active === true);
  }

  // ---- agent tokens ----

  /** Creates a token for an active agent; the token is in the answer only (stored as its SHA-256). */
  async createToken(agentId: string, input: unknown): Promise<CreatedAgentToken> {
    const data = parseOrThrow(AgentTokenInputSchema, input ?? {});
    const agent = await this.get(agentId);
    if (!agent.active) throw conflict(`agent ${agentId} is deactivated; reactivate it before creating a token`);
    const token = `${AGENT_TOKEN_PREFIX}${base64Url(this.random(new Uint8Array(32)))}`;
    const hash = await sha256Hex(token);
    const record: AgentToken = { id: newId('tok', this.random), agentId, hash, label: data.label, createdAt: this.nowIso(), lastUsedAt: null };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const list = await this.deps.store.get<AgentTokenList>(agentTokenListKey(agentId));
      const tokens = list?.tokens ?? [];
      if (tokens.length >= MAX_TOKENS_PER_AGENT) throw conflict(`agent ${agentId} already has ${MAX_TOKENS_PER_AGENT} tokens; revoke one first`);
      const ops: WriteOp[] = [
        { op: 'check', key: agentTokenListKey(agentId), rev: list ? list.rev : null },
        { op: 'put', key: agentTokenListKey(agentId), value: { rev: (list?.rev ?? 0) + 1, tokens: [...tokens, { id: record.id, hash }] } satisfies AgentTokenList },
        { op: 'check', key: agentTokenKey(hash), rev: null },
        { op: 'put', key: agentTokenKey(hash), value: record },
      ];
      try {
        await this.deps.store.commit(ops);
        return { id: record.id, token, label: record.label, createdAt: record.createdAt };
      } catch (err) {
        if (!(err instanceof CommitConflictError) || err.key !== agentTokenListKey(agentId)) throw err;
      }
    }
    throw conflict(`the tokens of agent ${agentId} changed concurrently; try again`);
  }

  /** The agent's tokens, newest first (never the token itself). */
  async listTokens(agentId: string): Promise<AgentTokenView[]> {
    await this.get(agentId);
    const list = await this.deps.store.get<AgentTokenList>(agentTokenListKey(agentId));
    const entries = list?.tokens ?? [];
    const docs = await this.readMany<AgentToken>(entries.map((t) => agentTokenKey(t.hash)));
    return docs
      .filter((d): d is AgentToken => !!d)
      .reverse()
      .map((d) => ({ id: d.id, label: d.label, createdAt: d.createdAt, lastUsedAt: d.lastUsedAt }));
  }

  /** Revokes a token at once: the next call with it answers 401. */
  async revokeToken(agentId: string, tokenId: string): Promise<void> {
    await this.get(agentId);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const list = await this.deps.store.get<AgentTokenList>(agentTokenListKey(agentId));
      const entry = list?.tokens.find((t) => t.id === tokenId);
      if (!list || !entry) throw notFound('token', tokenId);
      const ops: WriteOp[] = [
        { op: 'check', key: agentTokenListKey(agentId), rev: list.rev },
        { op: 'put', key: agentTokenListKey(agentId), value: { rev: list.rev + 1, tokens: list.tokens.filter((t) => t.id !== tokenId) } satisfies AgentTokenList },
        { op: 'del', key: agentTokenKey(entry.hash) },
      ];
      try {
        await this.deps.store.commit(ops);
        return;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
      }
    }
    throw conflict(`the tokens of agent ${agentId} changed concurrently; try again`);
  }

  /** A bearer token → its agent principal, when the token exists and its agent is active (one hash lookup). */
  async resolveToken(token: string): Promise<Principal | null> {
    if (!AGENT_TOKEN_PATTERN.test(token)) return null;
    const hash = await sha256Hex(token);
    const record = await this.deps.store.get<AgentToken>(agentTokenKey(hash));
    if (!record) return null;
    const agent = await this.deps.store.get<Agent>(agentKey(record.agentId));
    if (!agent?.active) return null;
    await this.touch(record);
    return { role: 'agent', agentId: record.agentId, tokenId: record.id };
  }

  /** Records `lastUsedAt`, at most once per TOKEN_TOUCH_INTERVAL_MS; never fails the call. */
  private async touch(record: AgentToken): Promise<void> {
    const now = this.deps.clock.now();
    if (record.lastUsedAt !== null && now - Date.parse(record.lastUsedAt) < TOKEN_TOUCH_INTERVAL_MS) return;
    try {
      await this.deps.store.update<AgentToken>(agentTokenKey(record.hash), (current) => (current ? { ...current, lastUsedAt: new Date(now).toISOString() } : undefined));
    } catch (err) {
      this.deps.logger?.warn({ err: (err as Error).message }, 'could not record token use');
    }
  }

  // ---- presence ----

  /** PUT /api/agents/:id/presence (source `api`). */
  async setPresence(agentId: string, input: unknown): Promise<PresenceView> {
    const data = parseOrThrow(PresenceInputSchema, input);
    return this.writePresence(agentId, data.online, data.ttlSeconds, 'api');
  }

  /** Presence read from a CRM (connectors that know who is logged in). */
  async setPresenceFromCrm(agentId: string, online: boolean, ttlSeconds: number = PRESENCE_TTL_DEFAULT_S): Promise<PresenceView> {
    const data = parseOrThrow(PresenceInputSchema, { online, ttlSeconds });
    return this.writePresence(agentId, data.online, data.ttlSeconds, 'crm');
  }

  async getPresence(agentId: string): Promise<PresenceView> {
    await this.get(agentId);
    const presence = await this.deps.store.get<Presence>(presenceKey(agentId));
    return this.presenceView(agentId, presence, this.deps.clock.now());
  }

  /** Whether the agent is online now (an expired presence is offline). */
  async isOnline(agentId: string, now: number = this.deps.clock.now()): Promise<boolean> {
    if (!isSafeId(agentId)) return false;
    const presence = await this.deps.store.get<Presence>(presenceKey(agentId));
    return isLive(presence, now) && presence.online;
  }

  /** Online state of many agents at once (getMany, bounded chunks). */
  async onlineMap(agentIds: string[], now: number = this.deps.clock.now()): Promise<Map<string, boolean>> {
    const ids = [...new Set(agentIds)].filter(isSafeId);
    const docs = await this.readMany<Presence>(ids.map(presenceKey));
    const out = new Map<string, boolean>();
    ids.forEach((id, i) => {
      const presence = docs[i];
      out.set(id, isLive(presence, now) && presence.online);
    });
    return out;
  }

  private async writePresence(agentId: string, online: boolean, ttlSeconds: number, source: Presence['source']): Promise<PresenceView> {
    const agent = await this.get(agentId);
    if (online && !agent.active) throw conflict(`agent ${agentId} is deactivated and cannot be online`);
    const now = this.deps.clock.now();
    const ttlMs = ttlSeconds * 1000;
    const next: Presence = { online, until: now + ttlMs, source, updatedAt: now };
    let wasOnline = false;
    await this.deps.store.update<Presence>(
      presenceKey(agentId),
      (current) => {
        wasOnline = isLive(current, now) && current.online;
        return next;
      },
      { ttlMs },
    );
    if (wasOnline !== online) await this.fire('onPresenceChange', () => this.deps.onPresenceChange?.(agentId, online));
    return this.presenceView(agentId, next, now);
  }

  private presenceView(agentId: string, presence: Presence | undefined, now: number): PresenceView {
    if (!isLive(presence, now)) return { agentId, online: false, until: null, source: null, updatedAt: null };
    return { agentId, online: presence.online, until: new Date(presence.until).toISOString(), source: presence.source, updatedAt: new Date(presence.updatedAt).toISOString() };
  }
}

function isLive(presence: Presence | undefined, now: number): presence is Presence {
  return !!presence && typeof presence.until === 'number' && presence.until > now;
}

/** Agent tokens for AuthService (admin tokens are checked first and keep precedence). */
export class AgentTokenResolver implements TokenResolver {
  constructor(private readonly agents: AgentsService) {}

  resolve(token: string): Promise<Principal | null> {
    return this.agents.resolveToken(token);
  }
}

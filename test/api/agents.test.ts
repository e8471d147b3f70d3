// Agents, teams, agent tokens and presence through the HTTP API, embedded and on Redis [R-QUE-3, R-ASG-4, R-API-1, R-API-2, SPEC §11a/§11b].
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentsService } from '../../src/app/agents-service.js';
import type { SqliteStore } from '../../src/adapters/store/sqlite-store.js';
import type { Clock } from '../../src/core/ports.js';
import { startRedis, type RedisServerHandle } from '../helpers/redis-server.js';
import { startTestService, type TestService } from '../helpers/service.js';

class FakeClock implements Clock {
  t = Date.now();
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let n = 0;
const agentBody = (over: Record<string, unknown> = {}) => {
  n++;
  return { name: `Agent ${n} Smith`, email: `Agent${n}@Example.COM`, company: 'Shop', ...over };
};

describe('agents and teams API (embedded store)', () => {
  let svc: TestService;
  const clock = new FakeClock();
  beforeAll(async () => {
    svc = await startTestService({ clock });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  async function newAgent(over: Record<string, unknown> = {}) {
    const res = await svc.call('POST', '/api/agents', agentBody(over));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; email: string; teams: string[] };
  }
  async function newToken(agentId: string, label?: string) {
    const res = await svc.call('POST', `/api/agents/${agentId}/tokens`, label === undefined ? undefined : { label });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; token: string; label: string; createdAt: string };
  }

  describe('agents CRUD', () => {
    it('creates an agent: email lowercased, firstName from the name, active by default', async () => {
      const res = await svc.call('POST', '/api/agents', { name: 'Ann  Lee', email: 'Ann.Lee@Example.com', company: 'Shop' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: 'Ann  Lee', firstName: 'Ann', email: 'ann.lee@example.com', company: 'Shop', teams: [], active: true });
      expect(res.body.id).toMatch(/^agt_[0-9a-z]{16}$/);
      expect(res.body.rev).toBeUndefined();
      const got = await svc.call('GET', `/api/agents/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
    });

    it('refuses bad input with 400 naming each field', async () => {
      const res = await svc.call('POST', '/api/agents', { name: '', email: 'not-an-email', teams: ['ok', 'bad id!'], extra: 1 });
      expect(res.status).toBe(400);
      const paths = res.body.error.fields.map((f: { path: string }) => f.path);
      expect(paths).toEqual(expect.arrayContaining(['name', 'email', 'teams.1', 'extra']));
      const lineBreak = await svc.call('POST', '/api/agents', { name: 'A\r\nBcc: x', email: 'a@b.example' });
      expect(lineBreak.status).toBe(400);
      expect(lineBreak.body.error.fields[0].path).toBe('name');
      const unknownTeam = await svc.call('POST', '/api/agents', agentBody({ teams: ['team_nope'] }));
      expect(unknownTeam.status).toBe(400);
      expect(unknownTeam.body.error.fields).toEqual([{ path: 'teams.0', message: expect.stringContaining('unknown team') }]);
      const patch = await svc.call('PATCH', `/api/agents/${(await newAgent()).id}`, { active: 'no' });
      expect(patch.status).toBe(400);
      expect(patch.body.error.fields[0].path).toBe('active');
    });

    it('answers 409 naming `email` for a duplicate email (any case), on create and on patch', async () => {
      const a = await newAgent({ email: 'dup@example.com' });
      const again = await svc.call('POST', '/api/agents', agentBody({ email: 'DUP@example.com' }));
      expect(again.status).toBe(409);
      expect(again.body.error.fields).toEqual([{ path: 'email', message: expect.any(String) }]);
      const b = await newAgent();
      const patch = await svc.call('PATCH', `/api/agents/${b.id}`, { email: 'Dup@Example.com' });
      expect(patch.status).toBe(409);
      expect(patch.body.error.fields[0].path).toBe('email');
      // Changing an email frees the old one.
      expect((await svc.call('PATCH', `/api/agents/${a.id}`, { email: 'dup2@example.com' })).status).toBe(200);
      expect((await svc.call('PATCH', `/api/agents/${b.id}`, { email: 'dup@example.com' })).body.email).toBe('dup@example.com');
    });

    it('concurrent writes: one email claim wins; concurrent joins of one team all land', async () => {
      const results = await Promise.all(Array.from({ length: 5 }, () => svc.call('POST', '/api/agents', agentBody({ email: 'race@example.com' }))));
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
      const team = (await svc.call('POST', '/api/teams', { name: 'Race' })).body;
      const members = await Promise.all(Array.from({ length: 4 }, () => newAgent()));
      const joins = await Promise.all(members.map((m) => svc.call('PATCH', `/api/agents/${m.id}`, { teams: [team.id] })));
      expect(joins.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect([...(await svc.call('GET', `/api/teams/${team.id}`)).body.agentIds].sort()).toEqual(members.map((m) => m.id).sort());
    });

    it('patches partially and answers 404 for an unknown agent', async () => {
      const a = await newAgent();
      const res = await svc.call('PATCH', `/api/agents/${a.id}`, { firstName: 'Annie', company: 'Other' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ firstName: 'Annie', company: 'Other', email: a.email });
      expect((await svc.call('PATCH', '/api/agents/agt_nope', { company: 'x' })).status).toBe(404);
      expect((await svc.call('GET', '/api/agents/agt_nope')).status).toBe(404);
      expect((await svc.call('DELETE', '/api/agents/agt_nope')).status).toBe(404);
    });

    it('DELETE deactivates (soft): kept, hidden from lists unless includeInactive=true', async () => {
      const a = await newAgent();
      expect((await svc.call('DELETE', `/api/agents/${a.id}`)).status).toBe(204);
      const got = await svc.call('GET', `/api/agents/${a.id}`);
      expect(got.status).toBe(200);
      expect(got.body.active).toBe(false);
      const listed = (await svc.call('GET', '/api/agents?limit=1000')).body.items.map((x: { id: string }) => x.id);
      expect(listed).not.toContain(a.id);
      const all = (await svc.call('GET', '/api/agents?limit=1000&includeInactive=true')).body.items.map((x: { id: string }) => x.id);
      expect(all).toContain(a.id);
      expect((await svc.call('DELETE', `/api/agents/${a.id}`)).status).toBe(204); // idempotent
      // Reactivation brings it back.
      expect((await svc.call('PATCH', `/api/agents/${a.id}`, { active: true })).body.active).toBe(true);
      expect((await svc.call('GET', '/api/agents?limit=1000')).body.items.map((x: { id: string }) => x.id)).toContain(a.id);
    });

    it('lists newest first with an opaque cursor, each agent once', async () => {
      for (let i = 0; i < 3; i++) await newAgent();
      const first = await svc.call('GET', '/api/agents?limit=2');
      expect(first.status).toBe(200);
      expect(first.body.items).toHaveLength(2);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { items: { id: string; createdAt: string }[]; nextCursor: string | null } } = await svc.call('GET', `/api/agents?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...page.body.items.map((x) => x.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.length).toBe((await svc.call('GET', '/api/agents?limit=1000')).body.items.length);
      expect((await svc.call('GET', '/api/agents?cursor=garbage!')).status).toBe(400);
      expect((await svc.call('GET', '/api/agents?includeInactive=maybe')).status).toBe(400);
    });
  });

  describe('teams', () => {
    it('keeps membership consistent both ways (team edits, agent edits, team delete)', async () => {
      const a = await newAgent();
      const b = await newAgent();
      const team = await svc.call('POST', '/api/teams', { name: 'Billing', agentIds: [a.id] });
      expect(team.status).toBe(201);
      expect(team.body).toMatchObject({ name: 'Billing', agentIds: [a.id] });
      const teamId: string = team.body.id;
      expect(teamId).toMatch(/^team_/);
      expect((await svc.call('GET', `/api/agents/${a.id}`)).body.teams).toEqual([teamId]);

      // Agent side: b joins through its own `teams`.
      expect((await svc.call('PATCH', `/api/agents/${b.id}`, { teams: [teamId] })).status).toBe(200);
      expect((await svc.call('GET', `/api/teams/${teamId}`)).body.agentIds).toEqual([a.id, b.id]);

      // Team side: a leaves.
      const patched = await svc.call('PATCH', `/api/teams/${teamId}`, { agentIds: [b.id] });
      expect(patched.status).toBe(200);
      expect((await svc.call('GET', `/api/agents/${a.id}`)).body.teams).toEqual([]);
      expect((await svc.call('GET', `/api/agents/${b.id}`)).body.teams).toEqual([teamId]);

      // Agent side: b leaves.
      expect((await svc.call('PATCH', `/api/agents/${b.id}`, { teams: [] })).status).toBe(200);
      expect((await svc.call('GET', `/api/teams/${teamId}`)).body.agentIds).toEqual([]);

      // Delete removes the team from its agents.
      await svc.call('PATCH', `/api/teams/${teamId}`, { agentIds: [a.id, b.id] });
      expect((await svc.call('DELETE', `/api/teams/${teamId}`)).status).toBe(204);
      expect((await svc.call('GET', `/api/teams/${teamId}`)).status).toBe(404);
      expect((await svc.call('GET', `/api/agents/${a.id}`)).body.teams).toEqual([]);
      expect((await svc.call('GET', `/api/agents/${b.id}`)).body.teams).toEqual([]);
      expect((await svc.call('GET', '/api/teams?limit=1000')).body.items.map((t: { id: string }) => t.id)).not.toContain(teamId);
    });

    it('refuses unknown or repeated agents with 400 naming agentIds.N', async () => {
      const a = await newAgent();
      const res = await svc.call('POST', '/api/teams', { name: 'X', agentIds: [a.id, 'agt_nope'] });
      expect(res.status).toBe(400);
      expect(res.body.error.fields).toEqual([{ path: 'agentIds.1', message: expect.stringContaining('unknown agent') }]);
      const twice = await svc.call('POST', '/api/teams', { name: 'X', agentIds: [a.id, a.id] });
      expect(twice.status).toBe(400);
      expect(twice.body.error.fields[0].path).toBe('agentIds.1');
      expect((await svc.call('POST', '/api/teams', { agentIds: [] })).body.error.fields[0].path).toBe('name');
      expect((await svc.call('PATCH', '/api/teams/team_nope', { name: 'Y' })).status).toBe(404);
    });

    it('expandMembers: agents and teams → distinct active agent ids', async () => {
      const a = await newAgent();
      const b = await newAgent();
      const c = await newAgent();
      const team = (await svc.call('POST', '/api/teams', { name: 'Sales', agentIds: [b.id, c.id, a.id] })).body;
      await svc.call('DELETE', `/api/agents/${c.id}`);
      const ids = await svc.services.agents.expandMembers([a.id, team.id, 'agt_unknown', 'team_unknown']);
      expect(ids).toEqual([a.id, b.id]);
      expect(await svc.services.agents.expandMembers([])).toEqual([]);
      // The deactivated agent stays a member (history), but gets nothing.
      expect((await svc.call('GET', `/api/teams/${team.id}`)).body.agentIds).toEqual([b.id, c.id, a.id]);
    });
  });

  describe('agent tokens', () => {
    it('shows the token once, stores only its hash, and lists without it', async () => {
      const a = await newAgent();
      const created = await newToken(a.id, 'laptop');
      expect(created.token).toMatch(/^eca_[A-Za-z0-9_-]{43}$/);
      expect(created).toMatchObject({ id: expect.stringMatching(/^tok_/), label: 'laptop', createdAt: expect.any(String) });
      const list = await svc.call('GET', `/api/agents/${a.id}/tokens`);
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ items: [{ id: created.id, label: 'laptop', createdAt: created.createdAt, lastUsedAt: null }], nextCursor: null });
      expect(JSON.stringify(list.body)).not.toContain(created.token);

      // Raw store: the hash is the key, the token text is nowhere.
      const db = (svc.services.store as SqliteStore).db;
      const rows = db.prepare('SELECT key, value FROM kv').all() as { key: string; value: string }[];
      expect(rows.some((r) => r.key === `ec:agent-token:${sha256(created.token)}`)).toBe(true);
      expect(rows.filter((r) => r.key.includes(created.token.slice(4)) || r.value.includes(created.token.slice(4)))).toEqual([]);

      // Without a body the label is empty.
      expect((await newToken(a.id)).label).toBe('');
    });

    it('works on agent routes: reads yes, admin writes no, own presence yes, another agent’s no', async () => {
      const a = await newAgent();
      const other = await newAgent();
      const { token, id: tokenId } = await newToken(a.id);
      expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(200);
      expect((await svc.call('GET', `/api/agents/${other.id}`, undefined, token)).status).toBe(200);
      expect((await svc.call('GET', '/api/teams', undefined, token)).status).toBe(200);
      expect((await svc.call('PUT', '/api/settings', { emailChannel: { enabled: true } }, token)).status).toBe(403);
      expect((await svc.call('POST', '/api/agents', agentBody(), token)).status).toBe(403);
      expect((await svc.call('PATCH', `/api/agents/${a.id}`, { company: 'Mine' }, token)).status).toBe(403);
      expect((await svc.call('DELETE', `/api/agents/${other.id}`, undefined, token)).status).toBe(403);
      expect((await svc.call('POST', '/api/teams', { name: 'T' }, token)).status).toBe(403);
      const own = await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true }, token);
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ agentId: a.id, online: true, source: 'api' });
      const others = await svc.call('PUT', `/api/agents/${other.id}/presence`, { online: true }, token);
      expect(others.status).toBe(403);
      expect(others.body.error.code).toBe('forbidden');
      expect((await svc.call('GET', `/api/agents/${other.id}/presence`, undefined, token)).status).toBe(200);
      // Its own tokens: yes; another agent's: no.
      expect((await svc.call('GET', `/api/agents/${a.id}/tokens`, undefined, token)).status).toBe(200);
      expect((await svc.call('POST', `/api/agents/${other.id}/tokens`, {}, token)).status).toBe(403);
      expect((await svc.call('GET', `/api/agents/${other.id}/tokens`, undefined, token)).status).toBe(403);
      // lastUsedAt is recorded (at most once a minute).
      const used = (await svc.call('GET', `/api/agents/${a.id}/tokens`)).body.items.find((t: { id: string }) => t.id === tokenId);
      expect(used.lastUsedAt).toBe(new Date(clock.now()).toISOString());
      clock.advance(30_000);
      await svc.call('GET', '/api/agents', undefined, token);
      expect((await svc.call('GET', `/api/agents/${a.id}/tokens`)).body.items[0].lastUsedAt).toBe(used.lastUsedAt);
      clock.advance(31_000);
      await svc.call('GET', '/api/agents', undefined, token);
      expect((await svc.call('GET', `/api/agents/${a.id}/tokens`)).body.items[0].lastUsedAt).toBe(new Date(clock.now()).toISOString());
    });

    it('a revoked token answers 401; an unknown token id 404', async () => {
      const a = await newAgent();
      const keep = await newToken(a.id, 'keep');
      const gone = await newToken(a.id, 'gone');
      expect((await svc.call('DELETE', `/api/agents/${a.id}/tokens/${gone.id}`)).status).toBe(204);
      const res = await svc.call('GET', '/api/agents', undefined, gone.token);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
      expect((await svc.call('GET', '/api/agents', undefined, keep.token)).status).toBe(200);
      expect((await svc.call('GET', `/api/agents/${a.id}/tokens`)).body.items.map((t: { id: string }) => t.id)).toEqual([keep.id]);
      expect((await svc.call('DELETE', `/api/agents/${a.id}/tokens/${gone.id}`)).status).toBe(404);
      expect(await svc.services.store.get(`agent-token:${sha256(gone.token)}`)).toBeUndefined();
      // An agent may revoke its own token (and then it is gone).
      expect((await svc.call('DELETE', `/api/agents/${a.id}/tokens/${keep.id}`, undefined, keep.token)).status).toBe(204);
      expect((await svc.call('GET', '/api/agents', undefined, keep.token)).status).toBe(401);
    });

    it("a deactivated agent's token answers 401 (and works again after reactivation)", async () => {
      const a = await newAgent();
      const { token } = await newToken(a.id);
      await svc.call('PATCH', `/api/agents/${a.id}`, { active: false });
      expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(401);
      expect((await svc.call('POST', `/api/agents/${a.id}/tokens`, {})).status).toBe(409);
      await svc.call('PATCH', `/api/agents/${a.id}`, { active: true });
      expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(200);
    });

    it('refuses a token-shaped guess and a bad label', async () => {
      expect((await svc.call('GET', '/api/agents', undefined, `eca_${'A'.repeat(43)}`)).status).toBe(401);
      const a = await newAgent();
      const res = await svc.call('POST', `/api/agents/${a.id}/tokens`, { label: 'x'.repeat(101) });
      expect(res.status).toBe(400);
      expect(res.body.error.fields[0].path).toBe('label');
    });
  });

  describe('presence', () => {
    it('defaults to offline, validates ttlSeconds, and expires after the TTL', async () => {
      const a = await newAgent();
      expect((await svc.call('GET', `/api/agents/${a.id}/presence`)).body).toEqual({ agentId: a.id, online: false, until: null, source: null, updatedAt: null });
      for (const ttlSeconds of [29, 86_401, 1.5]) {
        const bad = await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true, ttlSeconds });
        expect(bad.status).toBe(400);
        expect(bad.body.error.fields[0].path).toBe('ttlSeconds');
      }
      expect((await svc.call('PUT', `/api/agents/${a.id}/presence`, {})).body.error.fields[0].path).toBe('online');
      expect((await svc.call('PUT', '/api/agents/agt_nope/presence', { online: true })).status).toBe(404);

      const set = await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true, ttlSeconds: 30 });
      expect(set.status).toBe(200);
      expect(set.body).toEqual({ agentId: a.id, online: true, until: new Date(clock.now() + 30_000).toISOString(), source: 'api', updatedAt: new Date(clock.now()).toISOString() });
      const row = (svc.services.store as SqliteStore).db.prepare('SELECT expires_at FROM kv WHERE key = ?').get(`ec:presence:${a.id}`) as { expires_at: number };
      expect(row.expires_at).toBe(clock.now() + 30_000);
      expect(await svc.services.agents.isOnline(a.id)).toBe(true);
      clock.advance(29_000);
      expect((await svc.call('GET', `/api/agents/${a.id}/presence`)).body.online).toBe(true);
      clock.advance(1_500);
      expect((await svc.call('GET', `/api/agents/${a.id}/presence`)).body).toMatchObject({ online: false, until: null });
      expect(await svc.services.agents.isOnline(a.id)).toBe(false);
      // The default TTL is 300 s.
      await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true });
      expect((await svc.call('GET', `/api/agents/${a.id}/presence`)).body.until).toBe(new Date(clock.now() + 300_000).toISOString());
      await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: false });
      expect(await svc.services.agents.isOnline(a.id)).toBe(false);
    });

    it('onlineMap reads many at once; deactivation clears presence', async () => {
      const a = await newAgent();
      const b = await newAgent();
      await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true });
      const map = await svc.services.agents.onlineMap([a.id, b.id, 'agt_nope']);
      expect(Object.fromEntries(map)).toEqual({ [a.id]: true, [b.id]: false, agt_nope: false });
      await svc.call('DELETE', `/api/agents/${a.id}`);
      expect(await svc.services.agents.isOnline(a.id)).toBe(false);
      expect((await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true })).status).toBe(409);
    });
  });

  describe('hooks', () => {
    it('calls onAgentDeactivated once per deactivation and onPresenceChange on changes only', async () => {
      const deactivated: string[] = [];
      const changes: [string, boolean][] = [];
      const agents = new AgentsService({
        store: svc.services.store,
        clock,
        onAgentDeactivated: (id) => {
          deactivated.push(id);
        },
        onPresenceChange: async (id, online) => {
          changes.push([id, online]);
        },
      });
      const a = await agents.create(agentBody());
      const b = await agents.create(agentBody());
      await agents.update(a.id, { company: 'x' });
      await agents.update(a.id, { active: false });
      await agents.deactivate(a.id);
      await agents.deactivate(b.id);
      expect(deactivated).toEqual([a.id, b.id]);

      const c = await agents.create(agentBody());
      await agents.setPresence(c.id, { online: true, ttlSeconds: 30 });
      await agents.setPresence(c.id, { online: true, ttlSeconds: 30 }); // heartbeat: no change
      await agents.setPresence(c.id, { online: false });
      clock.advance(1000);
      await agents.setPresenceFromCrm(c.id, true, 30);
      clock.advance(31_000); // expired: offline by itself, no hook
      await agents.setPresence(c.id, { online: true, ttlSeconds: 30 }); // back online
      expect(changes).toEqual([
        [c.id, true],
        [c.id, false],
        [c.id, true],
        [c.id, true],
      ]);
      expect((await agents.getPresence(c.id)).source).toBe('api');
    });

    it('a failing hook does not fail the write', async () => {
      const agents = new AgentsService({
        store: svc.services.store,
        clock,
        onAgentDeactivated: () => {
          throw new Error('engine down');
        },
      });
      const a = await agents.create(agentBody());
      expect((await agents.update(a.id, { active: false })).active).toBe(false);
    });
  });
});

describe('agent tokens and presence on Redis', () => {
  let redis: RedisServerHandle;
  let svc: TestService;
  const clock = new FakeClock();
  beforeAll(async () => {
    redis = await startRedis();
    svc = await startTestService({ redisUrl: `${redis.url}/3`, clock });
  });
  afterAll(async () => {
    await svc?.stop();
    await redis?.stop();
  });

  it('tokens: hashed at rest, work, revoke at once; deactivation refuses them', async () => {
    const a = (await svc.call('POST', '/api/agents', agentBody())).body;
    const created = await svc.call('POST', `/api/agents/${a.id}/tokens`, { label: 'redis' });
    expect(created.status).toBe(201);
    const token: string = created.body.token;
    expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(200);
    expect((await svc.call('PUT', '/api/settings', {}, token)).status).toBe(403);

    const client = createClient({ url: `${redis.url}/3` });
    await client.connect();
    try {
      const keys = await client.keys('*');
      expect(keys).toContain(`ec::agent-token:${sha256(token)}`);
      for (const key of keys) {
        expect(key).not.toContain(token.slice(4));
        if ((await client.type(key)) === 'string') expect(await client.get(key)).not.toContain(token.slice(4));
      }
    } finally {
      await client.quit();
    }

    await svc.call('PATCH', `/api/agents/${a.id}`, { active: false });
    expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(401);
    await svc.call('PATCH', `/api/agents/${a.id}`, { active: true });
    expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(200);
    expect((await svc.call('DELETE', `/api/agents/${a.id}/tokens/${created.body.id}`)).status).toBe(204);
    expect((await svc.call('GET', '/api/agents', undefined, token)).status).toBe(401);
  });

  it('presence: stored with a Redis TTL; expired (by `until`) reads as offline', async () => {
    const a = (await svc.call('POST', '/api/agents', agentBody())).body;
    const { token } = (await svc.call('POST', `/api/agents/${a.id}/tokens`, {})).body;
    expect((await svc.call('PUT', `/api/agents/${a.id}/presence`, { online: true, ttlSeconds: 30 }, token)).status).toBe(200);
    const client = createClient({ url: `${redis.url}/3` });
    await client.connect();
    try {
      const pttl = await client.pTTL(`ec::presence:${a.id}`);
      expect(pttl).toBeGreaterThan(25_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
    } finally {
      await client.quit();
    }
    expect(Object.fromEntries(await svc.services.agents.onlineMap([a.id]))).toEqual({ [a.id]: true });
    clock.advance(31_000);
    expect(await svc.services.agents.isOnline(a.id)).toBe(false);
    expect((await svc.call('GET', `/api/agents/${a.id}/presence`, undefined, token)).body.online).toBe(false);
  });
});

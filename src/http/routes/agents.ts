// /api/agents (R-QUE-3, R-ASG-4, SPEC §11a): agents CRUD (soft delete), agent tokens and presence; agents may read, admins write.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AgentInputSchema, AgentPatchSchema, AgentTokenInputSchema, PresenceInputSchema, type AgentsService } from '../../app/agents-service.js';
import type { Agent } from '../../core/agent.js';
import type { Principal } from '../../core/auth.js';
import { AppError } from '../../core/errors.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, IdParamSchema, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const AgentSchema = z
  .object({
    id: z.string().openapi({ example: 'agt_7k2m9qx4tbz3h8w1' }),
    name: z.string().openapi({ example: 'Ann Smith' }),
    firstName: z.string().openapi({ example: 'Ann' }),
    email: z.string().openapi({ example: 'ann@example.com' }),
    company: z.string(),
    teams: z.array(z.string()).openapi({ description: 'Team ids' }),
    active: z.boolean().openapi({ description: 'false = deactivated (kept so that session history keeps the name)' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Agent');

const AgentTokenSchema = z
  .object({ id: z.string().openapi({ example: 'tok_7k2m9qx4tbz3h8w1' }), label: z.string(), createdAt: z.string(), lastUsedAt: z.string().nullable() })
  .openapi('AgentToken');

const CreatedAgentTokenSchema = z
  .object({
    id: z.string(),
    token: z.string().openapi({ example: 'eca_J1m4…', description: 'Shown once: only its SHA-256 is stored' }),
    label: z.string(),
    createdAt: z.string(),
  })
  .openapi('CreatedAgentToken');

const PresenceSchema = z
  .object({
    agentId: z.string(),
    online: z.boolean().openapi({ description: 'Effective state: false when never set, set offline, or expired' }),
    until: z.string().nullable().openapi({ description: 'When this presence expires unless set again; null when there is none' }),
    source: z.enum(['api', 'crm']).nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi('Presence');

const AgentListQuerySchema = ListQuerySchema.extend({
  includeInactive: z
    .enum(['true', 'false'])
    .optional()
    .openapi({ param: { name: 'includeInactive', in: 'query' }, description: '`true` lists deactivated agents too' }),
});

const TokenParamSchema = IdParamSchema.extend({
  tokenId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/)
    .openapi({ param: { name: 'tokenId', in: 'path' } }),
});

const view = (a: Agent) => ({
  id: a.id,
  name: a.name,
  firstName: a.firstName,
  email: a.email,
  company: a.company,
  teams: a.teams,
  active: a.active,
  createdAt: a.createdAt,
  updatedAt: a.updatedAt,
});

/** Admin, or the agent itself (its own presence and tokens). */
function assertSelfOrAdmin(principal: Principal, agentId: string): void {
  if (principal.role === 'agent' && principal.agentId !== agentId) throw new AppError('forbidden', 'An agent token can only act for its own agent');
}

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });
const one = { description: 'The agent', content: json(AgentSchema) };
const WRITE_NOTE = 'Needs an admin token (agent tokens may read agents and teams).';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/api/agents',
    tags: ['agents'],
    summary: 'Agents, newest first (active ones unless includeInactive=true)',
    security,
    request: { query: AgentListQuerySchema },
    responses: { 200: { description: 'A page of agents', content: json(listOf(AgentSchema, 'AgentList')) }, ...errorResponses },
  }),
  create: createRoute({
    method: 'post',
    path: '/api/agents',
    tags: ['agents'],
    summary: 'Create an agent',
    description: `${WRITE_NOTE} \`email\` is lowercased and unique among agents (409 naming \`email\`); \`teams\` must name existing teams (400 naming \`teams.N\`).`,
    security,
    request: { body: { required: true, content: json(AgentInputSchema) } },
    responses: { 201: { description: 'Created', content: json(AgentSchema) }, ...errorResponses, ...conflictResponse },
  }),
  get: createRoute({
    method: 'get',
    path: '/api/agents/{id}',
    tags: ['agents'],
    summary: 'One agent (deactivated ones too)',
    security,
    request: { params: IdParamSchema },
    responses: { 200: one, ...errorResponses, ...notFoundResponse },
  }),
  patch: createRoute({
    method: 'patch',
    path: '/api/agents/{id}',
    tags: ['agents'],
    summary: 'Change an agent (partial); `active: false` deactivates, `active: true` reactivates',
    description: `${WRITE_NOTE} Deactivating unassigns the agent's open sessions (they are assigned again where auto-assignment is on) and clears its presence; its tokens stop working until it is reactivated.`,
    security,
    request: { params: IdParamSchema, body: { required: true, content: json(AgentPatchSchema) } },
    responses: { 200: one, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  delete: createRoute({
    method: 'delete',
    path: '/api/agents/{id}',
    tags: ['agents'],
    summary: 'Deactivate an agent (soft delete: kept for history, hidden from lists)',
    description: WRITE_NOTE,
    security,
    request: { params: IdParamSchema },
    responses: { 204: { description: 'Deactivated' }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  createToken: createRoute({
    method: 'post',
    path: '/api/agents/{id}/tokens',
    tags: ['agents'],
    summary: 'Create an agent token (shown once)',
    description: `Admin token, or the agent's own token. The token (\`eca_…\`) is in this answer only; the service keeps its SHA-256. At most 20 tokens per agent (409).`,
    security,
    request: { params: IdParamSchema, body: { required: false, content: json(AgentTokenInputSchema) } },
    responses: { 201: { description: 'Created; keep the token now', content: json(CreatedAgentTokenSchema) }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  listTokens: createRoute({
    method: 'get',
    path: '/api/agents/{id}/tokens',
    tags: ['agents'],
    summary: "An agent's tokens, newest first (never the token itself)",
    description: "Admin token, or the agent's own token.",
    security,
    request: { params: IdParamSchema },
    responses: { 200: { description: 'All the agent’s tokens (nextCursor is always null)', content: json(listOf(AgentTokenSchema, 'AgentTokenList')) }, ...errorResponses, ...notFoundResponse },
  }),
  revokeToken: createRoute({
    method: 'delete',
    path: '/api/agents/{id}/tokens/{tokenId}',
    tags: ['agents'],
    summary: 'Revoke an agent token (at once)',
    description: "Admin token, or the agent's own token.",
    security,
    request: { params: TokenParamSchema },
    responses: { 204: { description: 'Revoked' }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  putPresence: createRoute({
    method: 'put',
    path: '/api/agents/{id}/presence',
    tags: ['agents'],
    summary: 'Set presence (logged in or not); expires after ttlSeconds unless set again',
    description: "Admin token, or the agent's own token (another agent's presence: 403). Used by auto-assignment's `loggedInOnly` (R-ASG-4); an agent coming online gets waiting sessions.",
    security,
    request: { params: IdParamSchema, body: { required: true, content: json(PresenceInputSchema) } },
    responses: { 200: { description: 'The presence now', content: json(PresenceSchema) }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  getPresence: createRoute({
    method: 'get',
    path: '/api/agents/{id}/presence',
    tags: ['agents'],
    summary: "An agent's presence",
    security,
    request: { params: IdParamSchema },
    responses: { 200: { description: 'The presence now', content: json(PresenceSchema) }, ...errorResponses, ...notFoundResponse },
  }),
};

export function agentRoutes(app: OpenAPIHono<AuthEnv>, agents: AgentsService): void {
  app.openapi(routes.list, async (c) => {
    const q = c.req.valid('query');
    const page = await agents.list({ limit: q.limit, cursor: q.cursor, includeInactive: q.includeInactive === 'true' });
    return c.json({ items: page.items.map(view), nextCursor: page.nextCursor }, 200);
  });
  app.openapi(routes.create, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await agents.create(c.req.valid('json'))), 201);
  });
  app.openapi(routes.get, async (c) => c.json(view(await agents.get(c.req.valid('param').id)), 200));
  app.openapi(routes.patch, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await agents.update(c.req.valid('param').id, c.req.valid('json'))), 200);
  });
  app.openapi(routes.delete, async (c) => {
    assertAdmin(c.get('principal'));
    await agents.deactivate(c.req.valid('param').id);
    return c.body(null, 204);
  });
  app.openapi(routes.createToken, async (c) => {
    const { id } = c.req.valid('param');
    assertSelfOrAdmin(c.get('principal'), id);
    return c.json(await agents.createToken(id, c.req.valid('json')), 201);
  });
  app.openapi(routes.listTokens, async (c) => {
    const { id } = c.req.valid('param');
    assertSelfOrAdmin(c.get('principal'), id);
    return c.json({ items: await agents.listTokens(id), nextCursor: null }, 200);
  });
  app.openapi(routes.revokeToken, async (c) => {
    const { id, tokenId } = c.req.valid('param');
    assertSelfOrAdmin(c.get('principal'), id);
    await agents.revokeToken(id, tokenId);
    return c.body(null, 204);
  });
  app.openapi(routes.putPresence, async (c) => {
    const { id } = c.req.valid('param');
    assertSelfOrAdmin(c.get('principal'), id);
    return c.json(await agents.setPresence(id, c.req.valid('json')), 200);
  });
  app.openapi(routes.getPresence, async (c) => c.json(await agents.getPresence(c.req.valid('param').id), 200));
}

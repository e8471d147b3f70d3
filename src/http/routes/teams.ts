// /api/teams (R-QUE-3): teams of agents that a queue can name in `email.agents`; agents may read, admins write.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { TeamInputSchema, TeamPatchSchema, type AgentsService } from '../../app/agents-service.js';
import type { Team } from '../../core/agent.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, IdParamSchema, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const TeamSchema = z
  .object({
    id: z.string().openapi({ example: 'team_7k2m9qx4tbz3h8w1' }),
    name: z.string().openapi({ example: 'Billing' }),
    agentIds: z.array(z.string()).openapi({ description: 'Agent ids (deactivated agents stay members but get no sessions)' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Team');

const view = (t: Team) => ({ id: t.id, name: t.name, agentIds: t.agentIds, createdAt: t.createdAt, updatedAt: t.updatedAt });

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });
const one = { description: 'The team', content: json(TeamSchema) };
const WRITE_NOTE =
  'Needs an admin token. `agentIds` must name existing agents (400 naming `agentIds.N`); the agents’ `teams` follow in the same write.';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/api/teams',
    tags: ['teams'],
    summary: 'Teams, newest first',
    security,
    request: { query: ListQuerySchema },
    responses: { 200: { description: 'A page of teams', content: json(listOf(TeamSchema, 'TeamList')) }, ...errorResponses },
  }),
  create: createRoute({
    method: 'post',
    path: '/api/teams',
    tags: ['teams'],
    summary: 'Create a team',
    description: WRITE_NOTE,
    security,
    request: { body: { required: true, content: json(TeamInputSchema) } },
    responses: { 201: { description: 'Created', content: json(TeamSchema) }, ...errorResponses, ...conflictResponse },
  }),
  get: createRoute({
    method: 'get',
    path: '/api/teams/{id}',
    tags: ['teams'],
    summary: 'One team',
    security,
    request: { params: IdParamSchema },
    responses: { 200: one, ...errorResponses, ...notFoundResponse },
  }),
  patch: createRoute({
    method: 'patch',
    path: '/api/teams/{id}',
    tags: ['teams'],
    summary: 'Change a team (partial; `agentIds` replaces the members)',
    description: WRITE_NOTE,
    security,
    request: { params: IdParamSchema, body: { required: true, content: json(TeamPatchSchema) } },
    responses: { 200: one, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
  delete: createRoute({
    method: 'delete',
    path: '/api/teams/{id}',
    tags: ['teams'],
    summary: 'Delete a team (it is removed from its agents)',
    description: 'Needs an admin token. Queues that name the team simply stop getting its members.',
    security,
    request: { params: IdParamSchema },
    responses: { 204: { description: 'Deleted' }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
  }),
};

export function teamRoutes(app: OpenAPIHono<AuthEnv>, agents: AgentsService): void {
  app.openapi(routes.list, async (c) => {
    const q = c.req.valid('query');
    const page = await agents.listTeams({ limit: q.limit, cursor: q.cursor });
    return c.json({ items: page.items.map(view), nextCursor: page.nextCursor }, 200);
  });
  app.openapi(routes.create, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await agents.createTeam(c.req.valid('json'))), 201);
  });
  app.openapi(routes.get, async (c) => c.json(view(await agents.getTeam(c.req.valid('param').id)), 200));
  app.openapi(routes.patch, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await agents.updateTeam(c.req.valid('param').id, c.req.valid('json'))), 200);
  });
  app.openapi(routes.delete, async (c) => {
    assertAdmin(c.get('principal'));
    await agents.deleteTeam(c.req.valid('param').id);
    return c.body(null, 204);
  });
}

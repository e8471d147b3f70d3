// Queues API (R-QUE-1..3; the queues/assignment issue extends it): CRUD, one account per queue.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { QueueInputSchema, QueuePatchSchema, type Queue, type QueuesService } from '../../app/queues-service.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, IdParamSchema, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const QueueSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    language: z.string().openapi({ example: 'fr' }),
    email: z.object({
      enabled: z.boolean(),
      addresses: z.array(z.string()).openapi({ description: 'Account ids; the first is the default sender' }),
      agents: z.array(z.string()),
      addressCount: z.number().int().openapi({ description: '0 shows as "No email address assigned"' }),
      agentCount: z.number().int().openapi({ description: '0 shows as "No agent assigned"' }),
    }),
    hours: z
      .object({ timeZone: z.string(), weekly: z.record(z.string(), z.array(z.tuple([z.string(), z.string()]))), holidays: z.array(z.string()) })
      .nullable()
      .openapi({ description: 'Hours of operation; null = always open' }),
    autoAssign: z
      .object({ enabled: z.boolean(), dailyLimit: z.number().int().nullable(), businessHoursOnly: z.boolean(), loggedInOnly: z.boolean() })
      .openapi({
        description:
          'R-ASG-1..4. With businessHoursOnly, mail arriving outside the hours waits unassigned in the queue inbox and is assigned when the hours open; likewise when no agent is eligible (all offline or at their daily limit), it is assigned as soon as one is.',
      }),
    signature: z.object({ enabled: z.boolean(), html: z.string() }),
    autoReply: z.object({ enabled: z.boolean(), senderAccountId: z.string().nullable(), html: z.string(), attachments: z.array(z.string()) }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Queue');

const view = (q: Queue) => ({
  id: q.id,
  name: q.name,
  language: q.language,
  email: { ...q.email, addressCount: q.email.addresses.length, agentCount: q.email.agents.length },
  hours: q.hours,
  autoAssign: q.autoAssign,
  signature: q.signature,
  autoReply: q.autoReply,
  createdAt: q.createdAt,
  updatedAt: q.updatedAt,
});

const json = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });
const one = { description: 'The queue', content: { 'application/json': { schema: QueueSchema } } };

const routes = {
  list: createRoute({ method: 'get', path: '/api/queues', tags: ['queues'], summary: 'Queues, newest first', security, request: { query: ListQuerySchema }, responses: { 200: { description: 'A page of queues', content: { 'application/json': { schema: listOf(QueueSchema, 'QueueList') } } }, ...errorResponses } }),
  create: createRoute({ method: 'post', path: '/api/queues', tags: ['queues'], summary: 'Create a queue', security, request: { body: json(QueueInputSchema.meta({ id: 'QueueInput' })) }, responses: { 201: one, ...errorResponses, ...conflictResponse } }),
  get: createRoute({ method: 'get', path: '/api/queues/{id}', tags: ['queues'], summary: 'One queue', security, request: { params: IdParamSchema }, responses: { 200: one, ...errorResponses, ...notFoundResponse } }),
  patch: createRoute({ method: 'patch', path: '/api/queues/{id}', tags: ['queues'], summary: 'Change a queue (partial)', security, request: { params: IdParamSchema, body: json(QueuePatchSchema.meta({ id: 'QueuePatch' })) }, responses: { 200: one, ...errorResponses, ...notFoundResponse, ...conflictResponse } }),
  delete: createRoute({ method: 'delete', path: '/api/queues/{id}', tags: ['queues'], summary: 'Delete a queue (its accounts become free)', security, request: { params: IdParamSchema }, responses: { 204: { description: 'Deleted' }, ...errorResponses, ...notFoundResponse } }),
};

export function queueRoutes(app: OpenAPIHono<AuthEnv>, queues: QueuesService): void {
  app.openapi(routes.list, async (c) => {
    const { limit, cursor } = c.req.valid('query');
    const page = await queues.list(limit, cursor);
    return c.json({ items: page.items.map(view), nextCursor: page.nextCursor }, 200);
  });
  app.openapi(routes.create, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await queues.create(c.req.valid('json'))), 201);
  });
  app.openapi(routes.get, async (c) => c.json(view(await queues.get(c.req.valid('param').id)), 200));
  app.openapi(routes.patch, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(view(await queues.update(c.req.valid('param').id, c.req.valid('json'))), 200);
  });
  app.openapi(routes.delete, async (c) => {
    assertAdmin(c.get('principal'));
    await queues.delete(c.req.valid('param').id);
    return c.body(null, 204);
  });
}

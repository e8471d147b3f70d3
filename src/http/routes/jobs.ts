// GET /api/jobs and POST /api/jobs/:id/retry: durable side effects that failed for good stay visible.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { JobQueue, JobRecord } from '../../core/ports.js';
import { notFound, conflict } from '../../core/errors.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const STATES = ['waiting', 'delayed', 'active', 'completed', 'failed'] as const;

const JobSchema = z
  .object({
    id: z.string(),
    purpose: z.string().openapi({ example: 'crm.add_comment' }),
    target: z.string().openapi({ example: 'crm:zendesk' }),
    state: z.enum(STATES),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    runAt: z.string(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Job');

const toJob = (j: JobRecord) => ({
  id: j.id,
  purpose: j.purpose,
  target: j.target,
  state: j.state,
  attempts: j.attempts,
  maxAttempts: j.maxAttempts,
  runAt: new Date(j.runAt).toISOString(),
  lastError: j.lastError,
  createdAt: new Date(j.createdAt).toISOString(),
  updatedAt: new Date(j.updatedAt).toISOString(),
});

const listJobs = createRoute({
  method: 'get',
  path: '/api/jobs',
  tags: ['jobs'],
  summary: 'Durable jobs (CRM writes, sends, archive uploads, timers), e.g. `?state=failed`',
  security,
  request: { query: ListQuerySchema.extend({ state: z.enum(STATES).optional().openapi({ param: { name: 'state', in: 'query' } }) }) },
  responses: {
    200: { description: 'A page of jobs, most recently updated first', content: { 'application/json': { schema: listOf(JobSchema, 'JobList') } } },
    ...errorResponses,
  },
});

const retryJob = createRoute({
  method: 'post',
  path: '/api/jobs/{id}/retry',
  tags: ['jobs'],
  summary: 'Run a failed job again (attempts reset)',
  security,
  request: { params: z.object({ id: z.string().min(1).max(200).openapi({ param: { name: 'id', in: 'path' } }) }) },
  responses: {
    200: { description: 'Queued again', content: { 'application/json': { schema: JobSchema } } },
    ...errorResponses,
    ...notFoundResponse,
    ...conflictResponse,
  },
});

export function jobRoutes(app: OpenAPIHono<AuthEnv>, jobs: JobQueue): void {
  app.openapi(listJobs, async (c) => {
    assertAdmin(c.get('principal'));
    const q = c.req.valid('query');
    const page = await jobs.list({ state: q.state, limit: q.limit, cursor: q.cursor });
    return c.json({ items: page.items.map(toJob), nextCursor: page.nextCursor }, 200);
  });
  app.openapi(retryJob, async (c) => {
    assertAdmin(c.get('principal'));
    const { id } = c.req.valid('param');
    const job = await jobs.get(id);
    if (!job) throw notFound('job', id);
    if (!(await jobs.retry(id))) throw conflict(`job ${id} is ${job.state}; only failed jobs can be retried`);
    const again = await jobs.get(id);
    return c.json(toJob(again ?? job), 200);
  });
}

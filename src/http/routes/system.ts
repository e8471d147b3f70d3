// Open system routes: GET /health (store and mailboxes) and GET /metrics (Prometheus, admin token).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { HealthService } from '../../app/health-service.js';
import { AppError } from '../../core/errors.js';
import type { Principal, TokenResolver } from '../../core/auth.js';
import type { AuthEnv } from '../auth.js';
import { errorResponses, security } from '../schemas.js';

const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']),
    store: z.enum(['ok', 'unreachable']),
    mailboxes: z.array(
      z.object({
        accountId: z.string(),
        state: z.string().openapi({ example: 'idle' }),
        backlog: z.number().int(),
        lastError: z.string().nullable(),
        lastMessageAt: z.string().nullable(),
        import: z.object({ done: z.number().int(), total: z.number().int().nullable(), finished: z.boolean() }).nullable().optional(),
      }),
    ),
    archive: z
      .object({
        backlog: z.number().int().openapi({ description: 'Archive writes waiting or being retried' }),
        lastError: z.string().nullable(),
        lastErrorAt: z.string().nullable(),
        lastSuccessAt: z.string().nullable(),
      })
      .optional()
      .openapi({ description: 'The mail archive (R-STO-4); `status` is `degraded` while it fails with writes waiting' }),
  })
  .openapi('Health');

const health = createRoute({
  method: 'get',
  path: '/health',
  tags: ['system'],
  summary: 'Liveness and dependencies; 503 when the store is unreachable',
  responses: {
    200: { description: 'Store reachable (`degraded` when a mailbox is failing)', content: { 'application/json': { schema: HealthSchema } } },
    503: { description: 'Store unreachable', content: { 'application/json': { schema: HealthSchema } } },
  },
});

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['system'],
  summary: 'Prometheus metrics (admin token)',
  security,
  responses: {
    200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
    ...errorResponses,
  },
});

export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

export function systemRoutes(
  app: OpenAPIHono<AuthEnv>,
  deps: { health: HealthService; metrics?: MetricsSource; auth: TokenResolver },
): void {
  app.openapi(health, async (c) => {
    const report = await deps.health.report();
    return report.store === 'ok' ? c.json(report, 200) : c.json(report, 503);
  });
  app.openapi(metrics, async (c) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    const principal: Principal | null = match?.[1] ? await deps.auth.resolve(match[1]) : null;
    if (!principal) throw new AppError('unauthorized', 'Authorization: Bearer <admin token> is required');
    if (principal.role !== 'admin') throw new AppError('forbidden', 'Metrics need an admin token');
    if (!deps.metrics) throw new AppError('dependency_unavailable', 'Metrics are not available in this runtime');
    return c.text(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType });
  });
}

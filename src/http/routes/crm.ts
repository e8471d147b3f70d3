// CRM-facing routes: POST /webhooks/:connector (signed CRM events, R-CRM-5, R-AGT-4) and
// POST /api/connector/test (checks the configured connector's credentials).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { CrmSyncService } from '../../app/crm-sync.js';
import { AppError } from '../../core/errors.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { ErrorSchema, errorResponses, security } from '../schemas.js';

const webhook = createRoute({
  method: 'post',
  path: '/webhooks/{connector}',
  tags: ['crm'],
  summary: 'CRM events (verified by the connector’s signature; unsigned or forged → 401, nothing changed)',
  request: { params: z.object({ connector: z.string().min(1).max(32).regex(/^[a-z][a-z0-9_-]*$/).openapi({ param: { name: 'connector', in: 'path' } }) }) },
  responses: {
    200: { description: 'Events received and applied', content: { 'application/json': { schema: z.object({ received: z.number().int(), applied: z.number().int() }).openapi('WebhookResult') } } },
    401: { description: 'Missing or invalid signature', content: { 'application/json': { schema: ErrorSchema } } },
    404: { description: 'Not the connector in use', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

const test = createRoute({
  method: 'post',
  path: '/api/connector/test',
  tags: ['crm'],
  summary: 'Check the configured connector’s credentials against the CRM',
  security,
  responses: {
    200: {
      description: '`ok: true`, or `ok: false` with the CRM’s own words',
      content: { 'application/json': { schema: z.object({ ok: z.boolean(), connector: z.string(), account: z.string().optional(), error: z.object({ code: z.string(), message: z.string() }).optional() }).openapi('ConnectorTestResult') } },
    },
    ...errorResponses,
  },
});

const MAX_WEBHOOK_BYTES = 1024 * 1024;

export function crmRoutes(app: OpenAPIHono<AuthEnv>, crm: CrmSyncService): void {
  app.openapi(webhook, async (c) => {
    const body = await c.req.text();
    if (body.length > MAX_WEBHOOK_BYTES) throw new AppError('payload_too_large', 'webhook body over 1 MB');
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, key) => {
      headers[key.toLowerCase()] = value;
    });
    const result = await crm.handleWebhook(c.req.valid('param').connector, { headers, body, receivedAt: Date.now() });
    return c.json(result, 200);
  });
  app.openapi(test, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await crm.testConnector(), 200);
  });
}

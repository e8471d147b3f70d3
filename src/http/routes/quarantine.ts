// Quarantined mail (R-REL-3): messages that could not be parsed or were too large, kept and visible.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { QuarantineService } from '../../app/quarantine-service.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const Entry = z
  .object({
    id: z.string(),
    accountId: z.string(),
    reason: z.enum(['unparseable', 'too_large', 'no_header', 'processing_error']),
    detail: z.string(),
    size: z.number().int(),
    arrivedAt: z.string().nullable(),
    quarantinedAt: z.string(),
    rawAvailable: z.boolean(),
    state: z.enum(['open', 'released']),
    releasedAt: z.string().nullable(),
    sessionId: z.string().nullable(),
    source: z.object({ uidValidity: z.string(), uid: z.number().int() }),
  })
  .openapi('QuarantineEntry');

const Param = z.object({ id: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/).openapi({ param: { name: 'id', in: 'path' } }) });

const list = createRoute({
  method: 'get',
  path: '/api/quarantine',
  tags: ['quarantine'],
  summary: 'Quarantined mail, newest first',
  security,
  request: { query: ListQuerySchema },
  responses: { 200: { description: 'A page of entries', content: { 'application/json': { schema: listOf(Entry, 'QuarantineList') } } }, ...errorResponses },
});
const raw = createRoute({
  method: 'get',
  path: '/api/quarantine/{id}/raw',
  tags: ['quarantine'],
  summary: 'The kept bytes of a quarantined message',
  security,
  request: { params: Param },
  responses: { 200: { description: 'The .eml file', content: { 'message/rfc822': { schema: z.string().openapi({ format: 'binary' }) } } }, ...errorResponses, ...notFoundResponse },
});
const retry = createRoute({
  method: 'post',
  path: '/api/quarantine/{id}/retry',
  tags: ['quarantine'],
  summary: 'Ingest the message again (after a fix); released on success',
  security,
  request: { params: Param },
  responses: { 200: { description: 'The entry after the retry', content: { 'application/json': { schema: Entry } } }, ...errorResponses, ...notFoundResponse, ...conflictResponse },
});

export function quarantineRoutes(app: OpenAPIHono<AuthEnv>, quarantine: QuarantineService): void {
  app.openapi(list, async (c) => {
    assertAdmin(c.get('principal'));
    const { limit, cursor } = c.req.valid('query');
    return c.json(await quarantine.list(limit, cursor), 200);
  });
  app.openapi(raw, async (c) => {
    assertAdmin(c.get('principal'));
    const bytes = await quarantine.raw(c.req.valid('param').id);
    return c.body(new Uint8Array(bytes), 200, { 'content-type': 'message/rfc822', 'content-disposition': `attachment; filename="${c.req.valid('param').id}.eml"` });
  });
  app.openapi(retry, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await quarantine.retry(c.req.valid('param').id), 200);
  });
}

// R-API-1: /openapi.json documents every route; a golden file makes any API change visible in review.
// Regenerate on purpose with: UPDATE_GOLDEN=1 npx vitest run test/api/openapi.test.ts
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

const golden = join(import.meta.dirname, '..', 'golden', 'openapi.json');
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc?.stop();
});

describe('OpenAPI document', () => {
  it('is served openly at /openapi.json and matches the golden file', async () => {
    const res = await svc.call('GET', '/openapi.json', undefined, null);
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    const text = `${JSON.stringify(res.body, null, 2)}\n`;
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, text);
    expect(existsSync(golden), 'golden file missing: run with UPDATE_GOLDEN=1').toBe(true);
    expect(text).toBe(readFileSync(golden, 'utf8'));
  });

  it('documents every route with the bearer scheme and the error shape', async () => {
    const doc = (await svc.call('GET', '/openapi.json', undefined, null)).body;
    for (const path of ['/health', '/api/settings', '/api/uploads', '/api/jobs', '/api/jobs/{id}/retry', '/metrics']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.Error).toBeDefined();
    expect(doc.paths['/api/settings'].put.responses['400']).toBeDefined();
  });
});

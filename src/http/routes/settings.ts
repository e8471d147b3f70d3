// GET/PUT /api/settings (SPEC §1, §4, §5, §11a): defaults, deep-merged partial updates, field errors.
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { SettingsPatchSchema, SettingsSchema } from '../../config/settings.js';
import type { SettingsService } from '../../app/settings-service.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { errorResponses, security } from '../schemas.js';

// Both schemas carry `.meta({ id })` in src/config, so they appear as named components.
const Settings = SettingsSchema;
const SettingsPatch = SettingsPatchSchema;

const getSettings = createRoute({
  method: 'get',
  path: '/api/settings',
  tags: ['settings'],
  summary: 'Global email-channel settings, with defaults',
  security,
  responses: {
    200: { description: 'Current settings', content: { 'application/json': { schema: Settings } } },
    ...errorResponses,
  },
});

const putSettings = createRoute({
  method: 'put',
  path: '/api/settings',
  tags: ['settings'],
  summary: 'Change any subset of the settings (deep merge; unknown fields refused)',
  description:
    '`subject.addSessionId` and `subject.agentsCanEdit` cannot both be on (R-GLB-4): such a save answers 400 naming both fields. Timer days are whole numbers 1–1000.',
  security,
  request: { body: { required: true, content: { 'application/json': { schema: SettingsPatch } } } },
  responses: {
    200: { description: 'Saved settings', content: { 'application/json': { schema: Settings } } },
    ...errorResponses,
  },
});

export function settingsRoutes(app: OpenAPIHono<AuthEnv>, settings: SettingsService): void {
  app.openapi(getSettings, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await settings.view(), 200);
  });
  app.openapi(putSettings, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await settings.update(c.req.valid('json')), 200);
  });
}

// GET/PUT /api/storage and POST /api/storage/test (SPEC §2 R-STO-1..3, §11a): where the mail archive goes; admin only.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { StoragePatchSchema, StorageTestResultSchema, StorageViewSchema } from '../../config/storage.js';
import type { StorageService } from '../../app/storage-service.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, security } from '../schemas.js';

// The schemas carry `.meta({ id })` in src/config, so they appear as named components.
const StorageView = StorageViewSchema;
const StoragePatch = StoragePatchSchema;
const StorageTestResult = StorageTestResultSchema;

const SAVE_NOTE =
  'Providers: `local` (a folder under DATA_DIR/archive; the default), `s3` (Amazon S3, or any S3-compatible store through `s3.endpoint`), `gcs` (Google Cloud Storage with a service account JSON key). ' +
  '`retentionDays` is one of 30, 60, 90, 180, 365, or null to keep message bodies forever. ' +
  'Secrets (`s3.secretAccessKey`, `gcs.serviceAccountKey`) are write-only: an omitted secret keeps the saved one, a given one replaces it; GET shows `secretAccessKeySet` / `serviceAccountKeySet`. ' +
  '`s3: null` / `gcs: null` forget that provider\'s access. An `s3.endpoint` host must not be loopback/private unless ALLOW_PRIVATE_HOSTS allows it (400 naming `s3.endpoint`).';

const getStorage = createRoute({
  method: 'get',
  path: '/api/storage',
  tags: ['storage'],
  summary: 'Email data storage settings (secrets never returned)',
  security,
  responses: {
    200: { description: 'Current storage settings; the defaults (local, kept forever) when never saved', content: { 'application/json': { schema: StorageView } } },
    ...errorResponses,
  },
});

const putStorage = createRoute({
  method: 'put',
  path: '/api/storage',
  tags: ['storage'],
  summary: 'Change any subset of the storage settings; saved only when the connection test passes',
  description: `${SAVE_NOTE} Every field is validated (400 naming each path). The merged settings must then pass the connection test (write, read back, list and delete a probe object under the folder): a failure answers 400 \`validation_failed\` with the provider's own words, naming the field most likely at fault (e.g. \`bucket\`, \`s3.secretAccessKey\`, \`s3.endpoint\`), and the previous settings stay in force (R-STO-3).`,
  security,
  request: { body: { required: true, content: { 'application/json': { schema: StoragePatch } } } },
  responses: {
    200: { description: 'Saved settings', content: { 'application/json': { schema: StorageView } } },
    ...errorResponses,
    ...conflictResponse,
  },
});

const testStorage = createRoute({
  method: 'post',
  path: '/api/storage/test',
  tags: ['storage'],
  summary: 'Test connection: write, read back, list and delete a probe object (R-STO-3)',
  description: `With a body: a candidate configuration merged over the saved one like a PUT (omitted secrets = the saved ones); nothing is saved. Without a body: the saved configuration. Answers \`{ "ok": true }\` or \`{ "ok": false, "error": { "code": "auth" | "no_bucket" | "forbidden" | "network" | "timeout" | "unknown", "message" } }\` with the provider's own words; invalid fields or a refused host answer 400. ${SAVE_NOTE}`,
  security,
  request: { body: { required: false, content: { 'application/json': { schema: StoragePatch } } } },
  responses: {
    200: { description: 'The outcome of the probe', content: { 'application/json': { schema: StorageTestResult } } },
    ...errorResponses,
  },
});

const ArchiveStatus = z
  .object({
    backlog: z.number().int().openapi({ description: 'Archive writes waiting or being retried' }),
    lastError: z.string().nullable().openapi({ description: 'Code of the last failure (auth, no_bucket, forbidden, network, timeout, unknown)' }),
    lastErrorMessage: z.string().nullable().openapi({ description: 'The provider’s own words about the last failure' }),
    lastErrorAt: z.string().nullable(),
    lastSuccessAt: z.string().nullable(),
  })
  .openapi('ArchiveStatus');

export interface ArchiveStatusSource {
  (): Promise<{ backlog: number; lastError: string | null; lastErrorMessage?: string | null; lastErrorAt: string | null; lastSuccessAt: string | null }>;
}

const getStatus = createRoute({
  method: 'get',
  path: '/api/storage/status',
  tags: ['storage'],
  summary: 'The archive at work: backlog, last success, last failure in the provider’s words (R-STO-4)',
  security,
  responses: {
    200: { description: 'Archive status', content: { 'application/json': { schema: ArchiveStatus } } },
    ...errorResponses,
  },
});

export function storageRoutes(app: OpenAPIHono<AuthEnv>, storage: StorageService, status?: ArchiveStatusSource): void {
  if (status) {
    app.openapi(getStatus, async (c) => {
      assertAdmin(c.get('principal'));
      const s = await status();
      return c.json({ backlog: s.backlog, lastError: s.lastError, lastErrorMessage: s.lastErrorMessage ?? null, lastErrorAt: s.lastErrorAt, lastSuccessAt: s.lastSuccessAt }, 200);
    });
  }
  app.openapi(getStorage, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await storage.view(), 200);
  });
  app.openapi(putStorage, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await storage.update(c.req.valid('json')), 200);
  });
  app.openapi(testStorage, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await storage.test(c.req.valid('json')), 200);
  });
}

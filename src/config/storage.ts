// Email data storage settings (SPEC §2 R-STO-1..3, §11a /api/storage): stored form, PUT patch, public view, field checks.
import { z } from 'zod';
import { ARCHIVE_PROVIDERS, RETENTION_DAYS, normalizeArchiveFolder, type RetentionDays } from '../core/archive.js';
import type { FieldError } from '../core/errors.js';

const NO_SPACE_OR_CONTROL = /^[^\s\0]+$/;

// A union of literals (not z.literal([...])): the OpenAPI generator keeps every value of a union.
const retentionDay = z.union(
  RETENTION_DAYS.map((d) => z.literal(d)) as unknown as [z.ZodLiteral<RetentionDays>, ...z.ZodLiteral<RetentionDays>[]],
  { error: `must be one of ${RETENTION_DAYS.join(', ')} (days) or null (keep forever)` },
);
const retentionDays = retentionDay
  .nullable()
  .describe('Days the service keeps message bodies after which only the archive copy stays; null = forever (R-STO-1)');

const folder = z
  .string()
  .max(512)
  .superRefine((value, ctx) => {
    try {
      normalizeArchiveFolder(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a path of segments made of A–Z a–z 0–9 _ . - separated by "/" (no empty, "." or ".." segment)' });
    }
  })
  .describe('Folder inside the bucket (or under the local archive root); leading/trailing "/" are ignored; "" = the top');

const region = z
  .string()
  .min(1, 'must not be empty')
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a region name such as "eu-west-3"');

const endpoint = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    const problem = endpointProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('S3-compatible store only (MinIO, Ceph, R2, …): its base URL, e.g. https://minio.example.com:9000; null = AWS');

const accessKeyId = z.string().min(1, 'must not be empty').max(256).regex(NO_SPACE_OR_CONTROL, 'must not contain spaces or control characters');
const secretAccessKey = z.string().min(1, 'must not be empty').max(1024).regex(NO_SPACE_OR_CONTROL, 'must not contain spaces or control characters');

const serviceAccountKey = z
  .string()
  .max(64 * 1024)
  .superRefine((value, ctx) => {
    const parsed = parseServiceAccountKey(value);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
  })
  .describe("The service account's JSON key file content (with client_email and private_key)");

/** A secret as stored: sealed by the SecretBox, never the plaintext. */
const SealedSchema = z.object({ sealed: z.string() }).strict();

// ---------------------------------------------------------------------------------------------------
// Stored form (key `storage-settings`): every default, secrets sealed.

const StoredS3Schema = z
  .object({
    region,
    endpoint: z.string().nullable().default(null),
    forcePathStyle: z.boolean().nullable().default(null),
    accessKeyId,
    secretAccessKey: SealedSchema,
  })
  .strict();

const StoredGcsSchema = z
  .object({
    serviceAccountKey: SealedSchema,
    /** Copied from the key when it is saved, so the view can show which account it is without opening it. */
    clientEmail: z.string(),
    projectId: z.string().nullable().default(null),
  })
  .strict();

export const StorageSettingsSchema = z
  .object({
    provider: z.enum(ARCHIVE_PROVIDERS).default('local'),
    bucket: z.string().max(222).default(''),
    folder: z.string().max(512).default(''),
    retentionDays: retentionDays.default(null),
    s3: StoredS3Schema.nullable().default(null),
    gcs: StoredGcsSchema.nullable().default(null),
  })
  .strict()
  .meta({ id: 'StorageSettings' });
export type StorageSettings = z.infer<typeof StorageSettingsSchema>;

/** The stored document: the settings plus `rev` (optimistic concurrency) and when they were last saved. */
export const StorageDocumentSchema = StorageSettingsSchema.extend({
  rev: z.number().int().min(1),
  updatedAt: z.string(),
}).strict();
export type StorageDocument = z.infer<typeof StorageDocumentSchema>;

/** Local, under DATA_DIR/archive, kept forever: what a fresh install answers. */
export function defaultStorageSettings(): StorageSettings {
  return StorageSettingsSchema.parse({});
}

// ---------------------------------------------------------------------------------------------------
// PUT /api/storage (and POST /api/storage/test): any subset, merged over the saved settings; unknown fields refused.
// Secrets omitted = keep the saved ones; given = replace. `s3: null` / `gcs: null` forget that provider's access.

export const StoragePatchSchema = z
  .object({
    provider: z.enum(ARCHIVE_PROVIDERS).describe('`local` (a folder under DATA_DIR/archive), `s3` (Amazon S3 or S3-compatible) or `gcs`'),
    bucket: z.string().max(222).describe('Bucket name (required for s3 and gcs; ignored by local)'),
    folder,
    retentionDays,
    s3: z
      .object({
        region,
        endpoint: endpoint.nullable(),
        forcePathStyle: z.boolean().nullable().describe('Path-style URLs; null (default) = path style with a custom endpoint, virtual-hosted style on AWS'),
        accessKeyId,
        secretAccessKey: secretAccessKey.describe('Write-only: sealed at rest, never returned (`secretAccessKeySet`)'),
      })
      .partial()
      .strict()
      .nullable(),
    gcs: z
      .object({ serviceAccountKey: serviceAccountKey.describe('Write-only: the JSON key content; sealed at rest, never returned (`serviceAccountKeySet`)') })
      .partial()
      .strict()
      .nullable(),
  })
  .partial()
  .strict()
  .meta({ id: 'StoragePatch' });
export type StoragePatch = z.infer<typeof StoragePatchSchema>;

// ---------------------------------------------------------------------------------------------------
// GET /api/storage: secrets replaced by `<field>Set` (SPEC §11b).

export const StorageViewSchema = z
  .object({
    provider: z.enum(ARCHIVE_PROVIDERS),
    bucket: z.string(),
    folder: z.string(),
    retentionDays: retentionDay.nullable(),
    s3: z
      .object({
        region: z.string(),
        endpoint: z.string().nullable(),
        forcePathStyle: z.boolean().nullable(),
        accessKeyId: z.string(),
        secretAccessKeySet: z.boolean(),
      })
      .strict()
      .nullable(),
    gcs: z
      .object({
        clientEmail: z.string().describe("The key's service account"),
        projectId: z.string().nullable(),
        serviceAccountKeySet: z.boolean(),
      })
      .strict()
      .nullable(),
    updatedAt: z.string().nullable().describe('When the settings were last saved; null = never (defaults)'),
  })
  .strict()
  .meta({ id: 'StorageView' });
export type StorageView = z.infer<typeof StorageViewSchema>;

/** `{ ok: true }` or `{ ok: false, error: { code, message } }` (POST /api/storage/test). */
export const StorageTestResultSchema = z
  .object({
    ok: z.boolean(),
    error: z
      .object({
        code: z.enum(['auth', 'no_bucket', 'forbidden', 'network', 'timeout', 'unknown']),
        message: z.string().describe("What failed, in the provider's own words"),
      })
      .strict()
      .optional(),
  })
  .strict()
  .meta({ id: 'StorageTestResult' });

// ---------------------------------------------------------------------------------------------------
// Checks shared by the schemas and the service.

/** Why an S3 endpoint is unusable, or null: an http(s) URL with a host, no credentials, query or fragment. */
export function endpointProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an http(s) URL such as https://minio.example.com:9000';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.hostname === '') return 'must name a host';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials (use accessKeyId / secretAccessKey)';
  if (url.search !== '' || url.hash !== '') return 'must not have a query or fragment';
  return null;
}

/** The parts of a service-account key the archive uses, or why the text is not one. */
export function parseServiceAccountKey(text: string): { clientEmail: string; privateKey: string; projectId: string | null } | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'must be the JSON key file content of a service account (it is not JSON)';
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'must be a JSON object (a service account key file)';
  const key = json as Record<string, unknown>;
  if (key.type !== undefined && key.type !== 'service_account') return `must be a service account key (its "type" is ${JSON.stringify(key.type)})`;
  if (typeof key.client_email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(key.client_email)) return 'must contain "client_email" (the service account address)';
  if (typeof key.private_key !== 'string' || !key.private_key.includes('PRIVATE KEY-----')) return 'must contain "private_key" (a PEM private key)';
  const projectId = typeof key.project_id === 'string' && key.project_id !== '' ? key.project_id : null;
  return { clientEmail: key.client_email, privateKey: key.private_key, projectId };
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** S3 bucket naming rules (general purpose buckets): null when fine. */
export function s3BucketProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return 'must be 3–63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return 'must use only lowercase letters, digits, dots and hyphens, and start and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent dots';
  if (IPV4.test(name)) return 'must not be formatted as an IP address';
  if (name.startsWith('xn--') || name.startsWith('sthree-') || name.endsWith('-s3alias') || name.endsWith('--ol-s3')) return 'uses a prefix or suffix S3 reserves';
  return null;
}

/** Google Cloud Storage bucket naming rules: null when fine. */
export function gcsBucketProblem(name: string): string | null {
  if (!/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(name)) return 'must use only lowercase letters, digits, dashes, underscores and dots, and start and end with a letter or digit';
  if (name.includes('.')) {
    if (name.length > 222) return 'must be at most 222 characters long';
    if (name.split('.').some((part) => part.length === 0 || part.length > 63)) return 'each dot-separated part must be 1–63 characters long';
  } else if (name.length < 3 || name.length > 63) return 'must be 3–63 characters long';
  if (name.length < 3) return 'must be at least 3 characters long';
  if (IPV4.test(name)) return 'must not be formatted as an IP address';
  if (name.startsWith('goog') || /g[o0]{2}g[l1]e/.test(name)) return 'must not start with "goog" or contain "google"';
  return null;
}

/** What the effective settings need beyond each field's own shape (checked after a PUT is merged). */
export interface StorageShape {
  provider: (typeof ARCHIVE_PROVIDERS)[number];
  bucket: string;
  s3: { region?: string | undefined; accessKeyId?: string | undefined; secretAccessKey?: unknown } | null;
  gcs: { serviceAccountKey?: unknown } | null;
}

/** Cross-field checks: the chosen provider has a valid bucket and complete access (field paths as the API names them). */
export function storageFieldErrors(settings: StorageShape): FieldError[] {
  const errors: FieldError[] = [];
  if (settings.provider === 's3' || settings.provider === 'gcs') {
    if (settings.bucket === '') errors.push({ path: 'bucket', message: `is required with provider ${settings.provider}` });
    else {
      const problem = settings.provider === 's3' ? s3BucketProblem(settings.bucket) : gcsBucketProblem(settings.bucket);
      if (problem) errors.push({ path: 'bucket', message: problem });
    }
  }
  // A provider's access block, when present, must be complete (it may be kept while another provider is chosen).
  if (settings.s3 !== null || settings.provider === 's3') {
    const s3 = settings.s3 ?? {};
    if (!s3.region) errors.push({ path: 's3.region', message: 'is required for S3' });
    if (!s3.accessKeyId) errors.push({ path: 's3.accessKeyId', message: 'is required for S3' });
    if (s3.secretAccessKey === undefined || s3.secretAccessKey === null) errors.push({ path: 's3.secretAccessKey', message: 'is required for S3' });
  }
  if (settings.gcs !== null || settings.provider === 'gcs') {
    const gcs = settings.gcs ?? {};
    if (gcs.serviceAccountKey === undefined || gcs.serviceAccountKey === null) errors.push({ path: 'gcs.serviceAccountKey', message: 'is required for Google Cloud Storage' });
  }
  return errors;
}

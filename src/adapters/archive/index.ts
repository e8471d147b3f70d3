// Builds the ArchiveStore the effective storage settings choose: local folder, S3 (or S3-compatible) or GCS.
import { join } from 'node:path';
import { ArchiveError, normalizeArchiveFolder, type ArchiveSettings, type ArchiveStore } from '../../core/archive.js';
import { GcsArchiveStore } from './gcs-archive.js';
import { LocalArchiveStore } from './local-archive.js';
import { S3ArchiveStore } from './s3-archive.js';

export { GcsArchiveStore, classifyGcsError, type GcsArchiveOptions } from './gcs-archive.js';
export { LocalArchiveStore } from './local-archive.js';
export { S3ArchiveStore, classifyS3Error, type S3ArchiveOptions } from './s3-archive.js';

/** Folder under DATA_DIR that the local provider writes to. */
export const LOCAL_ARCHIVE_DIR = 'archive';

export interface CreateArchiveOptions {
  /** DATA_DIR: the local provider writes under `<dataDir>/archive`. */
  dataDir: string;
  /** Deadline of one call to a bucket, retries included (default 15 s). */
  timeoutMs?: number;
  /** GCS API endpoint other than Google's (tests, emulators). */
  gcsApiEndpoint?: string;
}

/**
 * The store for the effective settings (secrets opened). Keys the callers build already start with the
 * settings' folder (archiveObjectKey), so the stores themselves are rooted at the bucket (or the local root).
 * Throws an ArchiveError (`auth`) when the settings lack what the provider needs.
 */
export function createArchiveStore(settings: ArchiveSettings, opts: CreateArchiveOptions): ArchiveStore {
  // Refuse a folder that is not a clean relative path before anything is written.
  normalizeArchiveFolder(settings.folder);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  switch (settings.provider) {
    case 'local':
      return new LocalArchiveStore(join(opts.dataDir, LOCAL_ARCHIVE_DIR));
    case 's3': {
      const s3 = settings.s3;
      if (!s3) throw new ArchiveError('auth', 'S3 access (region, accessKeyId, secretAccessKey) is not configured');
      return new S3ArchiveStore({
        bucket: settings.bucket,
        region: s3.region,
        endpoint: s3.endpoint,
        forcePathStyle: s3.forcePathStyle,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        timeoutMs,
      });
    }
    case 'gcs': {
      const gcs = settings.gcs;
      if (!gcs) throw new ArchiveError('auth', 'the GCS service account key is not configured');
      return new GcsArchiveStore({
        bucket: settings.bucket,
        serviceAccountKey: gcs.serviceAccountKey,
        timeoutMs,
        ...(opts.gcsApiEndpoint ? { apiEndpoint: opts.gcsApiEndpoint } : {}),
      });
    }
    default: {
      const never: never = settings.provider;
      throw new ArchiveError('unknown', `unknown archive provider ${String(never)}`);
    }
  }
}

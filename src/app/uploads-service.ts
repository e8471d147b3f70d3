// Uploads (SPEC §11b): one file per request, size-limited, bytes in the blob store, metadata in the store.
import type { BlobStore, Clock, Store } from '../core/ports.js';
import { AppError, notFound } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { uploadBlobKey, uploadKey } from '../core/keys.js';
import { checkAttachments } from '../core/policies/attachments.js';

export interface UploadMeta {
  id: string;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

/** Unreferenced uploads expire after this long; a reply or session that uses one copies what it needs. */
export const UPLOAD_TTL_MS = 7 * 24 * 3600_000;

/** Keeps the last path segment, drops control characters and quotes, bounds the length. */
export function safeFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f"<>]/g, '').trim().slice(0, 255);
  return cleaned.length > 0 && cleaned !== '.' && cleaned !== '..' ? cleaned : 'file';
}

const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

export class UploadsService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    readonly maxBytes: number,
  ) {}

  async save(file: { filename: string; contentType: string; bytes: Uint8Array }): Promise<UploadMeta> {
    if (file.bytes.byteLength > this.maxBytes) {
      throw new AppError('payload_too_large', `file is ${file.bytes.byteLength} bytes; the limit is ${this.maxBytes} bytes`, [
        { path: 'file', message: `larger than ${this.maxBytes} bytes` },
      ]);
    }
    const contentType = CONTENT_TYPE.test(file.contentType) ? file.contentType.toLowerCase() : 'application/octet-stream';
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', file.bytes));
    const meta: UploadMeta = {
      id: newId('upl'),
      filename: safeFilename(file.filename),
      contentType,
      size: file.bytes.byteLength,
      sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
      createdAt: new Date(this.clock.now()).toISOString(),
    };
    // Bytes first, then metadata: an upload id is only ever handed out for stored bytes.
    await this.blobs.put(uploadBlobKey(meta.id), file.bytes, { contentType, ttlMs: UPLOAD_TTL_MS });
    await this.store.put(uploadKey(meta.id), meta, { ttlMs: UPLOAD_TTL_MS });
    return meta;
  }

  async get(id: string): Promise<UploadMeta> {
    const meta = await this.store.get<UploadMeta>(uploadKey(id));
    if (!meta) throw notFound('upload', id);
    return meta;
  }

  /**
   * Checks uploads as attachments (R-ARP-2: type by extension and content, counts, sizes) and keeps them with no
   * expiry, for settings that reference them (a queue's auto-reply files). Unknown ids are refusals too.
   */
  async checkAndKeep(ids: string[]): Promise<{ index: number; message: string }[]> {
    const refusals: { index: number; message: string }[] = [];
    const files: { meta: UploadMeta; bytes: Uint8Array }[] = [];
    for (const [index, id] of ids.entries()) {
      const meta = await this.store.get<UploadMeta>(uploadKey(id));
      const bytes = meta ? await this.blobs.get(uploadBlobKey(id)) : undefined;
      if (!meta || !bytes) refusals.push({ index, message: `unknown or expired upload ${id}` });
      else files.push({ meta, bytes });
    }
    if (refusals.length > 0) return refusals;
    const checked = checkAttachments(files.map((f) => ({ filename: f.meta.filename, size: f.bytes.byteLength, head: f.bytes.subarray(0, 8192), inline: false })));
    if (checked.length > 0) return checked.map((r) => ({ index: r.index, message: r.message }));
    for (const f of files) {
      await this.blobs.put(uploadBlobKey(f.meta.id), f.bytes, { contentType: f.meta.contentType });
      await this.store.put(uploadKey(f.meta.id), f.meta);
    }
    return [];
  }

  async bytes(id: string): Promise<Uint8Array> {
    await this.get(id);
    const data = await this.blobs.get(uploadBlobKey(id));
    if (!data) throw notFound('upload', id);
    return data;
  }
}

// Blob storage inside the service's own store (uploads): bytes in 512 KiB base64 chunks, written before their manifest.
// `opsFor` gives the same writes as WriteOps, for a caller that commits them atomically with its own (one
// transaction instead of one per chunk and one for the manifest).
import type { BlobStore, Store, WriteOp } from '../../core/ports.js';
import { blobChunkKey } from '../../core/keys.js';

const CHUNK = 512 * 1024;

interface Manifest {
  size: number;
  chunks: number;
  contentType?: string;
}

export class StoreBlobStore implements BlobStore {
  constructor(private readonly store: Store) {}

  async put(key: string, data: Uint8Array, meta: { contentType?: string; ttlMs?: number } = {}): Promise<void> {
    const chunks = Math.max(1, Math.ceil(data.byteLength / CHUNK));
    const ttl = meta.ttlMs !== undefined ? { ttlMs: meta.ttlMs } : undefined;
    for (let i = 0; i < chunks; i++) {
      const part = data.subarray(i * CHUNK, (i + 1) * CHUNK);
      await this.store.put(blobChunkKey(key, i), Buffer.from(part).toString('base64'), ttl);
    }
    const manifest: Manifest = { size: data.byteLength, chunks, ...(meta.contentType ? { contentType: meta.contentType } : {}) };
    await this.store.put(key, manifest, ttl);
  }

  /** The writes `put` makes (chunks, then the manifest), to include in a `Store.commit` of the caller's. */
  opsFor(key: string, data: Uint8Array, meta: { contentType?: string; ttlMs?: number } = {}): WriteOp[] {
    const chunks = Math.max(1, Math.ceil(data.byteLength / CHUNK));
    const ttl = meta.ttlMs !== undefined ? { ttlMs: meta.ttlMs } : {};
    const ops: WriteOp[] = [];
    for (let i = 0; i < chunks; i++) {
      const part = data.subarray(i * CHUNK, (i + 1) * CHUNK);
      ops.push({ op: 'put', key: blobChunkKey(key, i), value: Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('base64'), ...ttl });
    }
    const manifest: Manifest = { size: data.byteLength, chunks, ...(meta.contentType ? { contentType: meta.contentType } : {}) };
    ops.push({ op: 'put', key, value: manifest, ...ttl });
    return ops;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const manifest = await this.store.get<Manifest>(key);
    if (!manifest) return undefined;
    const parts = await this.store.getMany<string>(Array.from({ length: manifest.chunks }, (_, i) => blobChunkKey(key, i)));
    if (parts.some((p) => p === undefined)) return undefined;
    const out = Buffer.concat(parts.map((p) => Buffer.from(p as string, 'base64')));
    return out.byteLength === manifest.size ? new Uint8Array(out) : undefined;
  }

  async delete(key: string): Promise<void> {
    const manifest = await this.store.get<Manifest>(key);
    await this.store.delete(key);
    if (manifest) for (let i = 0; i < manifest.chunks; i++) await this.store.delete(blobChunkKey(key, i));
  }
}

// The archive batch on the embedded store with a scripted archive (R-STO-4): pending messages are written and their
// references recorded in one commit; a message that cannot be named never blocks the others; a failing object keeps
// what was written and is retried; one batch at a time; the safety net queues a job only when none is alive.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDirs } from '../../test/helpers/temp-dirs.js';
import { StoreBlobStore } from '../adapters/blob/store-blob-store.js';
import { openStore } from '../adapters/store/index.js';
import { ArchiveError, archiveWrites, type ArchiveSettings, type ArchiveStore } from '../core/archive.js';
import { RetryLaterError, silentLogger, type JobRecord, type JobSpec, type Store } from '../core/ports.js';
import { ArchiveService } from './archive-service.js';
import type { StoredMessage } from './ingest-message.js';

const dirs = tempDirs('ec-archive-svc-');
afterAll(() => dirs.removeAll());

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const settings: ArchiveSettings = { provider: 'local', bucket: '', folder: 'mail', retentionDays: null, s3: null, gcs: null };

class MemoryArchive implements ArchiveStore {
  readonly objects = new Map<string, Uint8Array>();
  puts = 0;
  failKeys = new Set<string>();
  async put(key: string, data: Uint8Array): Promise<void> {
    this.puts++;
    if ([...this.failKeys].some((k) => key.includes(k))) throw new ArchiveError('network', `connect ECONNREFUSED (${key})`);
    this.objects.set(key, data);
  }
  async get(key: string) {
    return this.objects.get(key);
  }
  async list(prefix: string) {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async delete(key: string) {
    this.objects.delete(key);
  }
  describe() {
    return 'memory';
  }
}

describe('ArchiveService batch', () => {
  let store: Store;
  let archive: MemoryArchive;
  let service: ArchiveService;
  let handlers: Map<string, (job: JobRecord) => Promise<void>>;

  beforeEach(async () => {
    store = (await openStore({ dataDir: dirs.make(), clock: { now: () => NOW } })).store;
    archive = new MemoryArchive();
    const blobs = new StoreBlobStore(store);
    service = new ArchiveService({ store, blobs, clock: { now: () => NOW }, logger: silentLogger, settings: async () => settings, archive: async () => archive, metadata: async () => ({}) });
    handlers = new Map();
    service.register({ register: (purpose, h) => handlers.set(purpose, h) });
  });
  afterEach(async () => {
    await store.close();
  });

  const job = { id: 'archive:batch:1', purpose: 'archive.batch', target: 'archive', payload: {}, state: 'active', attempts: 0, maxAttempts: 10, runAt: NOW, lastError: null, createdAt: NOW, updatedAt: NOW } as JobRecord;
  const runBatch = () => (handlers.get('archive.batch') as (j: JobRecord) => Promise<void>)(job);
  async function addMessage(id: string, over: Partial<StoredMessage> = {}): Promise<void> {
    const rawKey = `blob:raw:${id}`;
    await new StoreBlobStore(store).put(rawKey, new TextEncoder().encode(`Message-ID: <${id}@x>\r\n\r\nbody ${id}\r\n`));
    const m = { id, sessionId: 'S1', direction: 'inbound', receivedAt: new Date(NOW - 1000).toISOString(), rawKey, rev: 1, ...over };
    await store.commit([{ op: 'put', key: `smsg:${id}`, value: m }, ...archiveWrites(id, NOW - 1000).ops]);
  }
  const pending = async () => (await store.indexRange('archive:pending', { limit: 100 })).map((e) => e.member);
  const ref = async (id: string) => ((await store.get<{ archive?: { key: string } }>(`smsg:${id}`)) ?? {}).archive;

  it('writes every pending message and records the references in one go', async () => {
    for (const id of ['m1', 'm2', 'm3']) await addMessage(id);
    await runBatch();
    expect(await pending()).toEqual([]);
    for (const id of ['m1', 'm2', 'm3']) expect((await ref(id))?.key).toMatch(new RegExp(`^mail/S1/.+_eml_${id}\\.eml$`));
    expect(archive.objects.size).toBe(3);
    // A replay writes nothing again.
    await runBatch();
    expect(archive.puts).toBe(3);
    expect((await service.lastStatus()).lastError).toBeNull();
  });

  it('a message that cannot be named is skipped, never blocking the others', async () => {
    await addMessage('bad', { receivedAt: 'not a date' });
    await addMessage('good');
    await runBatch();
    expect(await pending()).toEqual([]);
    expect(await ref('good')).toBeTruthy();
    expect(await ref('bad')).toBeUndefined();
  });

  it('a failing object keeps what was written, reports the failure, and is retried', async () => {
    for (const id of ['ok1', 'fail1', 'ok2']) await addMessage(id);
    archive.failKeys.add('fail1');
    await expect(runBatch()).rejects.toBeInstanceOf(ArchiveError);
    expect(await ref('ok1')).toBeTruthy();
    expect(await ref('ok2')).toBeTruthy();
    expect(await pending()).toEqual(['fail1']);
    expect((await service.lastStatus()).lastError).toBe('network');
    archive.failKeys.clear();
    await runBatch();
    expect(await pending()).toEqual([]);
    expect(archive.objects.size).toBe(3);
  });

  it('runs one batch at a time', async () => {
    await addMessage('m1');
    await store.put('archive-batch-lock', 'someone-else', { ttlMs: 60_000 });
    await expect(runBatch()).rejects.toBeInstanceOf(RetryLaterError);
    expect(archive.puts).toBe(0);
    await store.delete('archive-batch-lock');
    await runBatch();
    expect(archive.puts).toBe(1);
  });

  it('the safety net queues a batch only for stranded messages with no archive job alive', async () => {
    const enqueued: JobSpec[] = [];
    let alive = 1;
    const jobs = { enqueue: async (specs: JobSpec[]) => void enqueued.push(...specs), counts: async () => ({ waiting: alive, delayed: 0, active: 0, completed: 0, failed: 0 }) };
    expect(await service.reconcile(jobs, 0)).toBe(0);
    await addMessage('m1');
    expect(await service.reconcile(jobs, 0)).toBe(1);
    expect(enqueued).toEqual([]);
    alive = 0;
    await service.reconcile(jobs, 0);
    expect(enqueued.map((j) => j.purpose)).toEqual(['archive.batch']);
  });
});

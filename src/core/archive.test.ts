// Unit tests of the archive core: object naming (R-STO-4) and the connection probe (R-STO-3) over in-memory stores.
import { describe, expect, it } from 'vitest';
import { ArchiveError, archiveObjectKey, archiveProbePrefix, archiveSessionPrefix, normalizeArchiveFolder, probeArchive, type ArchiveStore } from './archive.js';

/** An in-memory ArchiveStore; `fail` makes one operation throw, `corrupt` changes what `get` answers. */
class MemoryArchive implements ArchiveStore {
  readonly objects = new Map<string, { data: Uint8Array; contentType: string }>();
  readonly calls: string[] = [];
  fail: Partial<Record<'put' | 'get' | 'list' | 'delete', Error>> = {};
  corrupt = false;
  hideFromList = false;

  async put(key: string, data: Uint8Array, contentType: string): Promise<void> {
    this.calls.push(`put ${key}`);
    if (this.fail.put) throw this.fail.put;
    this.objects.set(key, { data: new Uint8Array(data), contentType });
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    this.calls.push(`get ${key}`);
    if (this.fail.get) throw this.fail.get;
    const found = this.objects.get(key)?.data;
    if (found && this.corrupt) return found.map((b) => b ^ 1);
    return found;
  }
  async list(prefix: string, limit: number): Promise<string[]> {
    this.calls.push(`list ${prefix}`);
    if (this.fail.list) throw this.fail.list;
    if (this.hideFromList) return [];
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort().slice(0, limit);
  }
  async delete(key: string): Promise<void> {
    this.calls.push(`delete ${key}`);
    if (this.fail.delete) throw this.fail.delete;
    this.objects.delete(key);
  }
  describe(): string {
    return 'memory';
  }
}

const NOW = Date.UTC(2026, 10, 27, 21, 47, 8, 123);

describe('archiveObjectKey', () => {
  it('names objects <folder>/<session>/<time>_<kind>_<id>.<ext> with a path-safe ISO time', () => {
    expect(archiveObjectKey('mail', 'S7K2M9QX4TB', NOW, 'eml', 'msg_1')).toBe('mail/S7K2M9QX4TB/2026-11-27T21-47-08.123Z_eml_msg_1.eml');
    expect(archiveObjectKey('mail', 'S7K2M9QX4TB', NOW, 'pdf', 'p1')).toBe('mail/S7K2M9QX4TB/2026-11-27T21-47-08.123Z_pdf_p1.pdf');
    expect(archiveObjectKey('mail', 'S7K2M9QX4TB', NOW, 'metadata', 'm1')).toBe('mail/S7K2M9QX4TB/2026-11-27T21-47-08.123Z_metadata_m1.json');
    expect(archiveObjectKey('mail', 'S7K2M9QX4TB', NOW, 'transcript', 't1')).toBe('mail/S7K2M9QX4TB/2026-11-27T21-47-08.123Z_transcript_t1.json');
  });

  it('strips the slashes around the folder, and an empty folder gives no leading slash', () => {
    expect(archiveObjectKey('', 'S1', NOW, 'eml', 'a')).toBe('S1/2026-11-27T21-47-08.123Z_eml_a.eml');
    expect(archiveObjectKey('/', 'S1', NOW, 'eml', 'a')).toBe('S1/2026-11-27T21-47-08.123Z_eml_a.eml');
    expect(archiveObjectKey('/a/b/', 'S1', NOW, 'eml', 'a')).toBe('a/b/S1/2026-11-27T21-47-08.123Z_eml_a.eml');
  });

  it('sorts by time within a session, and distinct ids never collide at the same instant', () => {
    const times = [NOW + 1000, NOW, NOW + 61_000, NOW - 86_400_000, NOW + 10 * 3_600_000];
    const keys = times.map((t, i) => ({ t, key: archiveObjectKey('f', 'S1', t, 'eml', `m${i}`) }));
    const byName = [...keys].sort((a, b) => (a.key < b.key ? -1 : 1)).map((k) => k.t);
    expect(byName).toEqual([...times].sort((a, b) => a - b));
    expect(archiveObjectKey('f', 'S1', NOW, 'eml', 'a')).not.toBe(archiveObjectKey('f', 'S1', NOW, 'eml', 'b'));
  });

  it('refuses ids, session ids and folders that are unsafe in a key or a path', () => {
    for (const bad of ['', '..', '.', 'a/b', 'a b', 'a\\b', 'é', 'x'.repeat(129)]) {
      expect(() => archiveObjectKey('f', bad, NOW, 'eml', 'ok')).toThrow(RangeError);
    }
    for (const bad of ['', 'a/b', 'a:b', 'a\nb']) expect(() => archiveObjectKey('f', 'S1', NOW, 'eml', bad)).toThrow(RangeError);
    for (const bad of ['a//b', '../x', 'a/./b', 'a b']) expect(() => archiveObjectKey(bad, 'S1', NOW, 'eml', 'ok')).toThrow(RangeError);
    expect(() => archiveObjectKey('f', 'S1', Number.NaN, 'eml', 'ok')).toThrow(RangeError);
  });

  it('gives the session and probe prefixes under the folder', () => {
    expect(archiveSessionPrefix('/mail/', 'S1')).toBe('mail/S1/');
    expect(archiveProbePrefix('')).toBe('.probe/');
    expect(archiveProbePrefix('a/b')).toBe('a/b/.probe/');
    expect(normalizeArchiveFolder('//x/y//')).toBe('x/y');
  });
});

describe('probeArchive', () => {
  it('writes, reads back, lists and deletes a probe object under the folder', async () => {
    const store = new MemoryArchive();
    expect(await probeArchive(store, 'mail', NOW, 'r4nd')).toEqual({ ok: true });
    const key = `mail/.probe/${NOW}-r4nd.txt`;
    expect(store.calls).toEqual([`put ${key}`, `get ${key}`, 'list mail/.probe/', `delete ${key}`]);
    expect(store.objects.size).toBe(0);
  });

  it('maps an ArchiveError to its code, keeping the provider words and naming the step', async () => {
    const store = new MemoryArchive();
    store.fail.put = new ArchiveError('no_bucket', 'NoSuchBucket: The specified bucket does not exist');
    const result = await probeArchive(store, '', NOW, 'x');
    expect(result).toEqual({ ok: false, error: { code: 'no_bucket', message: 'writing the probe object failed: NoSuchBucket: The specified bucket does not exist' } });
  });

  it('reports a failure after the write and still removes the probe', async () => {
    const store = new MemoryArchive();
    store.fail.list = new ArchiveError('forbidden', 'AccessDenied: Access Denied');
    const result = await probeArchive(store, 'f', NOW, 'x');
    expect(result).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(!result.ok && result.error.message).toContain('listing the probe folder failed: AccessDenied: Access Denied');
    expect(store.objects.size).toBe(0);
  });

  it('maps any other thrown error to unknown', async () => {
    const store = new MemoryArchive();
    store.fail.get = new TypeError('boom');
    expect(await probeArchive(store, 'f', NOW, 'x')).toEqual({ ok: false, error: { code: 'unknown', message: 'reading the probe object back failed: boom' } });
  });

  it('catches a store that answers other bytes or does not list what it stored', async () => {
    const corrupt = new MemoryArchive();
    corrupt.corrupt = true;
    expect(await probeArchive(corrupt, 'f', NOW, 'x')).toMatchObject({ ok: false, error: { code: 'unknown', message: expect.stringContaining('differ') } });
    expect(corrupt.objects.size).toBe(0);
    const hidden = new MemoryArchive();
    hidden.hideFromList = true;
    expect(await probeArchive(hidden, 'f', NOW, 'x')).toMatchObject({ ok: false, error: { code: 'unknown', message: expect.stringContaining('not listed') } });
  });

  it('marks network and timeout errors transient, others not (unless told)', () => {
    expect(new ArchiveError('network', 'x').transient).toBe(true);
    expect(new ArchiveError('timeout', 'x').transient).toBe(true);
    expect(new ArchiveError('auth', 'x').transient).toBe(false);
    expect(new ArchiveError('unknown', 'x', { transient: true }).transient).toBe(true);
  });
});

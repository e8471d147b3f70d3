// The Store contract: one suite every backend runs (store.test.ts), with reasoned skips (DESIGN habit 1).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitConflictError, StoreUnavailableError, type IndexEntry, type JobSpec, type Store, type WriteOp } from '../../core/ports.js';

export interface StoreHarness {
  store: Store;
  /** Another handle on the same data (a second connection or file handle), for cross-instance concurrency. */
  second(): Promise<Store>;
  /** Ids of the jobs `commit` recorded (embedded: rows of the jobs table; Redis: what the sink received). */
  recordedJobIds(): Promise<string[]>;
  /** Closes every handle the harness opened and removes its data. */
  dispose(): Promise<void>;
}

export interface StoreContractOptions {
  /** Takes the backend down and brings it back (Redis: kill -9 and restart the server). */
  outage?: { down(): Promise<void>; up(): Promise<void> };
  /** Tests this backend cannot run, each with the reason. */
  skip?: { test: string; reason: string }[];
}

/** Ordering of index members: by score, then by the member's UTF-8 bytes (Redis and SQLite BINARY both use memcmp). */
export function compareEntries(a: IndexEntry, b: IndexEntry): number {
  if (a.score !== b.score) return a.score < b.score ? -1 : 1;
  return Buffer.compare(Buffer.from(a.member, 'utf8'), Buffer.from(b.member, 'utf8'));
}

async function pageAll(store: Store, index: string, opts: { reverse?: boolean; min?: number; max?: number; limit: number }): Promise<IndexEntry[]> {
  const all: IndexEntry[] = [];
  let after: IndexEntry | undefined;
  for (let page = 0; page < 1000; page++) {
    const items = await store.indexRange(index, { ...opts, ...(after ? { after } : {}) });
    all.push(...items);
    if (items.length < opts.limit) return all;
    after = items[items.length - 1];
  }
  throw new Error('paging did not finish within 1000 pages');
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Runs `p`, expecting it to reject with CommitConflictError naming `key`. */
async function expectConflict(p: Promise<unknown>, key: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a CommitConflictError on ${key}`).toBeInstanceOf(CommitConflictError);
  expect((err as CommitConflictError).key).toBe(key);
}

const job = (id: string): JobSpec => ({ id, purpose: 'test', target: 'test:contract', payload: { id, text: 'héllo' } });

export function runStoreContract(name: string, makeStore: () => Promise<StoreHarness>, options: StoreContractOptions = {}): void {
  const skips = new Map((options.skip ?? []).map((s) => [s.test, s.reason]));
  if (!options.outage && !skips.has('outage and recovery')) {
    throw new Error(`${name}: the contract needs an outage hook or a reasoned skip for 'outage and recovery'`);
  }
  const test = (title: string, fn: () => Promise<void>, timeout?: number) => {
    const reason = skips.get(title);
    if (reason !== undefined) it.skip(`${title} (skipped: ${reason})`, () => undefined);
    else it(title, fn, timeout);
  };

  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      h = await makeStore();
      store = h.store;
    });
    afterEach(async () => {
      await h.dispose();
    });

    test('get/put/delete', async () => {
      expect(await store.get('doc:1')).toBeUndefined();
      await store.put('doc:1', { a: 1 });
      expect(await store.get('doc:1')).toEqual({ a: 1 });
      await store.put('doc:1', { a: 2 });
      expect(await store.get('doc:1')).toEqual({ a: 2 });
      expect(await store.delete('doc:1')).toBe(true);
      expect(await store.delete('doc:1')).toBe(false);
      expect(await store.get('doc:1')).toBeUndefined();
      // Keys that look like the backend's own namespace are still just keys.
      await store.put('ec:looks-prefixed', 1);
      expect(await store.getMany(['ec:looks-prefixed'])).toEqual([1]);
      expect(await store.get('ec:looks-prefixed')).toBe(1);
    });

    test('getMany', async () => {
      expect(await store.getMany([])).toEqual([]);
      await store.put('m:1', 'one');
      await store.put('m:3', { three: 3 });
      expect(await store.getMany(['m:1', 'm:2', 'm:3', 'm:1'])).toEqual(['one', undefined, { three: 3 }, 'one']);
    });

    test('values: unicode, nested objects, scalars', async () => {
      const values: Record<string, unknown> = {
        'v:unicode': 'Grüße, 日本語, emoji 📨🧵, RTL שלום, "quotes" \\ back\nslash',
        'v:nested': { a: [1, { b: [true, null, 'x'] }], c: { d: { e: { f: 'deep ✓' } } }, empty: {}, list: [] },
        'v:number': 12.5,
        'v:zero': 0,
        'v:false': false,
        'v:null': null,
        'v:empty': '',
        'v:array': [1, 'two', { three: 3 }],
        'v:big': { text: 'x'.repeat(200_000) },
      };
      for (const [k, v] of Object.entries(values)) await store.put(k, v);
      for (const [k, v] of Object.entries(values)) expect(await store.get(k)).toEqual(v);
      expect(await store.getMany(Object.keys(values))).toEqual(Object.values(values));
      await store.commit([{ op: 'put', key: 'v:commit', value: values['v:nested'] }]);
      expect(await store.get('v:commit')).toEqual(values['v:nested']);
      expect(await store.update('v:upd', () => values['v:unicode'])).toEqual(values['v:unicode']);
      expect(await store.get('v:upd')).toEqual(values['v:unicode']);
      expect(await store.putIfAbsent('v:pia', values['v:nested'])).toBe(true);
      expect(await store.get('v:pia')).toEqual(values['v:nested']);
      // Unicode keys.
      await store.put('clé:📨', 'ok');
      expect(await store.get('clé:📨')).toBe('ok');
    });

    test('TTL expiry reads as absent everywhere', async () => {
      await store.put('t:put', 'p', { ttlMs: 80 });
      expect(await store.putIfAbsent('t:pia', 'i', { ttlMs: 80 })).toBe(true);
      expect(await store.incr('t:ctr', 1, { ttlMs: 80 })).toBe(1);
      expect(await store.incr('t:ctr', 1, { ttlMs: 10_000 })).toBe(2); // ttl only applies on creation
      await store.update('t:upd', () => 'u', { ttlMs: 80 });
      await store.commit([{ op: 'put', key: 't:commit', value: 'c', ttlMs: 80 }]);
      await store.put('t:keep', 'k', { ttlMs: 80 });
      await store.put('t:keep', 'k2'); // a put without TTL makes it permanent
      await store.put('t:kept-ttl', 1, { ttlMs: 80 });
      await store.update<number>('t:kept-ttl', (v) => (v ?? 0) + 1); // update without TTL keeps the expiry
      const keys = ['t:put', 't:pia', 't:ctr', 't:upd', 't:commit', 't:kept-ttl'];
      expect(await store.getMany(keys)).toEqual(['p', 'i', 2, 'u', 'c', 2]);

      await sleep(250);
      for (const k of keys) expect(await store.get(k), k).toBeUndefined();
      expect(await store.getMany(keys)).toEqual(keys.map(() => undefined));
      expect(await store.get('t:keep')).toBe('k2');
      expect(await store.delete('t:put')).toBe(false);
      expect(await store.putIfAbsent('t:pia', 'again')).toBe(true);
      expect(await store.get('t:pia')).toBe('again');
      expect(await store.incr('t:ctr')).toBe(1);
      let seen: unknown = 'not called';
      await store.update('t:upd', (cur) => {
        seen = cur;
        return 'fresh';
      });
      expect(seen).toBeUndefined();
      expect(await store.get('t:upd')).toBe('fresh');
    });

    test('putIfAbsent', async () => {
      expect(await store.putIfAbsent('idem:x', { n: 1 })).toBe(true);
      expect(await store.putIfAbsent('idem:x', { n: 2 })).toBe(false);
      expect(await store.get('idem:x')).toEqual({ n: 1 });
      const other = await h.second();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).putIfAbsent('idem:race', i)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    test('update', async () => {
      expect(await store.update<number>('u:1', (v) => (v ?? 10) + 1)).toBe(11);
      expect(await store.update<number>('u:1', (v) => (v ?? 10) + 1)).toBe(12);
      expect(await store.get('u:1')).toBe(12);
      // The stored (JSON) value is returned.
      expect(await store.update('u:date', () => ({ at: new Date(0) }))).toEqual({ at: '1970-01-01T00:00:00.000Z' });
      // undefined deletes.
      expect(await store.update('u:1', () => undefined)).toBeUndefined();
      expect(await store.get('u:1')).toBeUndefined();
      expect(await store.update('u:absent', () => undefined)).toBeUndefined();
      expect(await store.get('u:absent')).toBeUndefined();
      // An error thrown by fn propagates and leaves the value alone.
      await store.put('u:2', 'keep');
      const boom = new Error('boom');
      await expect(
        store.update('u:2', () => {
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await store.get('u:2')).toBe('keep');
      // fn runs inside the atomic section: a promise is refused, not stored.
      await expect(store.update<unknown>('u:2', async () => 'later')).rejects.toThrow(TypeError);
      expect(await store.get('u:2')).toBe('keep');
    });

    test('update concurrency: 50 concurrent increments end at exactly 50', async () => {
      const other = await h.second();
      await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? store : other).update<number>('u:n', (v) => (v ?? 0) + 1)));
      expect(await store.get('u:n')).toBe(50);
      expect(await other.get('u:n')).toBe(50);
    });

    test('incr', async () => {
      expect(await store.incr('c:1')).toBe(1);
      expect(await store.incr('c:1', 5)).toBe(6);
      expect(await store.incr('c:1', -2)).toBe(4);
      expect(await store.get('c:1')).toBe(4);
      expect(await store.getMany(['c:1'])).toEqual([4]);
      await store.put('c:str', 'text');
      await expect(store.incr('c:str')).rejects.toThrow(TypeError);
      expect(await store.get('c:str')).toBe('text');
      await expect(store.incr('c:1', 1.5)).rejects.toThrow(RangeError);
    });

    test('incr concurrency', async () => {
      const other = await h.second();
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? store : other).incr('c:n')));
      expect(await store.get('c:n')).toBe(100);
      expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    });

    test('index add/score/remove/count', async () => {
      expect(await store.indexScore('ix', 'a')).toBeUndefined();
      expect(await store.indexCount('ix')).toBe(0);
      await store.indexAdd('ix', 'a', 1);
      await store.indexAdd('ix', 'b', 2.5);
      await store.indexAdd('ix', 'c', -3);
      await store.indexAdd('ix', 'a', 10); // re-adding moves the member
      expect(await store.indexScore('ix', 'a')).toBe(10);
      expect(await store.indexScore('ix', 'b')).toBe(2.5);
      expect(await store.indexCount('ix')).toBe(3);
      expect(await store.indexCount('ix', 0)).toBe(2);
      expect(await store.indexCount('ix', -3, 2.5)).toBe(2);
      expect(await store.indexCount('ix', 3, 9)).toBe(0);
      await store.indexRemove('ix', 'b');
      await store.indexRemove('ix', 'missing');
      expect(await store.indexScore('ix', 'b')).toBeUndefined();
      expect(await store.indexCount('ix')).toBe(2);
      // Indexes are separate from each other and from documents.
      await store.put('ix', 'a document named like the index');
      expect(await store.indexCount('ix2')).toBe(0);
      expect(await store.indexCount('ix')).toBe(2);
      // Large and infinite scores.
      await store.indexAdd('ix', 'ts', 1_732_000_000_123);
      await store.indexAdd('ix', 'top', Infinity);
      expect(await store.indexScore('ix', 'ts')).toBe(1_732_000_000_123);
      expect(await store.indexScore('ix', 'top')).toBe(Infinity);
    });

    test('index range: ascending, descending, min, max, limit', async () => {
      for (const [m, s] of [['a', 1], ['b', 2], ['c', 3], ['d', 4], ['e', 5]] as const) await store.indexAdd('r', m, s);
      const members = (xs: IndexEntry[]) => xs.map((x) => x.member);
      expect(await store.indexRange('r', { limit: 10 })).toEqual([
        { member: 'a', score: 1 },
        { member: 'b', score: 2 },
        { member: 'c', score: 3 },
        { member: 'd', score: 4 },
        { member: 'e', score: 5 },
      ]);
      expect(members(await store.indexRange('r', { limit: 2 }))).toEqual(['a', 'b']);
      expect(members(await store.indexRange('r', { reverse: true, limit: 2 }))).toEqual(['e', 'd']);
      expect(members(await store.indexRange('r', { min: 2, max: 4, limit: 10 }))).toEqual(['b', 'c', 'd']);
      expect(members(await store.indexRange('r', { min: 2, max: 4, reverse: true, limit: 10 }))).toEqual(['d', 'c', 'b']);
      expect(members(await store.indexRange('r', { min: 2.5, limit: 10 }))).toEqual(['c', 'd', 'e']);
      expect(members(await store.indexRange('r', { max: 2.5, reverse: true, limit: 10 }))).toEqual(['b', 'a']);
      expect(await store.indexRange('r', { limit: 0 })).toEqual([]);
      expect(await store.indexRange('r', { min: 4, max: 2, limit: 10 })).toEqual([]);
      expect(await store.indexRange('missing', { limit: 10 })).toEqual([]);
      // A cursor outside the bounds is no tighter than the bound.
      expect(members(await store.indexRange('r', { min: 3, limit: 10, after: { member: 'a', score: 1 } }))).toEqual(['c', 'd', 'e']);
      expect(members(await store.indexRange('r', { max: 3, reverse: true, limit: 10, after: { member: 'e', score: 5 } }))).toEqual(['c', 'b', 'a']);
      // Cursor within bounds.
      expect(members(await store.indexRange('r', { max: 4, limit: 10, after: { member: 'b', score: 2 } }))).toEqual(['c', 'd']);
      expect(members(await store.indexRange('r', { min: 2, reverse: true, limit: 10, after: { member: 'd', score: 4 } }))).toEqual(['c', 'b']);
    });

    test('cursor paging over many equal scores covers every member exactly once', async () => {
      const entries: IndexEntry[] = [];
      const odd = ['é', 'z', 'Z', '😀', '\uffff', 'a b', 'A', '0', 'ä', 'aa'];
      for (let i = 0; i < 120; i++) entries.push({ member: `m${i % 7}-${odd[i % odd.length]}-${i}`, score: i % 3 });
      entries.push({ member: 'solo', score: -1 }, { member: 'last', score: 99 });
      await store.commit(entries.map((e) => ({ op: 'index' as const, index: 'p', member: e.member, score: e.score })));
      const expected = [...entries].sort(compareEntries);
      for (const limit of [1, 7, 40, 200]) {
        expect(await pageAll(store, 'p', { limit })).toEqual(expected);
        expect(await pageAll(store, 'p', { limit, reverse: true })).toEqual([...expected].reverse());
      }
      const bounded = expected.filter((e) => e.score >= 0 && e.score <= 1);
      expect(await pageAll(store, 'p', { limit: 9, min: 0, max: 1 })).toEqual(bounded);
      expect(await pageAll(store, 'p', { limit: 9, min: 0, max: 1, reverse: true })).toEqual([...bounded].reverse());
    });

    test('cursor paging resumes after a member that was removed or never existed', async () => {
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      for (const m of names) await store.indexAdd('q', m, 5);
      await store.indexAdd('q', 'x', 6);
      const page1 = await store.indexRange('q', { limit: 3 });
      expect(page1.map((e) => e.member)).toEqual(['a', 'b', 'c']);
      await store.indexRemove('q', 'c');
      const page2 = await store.indexRange('q', { limit: 3, after: page1[2] as IndexEntry });
      expect(page2.map((e) => e.member)).toEqual(['d', 'e', 'f']);
      // A cursor entry that never existed, between members and between scores.
      expect((await store.indexRange('q', { limit: 10, after: { member: 'bb', score: 5 } })).map((e) => e.member)).toEqual(['d', 'e', 'f', 'x']);
      expect((await store.indexRange('q', { limit: 10, reverse: true, after: { member: 'dd', score: 5 } })).map((e) => e.member)).toEqual(['d', 'b', 'a']);
      expect((await store.indexRange('q', { limit: 10, after: { member: 'zzz', score: 5.5 } })).map((e) => e.member)).toEqual(['x']);
      // A member that moved: its old entry is still a valid position.
      await store.indexAdd('q', 'b', 7);
      expect((await store.indexRange('q', { limit: 2, after: { member: 'b', score: 5 } })).map((e) => e.member)).toEqual(['d', 'e']);
    });

    test('commit applies puts, deletes and index ops atomically and in order', async () => {
      await store.put('cm:old', 'old');
      await store.indexAdd('cm:ix', 'gone', 1);
      await store.commit([
        { op: 'put', key: 'cm:a', value: { a: 1 } },
        { op: 'put', key: 'cm:b', value: 'b' },
        { op: 'del', key: 'cm:old' },
        { op: 'index', index: 'cm:ix', member: 'a', score: 10 },
        { op: 'index', index: 'cm:ix', member: 'b', score: 20 },
        { op: 'unindex', index: 'cm:ix', member: 'gone' },
        { op: 'put', key: 'cm:tmp', value: 1 },
        { op: 'del', key: 'cm:tmp' },
        { op: 'put', key: 'cm:b', value: 'b2' },
      ]);
      expect(await store.getMany(['cm:a', 'cm:b', 'cm:old', 'cm:tmp'])).toEqual([{ a: 1 }, 'b2', undefined, undefined]);
      expect(await store.indexRange('cm:ix', { limit: 10 })).toEqual([
        { member: 'a', score: 10 },
        { member: 'b', score: 20 },
      ]);
      await store.commit([]);
    });

    test('commit writes nothing when an op is invalid', async () => {
      await expect(
        store.commit([
          { op: 'put', key: 'bad:a', value: 1 },
          { op: 'index', index: 'bad:ix', member: 'a', score: 1 },
          { op: 'put', key: 'bad:b', value: { n: 10n } },
        ]),
      ).rejects.toThrow(TypeError);
      await expect(store.commit([{ op: 'put', key: 'bad:a', value: 1 }, { op: 'index', index: 'bad:ix', member: 'a', score: Number.NaN }])).rejects.toThrow(
        RangeError,
      );
      expect(await store.get('bad:a')).toBeUndefined();
      expect(await store.indexCount('bad:ix')).toBe(0);
    });

    test('commit with jobs records them with the writes', async () => {
      await store.commit([{ op: 'put', key: 'j:state', value: 'sent' }], [job('job-1'), job('job-2')]);
      expect(await store.get('j:state')).toBe('sent');
      expect((await h.recordedJobIds()).sort()).toEqual(['job-1', 'job-2']);
      // Replaying the same commit is harmless.
      await store.commit([{ op: 'put', key: 'j:state', value: 'sent' }], [job('job-1')]);
      expect(new Set(await h.recordedJobIds())).toEqual(new Set(['job-1', 'job-2']));
    });

    test('commit check: null passes on an absent key and the commit is applied', async () => {
      await store.commit(
        [
          { op: 'check', key: 'ck:new', rev: null },
          { op: 'put', key: 'ck:new', value: { rev: 1, text: 'created' } },
          { op: 'index', index: 'ck:ix', member: 'new', score: 1 },
        ],
        [job('ck-job-1')],
      );
      expect(await store.get('ck:new')).toEqual({ rev: 1, text: 'created' });
      expect(await store.indexScore('ck:ix', 'new')).toBe(1);
      expect(await h.recordedJobIds()).toEqual(['ck-job-1']);
      // A commit of checks alone writes nothing and succeeds.
      await store.commit([{ op: 'check', key: 'ck:new', rev: 1 }, { op: 'check', key: 'ck:other', rev: null }]);
      expect(await store.get('ck:other')).toBeUndefined();
    });

    test('commit check: null on an existing key conflicts and nothing of the commit is applied', async () => {
      await store.put('ck:exists', { rev: 3 });
      await store.put('ck:victim', 'untouched');
      await store.indexAdd('ck:ix', 'kept', 5);
      await expectConflict(
        store.commit(
          [
            { op: 'put', key: 'ck:other', value: { rev: 1 } },
            { op: 'index', index: 'ck:ix', member: 'added', score: 1 },
            { op: 'unindex', index: 'ck:ix', member: 'kept' },
            { op: 'del', key: 'ck:victim' },
            { op: 'put', key: 'ck:exists', value: { rev: 1 } },
            { op: 'check', key: 'ck:exists', rev: null },
          ],
          [job('ck-job-x')],
        ),
        'ck:exists',
      );
      expect(await store.getMany(['ck:exists', 'ck:other', 'ck:victim'])).toEqual([{ rev: 3 }, undefined, 'untouched']);
      expect(await store.indexRange('ck:ix', { limit: 10 })).toEqual([{ member: 'kept', score: 5 }]);
      expect(await h.recordedJobIds()).toEqual([]);
      // Any value counts as existing, even one without a rev, and `null`.
      await store.put('ck:scalar', 7);
      await store.put('ck:null', null);
      await expectConflict(store.commit([{ op: 'check', key: 'ck:scalar', rev: null }]), 'ck:scalar');
      await expectConflict(store.commit([{ op: 'check', key: 'ck:null', rev: null }]), 'ck:null');
    });

    test('commit check: a numeric rev must match the stored document exactly', async () => {
      await store.put('ck:doc', { rev: 4, body: 'four' });
      await store.commit([
        { op: 'check', key: 'ck:doc', rev: 4 },
        { op: 'put', key: 'ck:doc', value: { rev: 5, body: 'five' } },
        { op: 'index', index: 'ck:ix', member: 'doc', score: 5 },
      ]);
      expect(await store.get('ck:doc')).toEqual({ rev: 5, body: 'five' });
      for (const stale of [4, 6, 0, -5]) {
        await expectConflict(
          store.commit([{ op: 'put', key: 'ck:doc', value: { rev: 99 } }, { op: 'check', key: 'ck:doc', rev: stale }, { op: 'del', key: 'ck:doc' }], [job(`stale-${stale}`)]),
          'ck:doc',
        );
      }
      expect(await store.get('ck:doc')).toEqual({ rev: 5, body: 'five' });
      expect(await store.indexRange('ck:ix', { limit: 10 })).toEqual([{ member: 'doc', score: 5 }]);
      expect(await h.recordedJobIds()).toEqual([]);
      // A numeric check on an absent key fails.
      await expectConflict(store.commit([{ op: 'check', key: 'ck:absent', rev: 0 }, { op: 'put', key: 'ck:absent', value: { rev: 1 } }]), 'ck:absent');
      expect(await store.get('ck:absent')).toBeUndefined();
      // Large integers (below 2^53) compare exactly; negative revs and zero work.
      const big = Number.MAX_SAFE_INTEGER;
      await store.put('ck:big', { rev: big });
      await expectConflict(store.commit([{ op: 'check', key: 'ck:big', rev: big - 1 }]), 'ck:big');
      await store.commit([{ op: 'check', key: 'ck:big', rev: big }]);
      await store.put('ck:big2', { rev: 2 ** 52 + 1 });
      await expectConflict(store.commit([{ op: 'check', key: 'ck:big2', rev: 2 ** 52 }]), 'ck:big2');
      await expectConflict(store.commit([{ op: 'check', key: 'ck:big2', rev: 2 ** 52 + 2 }]), 'ck:big2');
      await store.commit([{ op: 'check', key: 'ck:big2', rev: 2 ** 52 + 1 }]);
      await store.put('ck:neg', { rev: -3 });
      await store.put('ck:zero', { rev: 0, nested: { rev: 9 } });
      await store.commit([{ op: 'check', key: 'ck:neg', rev: -3 }, { op: 'check', key: 'ck:zero', rev: 0 }]);
      await expectConflict(store.commit([{ op: 'check', key: 'ck:zero', rev: 9 }]), 'ck:zero');
    });

    test('commit check: a document without a numeric rev fails', async () => {
      const revless: Record<string, unknown> = {
        'ck:norev': { body: 'no rev' },
        'ck:strrev': { rev: '1' },
        'ck:nullrev': { rev: null },
        'ck:boolrev': { rev: true },
        'ck:objrev': { rev: { n: 1 } },
        'ck:floatrev': { rev: 1.5 },
        'ck:array': [1, 2],
        'ck:number': 1,
        'ck:string': '1',
        'ck:nullvalue': null,
        'ck:empty': {},
      };
      for (const [k, v] of Object.entries(revless)) await store.put(k, v);
      for (const k of Object.keys(revless)) {
        await expectConflict(store.commit([{ op: 'check', key: k, rev: 1 }, { op: 'put', key: 'ck:written', value: k }]), k);
        await expectConflict(store.commit([{ op: 'check', key: k, rev: null }, { op: 'put', key: 'ck:written', value: k }]), k);
      }
      expect(await store.get('ck:written')).toBeUndefined();
      expect(await store.getMany(Object.keys(revless))).toEqual(Object.values(revless));
    });

    test('commit check: the first failing check is reported; checks see the state before the commit', async () => {
      await store.put('ck:a', { rev: 1 });
      await store.put('ck:b', { rev: 2 });
      await expectConflict(
        store.commit([
          { op: 'check', key: 'ck:a', rev: 1 },
          { op: 'put', key: 'ck:a', value: { rev: 2 } },
          { op: 'check', key: 'ck:b', rev: 1 },
          { op: 'check', key: 'ck:c', rev: 7 },
        ]),
        'ck:b',
      );
      expect(await store.getMany(['ck:a', 'ck:b'])).toEqual([{ rev: 1 }, { rev: 2 }]);
      // A check placed after a put (or del) of its key is judged against the stored document, not the commit's own write.
      await store.commit([
        { op: 'put', key: 'ck:a', value: { rev: 2 } },
        { op: 'del', key: 'ck:b' },
        { op: 'check', key: 'ck:a', rev: 1 },
        { op: 'check', key: 'ck:b', rev: 2 },
      ]);
      expect(await store.getMany(['ck:a', 'ck:b'])).toEqual([{ rev: 2 }, undefined]);
      await expectConflict(store.commit([{ op: 'put', key: 'ck:new2', value: { rev: 1 } }, { op: 'check', key: 'ck:new2', rev: 1 }]), 'ck:new2');
      expect(await store.get('ck:new2')).toBeUndefined();
    });

    test('commit check: an expired key counts as absent', async () => {
      await store.put('ck:ttl', { rev: 1 }, { ttlMs: 80 });
      await store.commit([{ op: 'put', key: 'ck:ttl2', value: { rev: 1 }, ttlMs: 80 }]);
      await expectConflict(store.commit([{ op: 'check', key: 'ck:ttl', rev: null }]), 'ck:ttl');
      await store.commit([{ op: 'check', key: 'ck:ttl2', rev: 1 }]);
      await sleep(250);
      await expectConflict(store.commit([{ op: 'check', key: 'ck:ttl', rev: 1 }]), 'ck:ttl');
      await store.commit([
        { op: 'check', key: 'ck:ttl', rev: null },
        { op: 'check', key: 'ck:ttl2', rev: null },
        { op: 'put', key: 'ck:ttl', value: { rev: 1, again: true } },
      ]);
      expect(await store.getMany(['ck:ttl', 'ck:ttl2'])).toEqual([{ rev: 1, again: true }, undefined]);
    });

    test('commit check: argument checks', async () => {
      const bad: Array<[WriteOp, typeof TypeError | typeof RangeError]> = [
        [{ op: 'check', key: '', rev: null }, TypeError],
        [{ op: 'check', key: 'ck:k', rev: 1.5 }, RangeError],
        [{ op: 'check', key: 'ck:k', rev: Number.NaN }, RangeError],
        [{ op: 'check', key: 'ck:k', rev: Infinity }, RangeError],
        [{ op: 'check', key: 'ck:k', rev: '1' as unknown as number }, RangeError],
        [{ op: 'check', key: 'ck:k', rev: undefined as unknown as null }, RangeError],
      ];
      for (const [op, type] of bad) {
        await expect(store.commit([{ op: 'put', key: 'ck:k', value: 1 }, op], [job('ck-bad')])).rejects.toThrow(type);
      }
      expect(await store.get('ck:k')).toBeUndefined();
      expect(await h.recordedJobIds()).toEqual([]);
    });

    test(
      'commit check concurrency: 50 read-modify-commit loops end at exactly rev 50',
      async () => {
        const other = await h.second();
        await store.commit([{ op: 'check', key: 'ck:counter', rev: null }, { op: 'put', key: 'ck:counter', value: { rev: 0, log: [] } }]);
        let conflicts = 0;
        const MAX_ATTEMPTS = 500;
        const loop = async (s: Store, n: number): Promise<number> => {
          for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
            const cur = await s.get<{ rev: number; log: number[] }>('ck:counter');
            if (!cur) throw new Error('counter document vanished');
            try {
              await s.commit([
                { op: 'put', key: 'ck:counter', value: { rev: cur.rev + 1, log: [...cur.log, n] } },
                { op: 'index', index: 'ck:writers', member: `w${n}`, score: cur.rev + 1 },
                { op: 'check', key: 'ck:counter', rev: cur.rev },
              ]);
              return attempt;
            } catch (err) {
              if (!(err instanceof CommitConflictError)) throw err;
              conflicts++;
              await sleep(Math.floor(Math.random() * 3));
            }
          }
          throw new Error(`writer ${n} gave up after ${MAX_ATTEMPTS} attempts`);
        };
        await Promise.all(Array.from({ length: 50 }, (_, n) => loop(n % 2 ? store : other, n)));
        const final = await other.get<{ rev: number; log: number[] }>('ck:counter');
        expect(final?.rev).toBe(50);
        // Every writer's increment is there exactly once, and the index agrees with the document.
        expect([...(final?.log ?? [])].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, n) => n));
        const writers = await store.indexRange('ck:writers', { limit: 100 });
        expect(writers.map((w) => w.score)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(writers.map((w) => w.member)).toEqual((final?.log ?? []).map((n) => `w${n}`));
        expect(conflicts).toBeGreaterThan(0);
      },
      60_000,
    );

    test('argument checks', async () => {
      await expect(store.put('k', undefined)).rejects.toThrow(TypeError);
      await expect(store.put('k', () => 1)).rejects.toThrow(TypeError);
      await expect(store.put('k', 1, { ttlMs: 0 })).rejects.toThrow(RangeError);
      await expect(store.put('', 1)).rejects.toThrow(TypeError);
      await expect(store.indexAdd('ix', 'm', Number.NaN)).rejects.toThrow(RangeError);
      await expect(store.indexRange('ix', { limit: -1 })).rejects.toThrow(RangeError);
      expect(await store.get('k')).toBeUndefined();
    });

    test(
      'outage and recovery',
      async () => {
        const outage = options.outage;
        if (!outage) throw new Error('no outage hook');
        await store.put('o:before', 'kept');
        expect(await store.ping()).toBe(true);
        await outage.down();
        const started = Date.now();
        await expect(store.get('o:before')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.put('o:during', 1)).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.update('o:during', () => 1)).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.incr('o:ctr')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.commit([{ op: 'put', key: 'o:during', value: 1 }])).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.indexRange('o:ix', { limit: 1, after: { member: 'a', score: 1 } })).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.ping()).toBe(false);
        expect(Date.now() - started).toBeLessThan(15_000);
        await outage.up();
        await waitFor('the store to reconnect', () => store.ping(), 15_000);
        expect(await store.get('o:before')).toBe('kept');
        await store.put('o:after', 'works');
        expect(await store.get('o:after')).toBe('works');
        expect(await store.incr('o:ctr')).toBe(1);
      },
      45_000,
    );
  });
}

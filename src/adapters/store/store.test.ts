// Runs the Store contract against the embedded SQLite store and a real redis-server, plus backend-specific checks.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommitConflictError, StoreUnavailableError, type Clock, type JobSpec, type Store } from '../../core/ports.js';
import { startRedis, type RedisServerHandle } from '../../../test/helpers/redis-server.js';
import { freePort } from '../../../test/helpers/ports.js';
import { maskRedisUrl, openStore } from './index.js';
import { openRedisStore, type RedisStore, type RedisStoreOptions } from './redis-store.js';
import { openSqliteStore, type SqliteStore } from './sqlite-store.js';
import { runStoreContract, type StoreHarness } from './store.contract.js';

/** A TCP proxy to redis that can stop forwarding (buffering bytes) and resume: a server that hangs, then recovers. */
async function startFreezableProxy(targetPort: number): Promise<{ port: number; freeze(): void; thaw(): void; close(): Promise<void> }> {
  let frozen = false;
  let held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    const up = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(down);
    sockets.add(up);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (frozen) held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    pipe(down, up);
    pipe(up, down);
    const end = () => {
      down.destroy();
      up.destroy();
    };
    for (const s of [down, up]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      const pending = held;
      held = [];
      for (const write of pending) write();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ec-store-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// ---- embedded ----

runStoreContract(
  'embedded SQLite',
  async (): Promise<StoreHarness> => {
    const file = join(tempDir(), 'nested', 'dir', 'store.db');
    const store = await openSqliteStore({ file });
    const others: Store[] = [];
    return {
      store,
      async second() {
        const other = await openSqliteStore({ file });
        others.push(other);
        return other;
      },
      async recordedJobIds() {
        return (store.db.prepare('SELECT id FROM jobs ORDER BY id').all() as { id: string }[]).map((r) => r.id);
      },
      async dispose() {
        for (const o of others) await o.close();
        await store.close();
      },
    };
  },
  { skip: [{ test: 'outage and recovery', reason: 'the embedded store is a local file with no server to lose' }] },
);

describe('embedded SQLite specifics', () => {
  let store: SqliteStore | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('opens in WAL mode with synchronous=FULL and creates the directory', async () => {
    store = await openSqliteStore({ file: join(tempDir(), 'a', 'b', 'x.db') });
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(await store.ping()).toBe(true);
    await store.close();
    expect(await store.ping()).toBe(false);
    await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('stores documents in the row format Keyv reads (kv table, `ec:` prefix, {"value":...})', async () => {
    const now = 1_000_000;
    store = await openSqliteStore({ file: join(tempDir(), 'x.db'), clock: { now: () => now } });
    await store.put('doc', { a: 'é' }, { ttlMs: 500 });
    await store.incr('ctr', 3);
    const rows = store.db.prepare('SELECT key, value, expires_at FROM kv ORDER BY key').all();
    expect(rows).toEqual([
      { key: 'ec:ctr', value: '{"value":3}', expires_at: null },
      { key: 'ec:doc', value: '{"value":{"a":"é"}}', expires_at: 1_000_500 },
    ]);
    // A row written directly in that format is read by the Keyv path.
    store.db.prepare('INSERT INTO kv (key, value, expires_at) VALUES (?, ?, NULL)').run('ec:raw', '{"value":[1,2]}');
    expect(await store.get('raw')).toEqual([1, 2]);
  });

  it('judges TTL by the injected clock on every path', async () => {
    let now = 5_000;
    const clock: Clock = { now: () => now };
    store = await openSqliteStore({ file: join(tempDir(), 'x.db'), clock });
    await store.put('p', 1, { ttlMs: 1000 });
    await store.update('u', () => 1, { ttlMs: 1000 });
    await store.incr('c', 1, { ttlMs: 1000 });
    expect(await store.putIfAbsent('i', 1, { ttlMs: 1000 })).toBe(true);
    now += 999;
    expect(await store.getMany(['p', 'u', 'c', 'i'])).toEqual([1, 1, 1, 1]);
    now += 1;
    expect(await store.getMany(['p', 'u', 'c', 'i'])).toEqual([undefined, undefined, undefined, undefined]);
    expect(await store.get('p')).toBeUndefined();
    expect(await store.delete('u')).toBe(false);
    expect(await store.incr('c')).toBe(1);
    expect(await store.putIfAbsent('i', 2)).toBe(true);
    expect(await store.purgeExpired()).toBe(1); // only `p` is left expired
  });

  it('rolls back the writes when the jobs of a commit cannot be recorded', async () => {
    store = await openSqliteStore({ file: join(tempDir(), 'x.db') });
    // The payload only fails when the job row is written, after the ops ran inside the transaction.
    const bad: JobSpec = { id: 'j1', purpose: 'p', target: 't', payload: { n: 1n } };
    await expect(store.commit([{ op: 'put', key: 'k', value: 1 }, { op: 'index', index: 'ix', member: 'm', score: 1 }], [bad])).rejects.toThrow(TypeError);
    expect(await store.get('k')).toBeUndefined();
    expect(await store.indexCount('ix')).toBe(0);
  });

  it('a failing commit check inserts no job row and judges expiry by the injected clock', async () => {
    let now = 10_000;
    store = await openSqliteStore({ file: join(tempDir(), 'x.db'), clock: { now: () => now } });
    await store.put('doc', { rev: 1 }, { ttlMs: 1000 });
    const jobs: JobSpec[] = [{ id: 'j1', purpose: 'p', target: 't', payload: {} }];
    const countJobs = () => (store?.db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    await expect(store.commit([{ op: 'put', key: 'side', value: 1 }, { op: 'check', key: 'doc', rev: 2 }], jobs)).rejects.toBeInstanceOf(
      CommitConflictError,
    );
    await expect(store.commit([{ op: 'check', key: 'doc', rev: null }], jobs)).rejects.toBeInstanceOf(CommitConflictError);
    expect(countJobs()).toBe(0);
    expect(await store.get('side')).toBeUndefined();
    now += 999;
    await expect(store.commit([{ op: 'check', key: 'doc', rev: null }], jobs)).rejects.toBeInstanceOf(CommitConflictError);
    now += 1; // expired by the store's clock, though the row is still in the table
    await expect(store.commit([{ op: 'check', key: 'doc', rev: 1 }], jobs)).rejects.toBeInstanceOf(CommitConflictError);
    expect(countJobs()).toBe(0);
    await store.commit([{ op: 'check', key: 'doc', rev: null }, { op: 'put', key: 'doc', value: { rev: 1 } }], jobs);
    expect(countJobs()).toBe(1);
    expect(await store.get('doc')).toEqual({ rev: 1 });
  });

  it('inserts commit jobs as waiting or delayed rows stamped by the clock', async () => {
    store = await openSqliteStore({ file: join(tempDir(), 'x.db'), clock: { now: () => 1000 } });
    await store.commit([], [
      { id: 'now', purpose: 'p', target: 't', payload: { x: 1 } },
      { id: 'later', purpose: 'p', target: 't', payload: null, runAt: 5000 },
    ]);
    const rows = store.db.prepare('SELECT id, state, run_at, payload FROM jobs ORDER BY id').all();
    expect(rows).toEqual([
      { id: 'later', state: 'delayed', run_at: 5000, payload: 'null' },
      { id: 'now', state: 'waiting', run_at: 1000, payload: '{"x":1}' },
    ]);
  });

  it('reads index ranges through the covering index', async () => {
    store = await openSqliteStore({ file: join(tempDir(), 'x.db') });
    const plan = store.db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT member, score FROM ordered_index WHERE index_name = 'i' AND (score, member) > (1, 'a') AND score <= 9
         ORDER BY score ASC, member ASC LIMIT 5`,
      )
      .all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/COVERING INDEX ordered_index_by_score \(index_name=\? AND \(score,member\)>\(\?,\?\) AND score<\?\)/);
  });
});

// ---- redis ----

describe('redis', () => {
  let redis: RedisServerHandle;
  let prefixCounter = 0;
  beforeAll(async () => {
    redis = await startRedis({ appendfsync: 'always' });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const fast: Partial<RedisStoreOptions> = { connectTimeoutMs: 1000, commandTimeoutMs: 1500, maxReconnectDelayMs: 300 };

  runStoreContract(
    'redis',
    async (): Promise<StoreHarness> => {
      const keyPrefix = `t${++prefixCounter}:`;
      const jobIds: string[] = [];
      const jobSink = {
        async enqueue(jobs: JobSpec[]) {
          jobIds.push(...jobs.map((j) => j.id));
        },
      };
      const store = await openRedisStore({ url: redis.url, keyPrefix, jobSink, ...fast });
      const others: Store[] = [];
      return {
        store,
        async second() {
          const other = await openRedisStore({ url: redis.url, keyPrefix, jobSink, ...fast });
          others.push(other);
          return other;
        },
        async recordedJobIds() {
          return [...jobIds];
        },
        async dispose() {
          for (const o of others) await o.close();
          await store.close();
        },
      };
    },
    {
      outage: {
        down: () => redis.kill(),
        up: () => redis.restart(),
      },
    },
  );

  describe('redis specifics', () => {
    let store: RedisStore | undefined;
    const raw = () => createClient({ url: redis.url });
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    it('writes documents at <prefix>ec::<key> as {"value":...} with a PX expiry, readable by a plain Keyv', async () => {
      store = await openRedisStore({ url: redis.url, keyPrefix: 'fmt:', ...fast });
      await store.put('doc', { a: 'é' }, { ttlMs: 60_000 });
      await store.incr('ctr', 2);
      await store.commit([{ op: 'put', key: 'c', value: [1] }, { op: 'index', index: 'ix', member: 'm', score: 3 }]);
      expect(store.documentKey('doc')).toBe('fmt:ec::doc');
      expect(store.indexKey('ix')).toBe('fmt:ec:idx::ix');
      const client = raw();
      await client.connect();
      try {
        expect(await client.get('fmt:ec::doc')).toBe('{"value":{"a":"é"}}');
        expect(await client.get('fmt:ec::ctr')).toBe('{"value":2}');
        expect(await client.get('fmt:ec::c')).toBe('{"value":[1]}');
        const pttl = await client.pTTL('fmt:ec::doc');
        expect(pttl).toBeGreaterThan(50_000);
        expect(await client.pTTL('fmt:ec::ctr')).toBe(-1);
        expect(await client.zScore('fmt:ec:idx::ix', 'm')).toBe(3);
        // Written directly in the format: read by the store (Keyv path).
        await client.set('fmt:ec::raw', '{"value":{"x":true}}');
        expect(await store.get('raw')).toEqual({ x: true });
      } finally {
        await client.close();
      }
      // A stock Keyv + @keyv/redis with the same namespace reads what the atomic paths wrote.
      const plain = new Keyv({ store: new KeyvRedis(redis.url, { namespace: 'fmt:ec' }), namespace: 'fmt:ec', useKeyPrefix: false });
      try {
        expect(await plain.get('ctr')).toBe(2);
        expect(await plain.get('c')).toEqual([1]);
      } finally {
        await plain.disconnect();
      }
    });

    it('refuses a commit with jobs when no job sink is configured, writing nothing', async () => {
      store = await openRedisStore({ url: redis.url, keyPrefix: 'nosink:', ...fast });
      await expect(
        store.commit([{ op: 'put', key: 'k', value: 1 }], [{ id: 'j', purpose: 'p', target: 't', payload: {} }]),
      ).rejects.toThrow(/no job sink is configured/);
      expect(await store.get('k')).toBeUndefined();
      await store.commit([{ op: 'put', key: 'k', value: 1 }]);
      expect(await store.get('k')).toBe(1);
    });

    it('hands commit jobs to the sink after the commit script', async () => {
      const order: string[] = [];
      let probe: RedisStore | undefined;
      const jobSink = {
        async enqueue(jobs: JobSpec[]) {
          order.push(`sink:${jobs.map((j) => j.id).join(',')}:sees=${String(await probe?.get('k'))}`);
        },
      };
      store = await openRedisStore({ url: redis.url, keyPrefix: 'sink:', jobSink, ...fast });
      probe = store;
      await store.commit([{ op: 'put', key: 'k', value: 'v' }], [{ id: 'j1', purpose: 'p', target: 't', payload: {} }]);
      expect(order).toEqual(['sink:j1:sees=v']);
    });

    it('jobs of an applied commit whose hand-over failed stay pending and are handed over later, once (transactional outbox)', async () => {
      const handed: string[] = [];
      let failNext = true;
      const jobSink = {
        async enqueue(jobs: JobSpec[]) {
          if (failNext) {
            failNext = false;
            throw new Error('queue unreachable at the hand-over');
          }
          handed.push(...jobs.map((j) => j.id));
        },
      };
      store = await openRedisStore({ url: redis.url, keyPrefix: 'pending:', jobSink, ...fast });
      // The commit is durable once its script ran: it resolves, its job kept pending.
      await store.commit([{ op: 'put', key: 'reply', value: 'queued' }], [{ id: 'send:1', purpose: 'p', target: 't', payload: { x: 1 } }]);
      expect(handed).toEqual([]);
      expect(await store.get('reply')).toBe('queued');
      // Too recent to be judged lost: nothing yet.
      expect(await store.redispatchPendingJobs(60_000)).toBe(0);
      expect(await store.redispatchPendingJobs(0)).toBe(1);
      expect(handed).toEqual(['send:1']);
      expect(await store.redispatchPendingJobs(0)).toBe(0);
      // A normal commit leaves nothing pending.
      await store.commit([{ op: 'put', key: 'other', value: 1 }], [{ id: 'send:2', purpose: 'p', target: 't', payload: {} }]);
      expect(handed).toEqual(['send:1', 'send:2']);
      expect(await store.redispatchPendingJobs(0)).toBe(0);
      expect(await store.indexCount('jobs:pending')).toBe(0);
    });

    it('a failing commit check calls no job sink and writes nothing', async () => {
      const calls: string[][] = [];
      const jobSink = {
        async enqueue(jobs: JobSpec[]) {
          calls.push(jobs.map((j) => j.id));
        },
      };
      store = await openRedisStore({ url: redis.url, keyPrefix: 'cksink:', jobSink, ...fast });
      await store.put('doc', { rev: 2 });
      const jobs: JobSpec[] = [{ id: 'j1', purpose: 'p', target: 't', payload: {} }];
      await expect(
        store.commit([{ op: 'put', key: 'side', value: 1 }, { op: 'index', index: 'ix', member: 'm', score: 1 }, { op: 'check', key: 'doc', rev: 1 }], jobs),
      ).rejects.toBeInstanceOf(CommitConflictError);
      await expect(store.commit([{ op: 'check', key: 'doc', rev: null }], jobs)).rejects.toBeInstanceOf(CommitConflictError);
      expect(calls).toEqual([]);
      expect(await store.get('side')).toBeUndefined();
      expect(await store.indexCount('ix')).toBe(0);
      await store.commit([{ op: 'check', key: 'doc', rev: 2 }, { op: 'put', key: 'doc', value: { rev: 3 } }], jobs);
      expect(calls).toEqual([['j1']]);
      expect(await store.get('doc')).toEqual({ rev: 3 });
    });

    it('commit checks read documents written in other JSON spellings, and refuse what cjson cannot decode', async () => {
      store = await openRedisStore({ url: redis.url, keyPrefix: 'ckraw:', ...fast });
      const client = raw();
      await client.connect();
      try {
        await client.set('ckraw:ec::float', '{"value":{"rev":7.0}}');
        await client.set('ckraw:ec::exp', '{"value":{"rev":1e2, "x": null}}');
        await client.set('ckraw:ec::big', '{"value":{"rev":9007199254740991}}');
        await client.set('ckraw:ec::nullrev', '{"value":{"rev":null}}');
        const deep = `{"value":{"rev":1,"d":${'['.repeat(1200)}${']'.repeat(1200)}}}`;
        await client.set('ckraw:ec::deep', deep);
        await store.commit([
          { op: 'check', key: 'float', rev: 7 },
          { op: 'check', key: 'exp', rev: 100 },
          { op: 'check', key: 'big', rev: Number.MAX_SAFE_INTEGER },
        ]);
        await expect(store.commit([{ op: 'check', key: 'big', rev: Number.MAX_SAFE_INTEGER - 1 }])).rejects.toBeInstanceOf(CommitConflictError);
        await expect(store.commit([{ op: 'check', key: 'nullrev', rev: 0 }])).rejects.toBeInstanceOf(CommitConflictError);
        // A document cjson cannot decode is an error, not a conflict (retrying would not help); nothing is written.
        await expect(store.commit([{ op: 'put', key: 'side', value: 1 }, { op: 'check', key: 'deep', rev: 1 }])).rejects.toThrow(/could not be decoded/);
        expect(await client.get('ckraw:ec::side')).toBeNull();
        // Existence alone is judged without decoding.
        await expect(store.commit([{ op: 'check', key: 'deep', rev: null }])).rejects.toBeInstanceOf(CommitConflictError);
        // An index key holding another type fails the commit before anything is written.
        await client.set('ckraw:ec:idx::broken', 'not a zset');
        await expect(
          store.commit([{ op: 'put', key: 'side', value: 1 }, { op: 'index', index: 'broken', member: 'm', score: 1 }]),
        ).rejects.toThrow(/holds another type/);
        expect(await client.get('ckraw:ec::side')).toBeNull();
      } finally {
        await client.close();
      }
    });

    it('update retries when the key changes between its read and its compare-and-set', async () => {
      store = await openRedisStore({ url: redis.url, keyPrefix: 'cas:', ...fast });
      const other = await openRedisStore({ url: redis.url, keyPrefix: 'cas:', ...fast });
      try {
        await store.put('k', 1);
        // Let another instance write right after this instance's GET.
        const client = store.client as unknown as { get(key: string): Promise<string | null> };
        const originalGet = client.get.bind(client);
        let interfered = false;
        client.get = async (key: string) => {
          const text = await originalGet(key);
          if (!interfered) {
            interfered = true;
            await other.put('k', 100);
          }
          return text;
        };
        const seen: Array<number | undefined> = [];
        const result = await store.update<number>('k', (v) => {
          seen.push(v);
          return (v ?? 0) + 10;
        });
        expect(seen).toEqual([1, 100]);
        expect(result).toBe(110);
        expect(await other.get('k')).toBe(110);
      } finally {
        await other.close();
      }
    });

    it('does not hang on a server that stops answering: calls time out as StoreUnavailableError, then recover', async () => {
      const proxy = await startFreezableProxy(redis.port);
      try {
        store = await openRedisStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: 'hang:', ...fast, commandTimeoutMs: 700 });
        await store.put('k', 1);
        proxy.freeze();
        const started = Date.now();
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.commit([{ op: 'put', key: 'k', value: 2 }])).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.ping()).toBe(false);
        expect(Date.now() - started).toBeLessThan(3 * 700 + 2000);
        proxy.thaw();
        expect(await store.ping()).toBe(true);
        await store.put('k', 3);
        expect(await store.get('k')).toBe(3);
      } finally {
        await store?.close();
        store = undefined;
        await proxy.close();
      }
    });

    it('does not hang on a server that accepts connections but never answers', async () => {
      const accepted = new Set<Socket>();
      const blackhole = createServer((sock) => {
        accepted.add(sock);
      });
      await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
      const port = (blackhole.address() as AddressInfo).port;
      try {
        const started = Date.now();
        store = await openRedisStore({ url: `redis://127.0.0.1:${port}`, ...fast });
        await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.ping()).toBe(false);
        expect(Date.now() - started).toBeLessThan(8000);
      } finally {
        await store?.close();
        store = undefined;
        for (const sock of accepted) sock.destroy();
        await new Promise((r) => blackhole.close(r));
      }
    });

    it('rejects with StoreUnavailableError within seconds when redis is unreachable from the start', async () => {
      const port = await freePort();
      const started = Date.now();
      store = await openRedisStore({ url: `redis://127.0.0.1:${port}`, ...fast });
      expect(Date.now() - started).toBeLessThan(5000);
      await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.put('x', 1)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.indexAdd('i', 'm', 1)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.ping()).toBe(false);
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });
});

// ---- factory ----

describe('openStore', () => {
  it('opens the embedded store under the data dir and describes it', async () => {
    const dir = tempDir();
    const opened = await openStore({ dataDir: dir });
    try {
      expect(opened.kind).toBe('embedded');
      expect(opened.store.kind).toBe('embedded');
      expect(opened.describe).toBe(`embedded SQLite at ${join(dir, 'email-channel.db')}`);
      expect(opened.db?.open).toBe(true);
    } finally {
      await opened.store.close();
    }
  });

  it('opens redis when a URL is given and masks the password', async () => {
    const port = await freePort();
    const opened = await openStore({ redisUrl: `redis://app:s3cret@127.0.0.1:${port}/0`, dataDir: tempDir() });
    try {
      expect(opened.kind).toBe('redis');
      expect(opened.describe).toBe(`redis at redis://app:****@127.0.0.1:${port}/0`);
      expect(opened.describe).not.toContain('s3cret');
      expect(opened.db).toBeUndefined();
    } finally {
      await opened.store.close();
    }
  });

  it('masks redis URLs', () => {
    expect(maskRedisUrl('redis://:pw@h:6379')).toBe('redis://:****@h:6379');
    expect(maskRedisUrl('rediss://u:p%40ss@h:6380/2')).toBe('rediss://u:****@h:6380/2');
    expect(maskRedisUrl('redis://h:6379')).toBe('redis://h:6379');
    expect(maskRedisUrl('not a url')).toBe('(unparseable redis url)');
  });
});

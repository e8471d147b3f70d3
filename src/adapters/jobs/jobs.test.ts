// Runs the JobQueue contract against the SQLite runner and BullMQ on a private redis-server, plus adapter specifics.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServerHandle } from '../../../test/helpers/redis-server.js';
import { BullmqJobQueue, decodeBullId, encodeBullId } from './bullmq-jobs.js';
import { createJobQueue } from './index.js';
import { runJobQueueContract } from './jobs.contract.js';
import { ensureJobsSchema, insertJobsSync } from './sqlite-schema.js';
import { SqliteJobQueue } from './sqlite-jobs.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function openDb(): { db: Database.Database; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ec-jobs-'));
  const db = new Database(join(dir, 'jobs.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  ensureJobsSchema(db);
  return {
    db,
    cleanup: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

runJobQueueContract('sqlite', async ({ backoff }) => {
  const { db, cleanup } = openDb();
  const queue = new SqliteJobQueue({ db, backoff, stopTimeoutMs: 5000 });
  return {
    queue,
    close: async () => {
      await queue.stop();
      cleanup();
    },
  };
});

describe('bullmq', () => {
  let redis: RedisServerHandle | undefined;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  runJobQueueContract('bullmq', async ({ backoff, unknownPurposeDelayMs }) => {
    if (!redis) throw new Error('redis-server not started');
    const queue = new BullmqJobQueue({ url: redis.url, prefix: `c${++n}`, backoff, unknownPurposeDelayMs, stopTimeoutMs: 5000 });
    return { queue, close: () => queue.stop() };
  });

  it('workers on another instance discover targets from the Redis registry', async () => {
    if (!redis) throw new Error('redis-server not started');
    const worker = new BullmqJobQueue({ url: redis.url, prefix: 'disc', discoveryIntervalMs: 100 });
    const producer = new BullmqJobQueue({ url: redis.url, prefix: 'disc' });
    try {
      const ran: string[] = [];
      worker.register('work', async (j) => {
        ran.push(j.id);
      });
      await worker.start();
      await producer.enqueue([{ id: 'x:1', purpose: 'work', target: 'crm:discovered', payload: null }]);
      const deadline = Date.now() + 5000;
      while (ran.length === 0 && Date.now() < deadline) await sleep(20);
      expect(ran).toEqual(['x:1']);
      expect((await producer.get('x:1'))?.state).toBe('completed');
    } finally {
      await Promise.all([worker.stop(), producer.stop()]);
    }
  });

  it('createJobQueue builds the redis kind', async () => {
    if (!redis) throw new Error('redis-server not started');
    const q = createJobQueue({ kind: 'redis', url: redis.url, prefix: 'factory' });
    expect(q).toBeInstanceOf(BullmqJobQueue);
    expect(await q.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
    await q.stop();
  });
});

describe('bullmq id encoding', () => {
  it('is reversible and yields ids BullMQ accepts', () => {
    for (const id of ['', 'plain', 'a:b:c', '42', '-7', '00', '%', '%3A', 'x%25:y', '%N1', '%E', ':', '1:2', 'ü:€']) {
      const enc = encodeBullId(id);
      expect(decodeBullId(enc)).toBe(id);
      expect(enc).not.toContain(':');
      expect(`${parseInt(enc, 10)}` === enc).toBe(false);
      expect(enc.length).toBeGreaterThan(0);
    }
  });
});

describe('sqlite job runner', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const open = (opts: Partial<ConstructorParameters<typeof SqliteJobQueue>[0]> = {}) => {
    const { db, cleanup } = openDb();
    const queue = new SqliteJobQueue({ db, ...opts });
    cleanups.push(cleanup, () => queue.stop());
    return { db, queue };
  };

  it('runs jobs the store inserted inside its own transaction (found by the poll)', async () => {
    const { db, queue } = open({ pollIntervalMs: 50 });
    const ran: string[] = [];
    queue.register('work', async (j) => {
      ran.push(j.id);
    });
    await queue.start();
    db.transaction(() => insertJobsSync(db, [{ id: 'store:1', purpose: 'work', target: 't', payload: 1 }], Date.now()))();
    const deadline = Date.now() + 3000;
    while (ran.length === 0 && Date.now() < deadline) await sleep(10);
    expect(ran).toEqual(['store:1']);
  });

  it('recovers a job whose lease expired (its process died) and counts the interrupted run', async () => {
    const { db, queue } = open({ pollIntervalMs: 50 });
    const now = Date.now();
    insertJobsSync(db, [{ id: 'orphan:1', purpose: 'work', target: 't', payload: null }], now);
    db.prepare(`UPDATE jobs SET state='active', lease_until=?, lease_owner='dead:1' WHERE id='orphan:1'`).run(now - 1);
    let ran = 0;
    queue.register('work', async () => {
      ran++;
    });
    await queue.start();
    const deadline = Date.now() + 3000;
    while ((await queue.get('orphan:1'))?.state !== 'completed' && Date.now() < deadline) await sleep(10);
    expect(ran).toBe(1);
    expect(await queue.get('orphan:1')).toMatchObject({ state: 'completed', attempts: 2 });
  });

  it('prunes completed jobs after the retention period, keeps failed ones', async () => {
    let now = 1_000_000;
    const { db, queue } = open({ clock: { now: () => now }, completedRetentionMs: 1000 });
    insertJobsSync(db, [{ id: 'old', purpose: 'work', target: 't', payload: null }], now);
    db.prepare(`UPDATE jobs SET state='completed', updated_at=? WHERE id='old'`).run(now - 5000);
    insertJobsSync(db, [{ id: 'dead', purpose: 'work', target: 't', payload: null }], now);
    db.prepare(`UPDATE jobs SET state='failed', updated_at=? WHERE id='dead'`).run(now - 5000);
    now += 10;
    await queue.start();
    expect(await queue.get('old')).toBeUndefined();
    expect((await queue.get('dead'))?.state).toBe('failed');
  });

  it('adds the runner columns to a table created by an older version', () => {
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, purpose TEXT NOT NULL, target TEXT NOT NULL, payload TEXT NOT NULL,
      state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, run_at INTEGER NOT NULL,
      last_error TEXT, lease_until INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
    ensureJobsSchema(db);
    ensureJobsSchema(db);
    const cols = (db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).map((c) => c.name);
    expect(cols).toEqual(expect.arrayContaining(['lease_owner', 'deferrals']));
    db.close();
  });

  it('createJobQueue builds the embedded kind', () => {
    const { db } = openDb();
    const q = createJobQueue({ kind: 'embedded', db });
    expect(q).toBeInstanceOf(SqliteJobQueue);
    db.close();
  });
});

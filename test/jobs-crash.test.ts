// Crash test: a process running jobs is killed with SIGKILL mid-run; a new runner finishes every job (at-least-once).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobQueue } from '../src/core/ports.js';
import { BullmqJobQueue } from '../src/adapters/jobs/bullmq-jobs.js';
import { SqliteJobQueue } from '../src/adapters/jobs/sqlite-jobs.js';
import { ensureJobsSchema } from '../src/adapters/jobs/sqlite-schema.js';
import { CRASH_CONCURRENCY, CRASH_TARGET, crashJobs, makeCrashHandler } from './fixtures/jobs-crash-shared.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';

const JOBS = 200;
const KILL_AFTER_LINES = 40;
const CHILD = join(import.meta.dirname, 'fixtures', 'jobs-crash-child.ts');
const ROOT = join(import.meta.dirname, '..');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function readLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

/** Spawns the child, waits until it has run `lines` jobs, then kill -9. */
async function runAndKill(args: string[], outFile: string): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  try {
    while (readLines(outFile).length < KILL_AFTER_LINES) {
      if (child.exitCode !== null) throw new Error(`child exited early (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) throw new Error(`child did not run ${KILL_AFTER_LINES} jobs in time: ${stderr}`);
      await sleep(5);
    }
  } finally {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }
}

/** Runs the remaining jobs in this process and checks the at-least-once outcome. */
async function finishAndCheck(queue: JobQueue, outFile: string): Promise<{ duplicates: string[]; interrupted: Set<string> }> {
  const beforeRestart = readLines(outFile);
  expect(beforeRestart.length).toBeGreaterThanOrEqual(KILL_AFTER_LINES);
  expect(beforeRestart.length).toBeLessThan(JOBS);
  const active = await queue.list({ state: 'active', limit: 100 });
  const interrupted = new Set(active.items.map((j) => j.id));
  expect(interrupted.size).toBeLessThanOrEqual(CRASH_CONCURRENCY + 1);

  const fd = openSync(outFile, 'a');
  try {
    queue.setTargetLimits(CRASH_TARGET, { concurrency: CRASH_CONCURRENCY });
    queue.register(
      'crash',
      makeCrashHandler((line) => {
        writeSync(fd, line);
        fsyncSync(fd);
      }),
    );
    await queue.start();
    const deadline = Date.now() + 30_000;
    while ((await queue.counts()).completed < JOBS) {
      if (Date.now() > deadline) throw new Error(`not all jobs completed: ${JSON.stringify(await queue.counts())}`);
      await sleep(50);
    }
    expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, completed: JOBS, failed: 0 });
  } finally {
    await queue.stop();
    closeSync(fd);
  }

  const seen = new Map<string, number>();
  for (const id of readLines(outFile)) seen.set(id, (seen.get(id) ?? 0) + 1);
  for (const j of crashJobs(JOBS)) expect(seen.get(j.id), j.id).toBeGreaterThanOrEqual(1);
  expect(seen.size).toBe(JOBS);
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  // Only runs cut by the kill may repeat: each at most once more, at most the concurrency of them.
  for (const id of duplicates) {
    expect(interrupted.has(id), `${id} ran twice but was not interrupted`).toBe(true);
    expect(seen.get(id)).toBe(2);
  }
  expect(duplicates.length).toBeLessThanOrEqual(CRASH_CONCURRENCY);
  return { duplicates, interrupted };
}

describe('jobs survive kill -9 (at-least-once)', () => {
  let dir: string;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('embedded SQLite runner: expired leases are picked up again', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ec-crash-'));
    const dbFile = join(dir, 'jobs.db');
    const outFile = join(dir, 'ran.txt');
    await runAndKill(['sqlite', dbFile, outFile, String(JOBS)], outFile);

    const db = new Database(dbFile);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    ensureJobsSchema(db);
    try {
      const queue = new SqliteJobQueue({ db, leaseMs: 1000, pollIntervalMs: 100 });
      const { duplicates, interrupted } = await finishAndCheck(queue, outFile);
      expect(interrupted.size).toBeGreaterThan(0);
      // An interrupted run counts as an attempt.
      for (const id of duplicates) {
        expect(db.prepare('SELECT attempts FROM jobs WHERE id = ?').get(id)).toEqual({ attempts: 2 });
      }
    } finally {
      db.close();
    }
  });

  describe('BullMQ', () => {
    let redis: RedisServerHandle | undefined;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('stalled jobs are moved back to wait and run again', async () => {
      if (!redis) throw new Error('redis-server not started');
      dir = mkdtempSync(join(tmpdir(), 'ec-crash-'));
      const outFile = join(dir, 'ran.txt');
      await runAndKill(['bullmq', redis.url, 'crash', outFile, String(JOBS)], outFile);
      const queue = new BullmqJobQueue({
        url: redis.url,
        prefix: 'crash',
        worker: { lockDuration: 1000, stalledInterval: 300 },
      });
      await finishAndCheck(queue, outFile);
    });
  });
});

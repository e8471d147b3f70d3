// The JobQueue contract: one suite every implementation (SQLite runner, BullMQ) must pass unchanged.
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PermanentJobError,
  RetryLaterError,
  type JobQueue,
  type JobRecord,
  type JobSpec,
  type JobState,
} from '../../core/ports.js';

export interface JobQueueHarness {
  queue: JobQueue;
  /** Stops the queue (idempotent) and frees what `make` created. */
  close(): Promise<void>;
}

export interface MakeJobQueueOptions {
  /** Small delays so retries are fast in tests. */
  backoff: { baseMs: number; maxMs: number };
  /** How long an implementation may park a job whose purpose has no handler (BullMQ); short in tests. */
  unknownPurposeDelayMs: number;
}

export type MakeJobQueue = (opts: MakeJobQueueOptions) => Promise<JobQueueHarness>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(15);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function waitForState(q: JobQueue, id: string, state: JobState, timeoutMs = 10_000): Promise<JobRecord> {
  let last: JobRecord | undefined;
  await waitFor(
    `job ${id} to be ${state}`,
    async () => {
      last = await q.get(id);
      return last?.state === state;
    },
    timeoutMs,
  );
  return last as JobRecord;
}

function job(id: string, over: Partial<JobSpec> = {}): JobSpec {
  return { id, purpose: 'work', target: 'crm:a', payload: { id }, ...over };
}

export function runJobQueueContract(name: string, make: MakeJobQueue): void {
  describe(`JobQueue contract: ${name}`, () => {
    const open: JobQueueHarness[] = [];
    const fresh = async (): Promise<JobQueue> => {
      const h = await make({ backoff: { baseMs: 40, maxMs: 400 }, unknownPurposeDelayMs: 150 });
      open.push(h);
      return h.queue;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((h) => h.close()));
    });

    it('runs a job once, with its payload, and records it completed', async () => {
      const q = await fresh();
      const seen: JobRecord[] = [];
      q.register('work', async (j) => {
        seen.push(j);
      });
      await q.enqueue([job('once:1', { payload: { n: 1, s: 'é' } })]);
      await q.start();
      const done = await waitForState(q, 'once:1', 'completed');
      await sleep(150);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        id: 'once:1',
        purpose: 'work',
        target: 'crm:a',
        payload: { n: 1, s: 'é' },
        state: 'active',
        attempts: 0,
        maxAttempts: 10,
      });
      expect(done).toMatchObject({ id: 'once:1', state: 'completed', attempts: 1, lastError: null, payload: { n: 1, s: 'é' } });
      expect(done.updatedAt).toBeGreaterThanOrEqual(done.createdAt);
      expect(await q.get('never-enqueued')).toBeUndefined();
    });

    it('picks up a job enqueued after start without waiting for a poll', async () => {
      const q = await fresh();
      q.register('work', async () => undefined);
      await q.start();
      await sleep(50);
      const t0 = Date.now();
      await q.enqueue([job('prompt:1')]);
      await waitForState(q, 'prompt:1', 'completed', 5000);
      expect(Date.now() - t0).toBeLessThan(700);
    });

    it('deduplicates by id, in one call, across calls and after completion', async () => {
      const q = await fresh();
      const calls = new Map<string, number>();
      q.register('work', async (j) => {
        calls.set(j.id, (calls.get(j.id) ?? 0) + 1);
      });
      await q.enqueue([job('dup:1'), job('dup:1', { payload: 'other' })]);
      await q.enqueue([job('dup:1'), job('42'), job('42')]);
      await q.start();
      await waitForState(q, 'dup:1', 'completed');
      await waitForState(q, '42', 'completed');
      await q.enqueue([job('dup:1'), job('42')]);
      await sleep(300);
      expect(Object.fromEntries(calls)).toEqual({ 'dup:1': 1, '42': 1 });
      expect((await q.get('dup:1'))?.payload).toEqual({ id: 'dup:1' });
    });

    it('does not run a job before its runAt', async () => {
      const q = await fresh();
      let startedAt = 0;
      q.register('work', async () => {
        startedAt = Date.now();
      });
      await q.start();
      const runAt = Date.now() + 600;
      await q.enqueue([job('later:1', { runAt })]);
      const pending = await q.get('later:1');
      expect(pending?.state).toBe('delayed');
      expect(Math.abs((pending?.runAt ?? 0) - runAt)).toBeLessThan(50);
      await waitForState(q, 'later:1', 'completed');
      expect(startedAt).toBeGreaterThanOrEqual(runAt - 10);
    });

    it('retries with backoff, then succeeds', async () => {
      const q = await fresh();
      const starts: number[] = [];
      q.register('work', async () => {
        starts.push(performance.now());
        if (starts.length < 3) throw new Error(`flaky ${starts.length}`);
      });
      await q.enqueue([job('flaky:1')]);
      await q.start();
      const done = await waitForState(q, 'flaky:1', 'completed');
      expect(starts).toHaveLength(3);
      // Partial jitter: the n-th retry waits at least baseMs * 2^(n-1) / 2.
      expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(18);
      expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBeGreaterThanOrEqual(38);
      expect(done.attempts).toBe(3);
      expect(done.lastError).toBe('flaky 2');
    });

    it('keeps a job failed after maxAttempts, lists it, and retry() runs it again', async () => {
      const q = await fresh();
      let healthy = false;
      let calls = 0;
      q.register('work', async () => {
        calls++;
        if (!healthy) throw new Error(`boom ${calls}`);
      });
      await q.enqueue([job('fail:1', { maxAttempts: 3 })]);
      await q.start();
      const failed = await waitForState(q, 'fail:1', 'failed');
      await sleep(150);
      expect(calls).toBe(3);
      expect(failed).toMatchObject({ state: 'failed', attempts: 3, maxAttempts: 3, lastError: 'boom 3' });
      const listed = await q.list({ state: 'failed', limit: 10 });
      expect(listed.items.map((j) => j.id)).toEqual(['fail:1']);
      expect(listed.items[0]?.lastError).toBe('boom 3');
      expect(listed.nextCursor).toBeNull();

      healthy = true;
      expect(await q.retry('fail:1')).toBe(true);
      const done = await waitForState(q, 'fail:1', 'completed');
      expect(calls).toBe(4);
      expect(done.attempts).toBe(1);
      expect(await q.retry('fail:1')).toBe(false);
      expect(await q.retry('never-enqueued')).toBe(false);
      expect((await q.list({ state: 'failed', limit: 10 })).items).toEqual([]);
    });

    it('fails at once on PermanentJobError', async () => {
      const q = await fresh();
      let calls = 0;
      q.register('work', async () => {
        calls++;
        throw new PermanentJobError('400 bad request');
      });
      await q.enqueue([job('perm:1')]);
      await q.start();
      const failed = await waitForState(q, 'perm:1', 'failed');
      await sleep(150);
      expect(calls).toBe(1);
      expect(failed).toMatchObject({ attempts: 1, lastError: '400 bad request' });
    });

    it('runs again after RetryLaterError without consuming attempts', async () => {
      const q = await fresh();
      const starts: number[] = [];
      q.register('work', async () => {
        starts.push(performance.now());
        if (starts.length < 3) throw new RetryLaterError('429 slow down', 80);
      });
      await q.enqueue([job('later:429', { maxAttempts: 1 })]);
      await q.start();
      const done = await waitForState(q, 'later:429', 'completed');
      expect(starts).toHaveLength(3);
      expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(75);
      expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBeGreaterThanOrEqual(75);
      expect(done.attempts).toBe(1);
    });

    it('limits concurrency per target (exact limit beats a prefix*), other targets run in parallel', async () => {
      const q = await fresh();
      q.setTargetLimits('crm:slow', { concurrency: 1 });
      q.setTargetLimits('smtp:*', { concurrency: 1 });
      q.setTargetLimits('smtp:vip', { concurrency: 3 });
      const running = new Map<string, number>();
      const max = new Map<string, number>();
      let overlap = false;
      q.register('work', async (j) => {
        const now = (running.get(j.target) ?? 0) + 1;
        running.set(j.target, now);
        max.set(j.target, Math.max(max.get(j.target) ?? 0, now));
        if ((running.get('crm:slow') ?? 0) > 0 && (running.get('crm:fast') ?? 0) > 0) overlap = true;
        await sleep(80);
        running.set(j.target, (running.get(j.target) ?? 1) - 1);
      });
      const targets = ['crm:slow', 'crm:fast', 'smtp:x', 'smtp:vip'];
      await q.enqueue(targets.flatMap((target) => [1, 2, 3, 4].map((n) => job(`${target}:${n}`, { target }))));
      await q.start();
      await waitFor('16 completed jobs', async () => (await q.counts()).completed === 16);
      expect(max.get('crm:slow')).toBe(1);
      expect(max.get('smtp:x')).toBe(1);
      expect(max.get('crm:fast')).toBeGreaterThanOrEqual(2);
      expect(max.get('crm:fast')).toBeLessThanOrEqual(4);
      expect(max.get('smtp:vip')).toBeGreaterThanOrEqual(2);
      expect(max.get('smtp:vip')).toBeLessThanOrEqual(3);
      expect(overlap).toBe(true);
    });

    it('holds a rate limit per target, leaving other targets free', async () => {
      const q = await fresh();
      q.setTargetLimits('blob:r', { concurrency: 10, rate: { max: 2, windowMs: 500 } });
      const starts = new Map<string, number[]>();
      q.register('work', async (j) => {
        const list = starts.get(j.target) ?? [];
        list.push(performance.now());
        starts.set(j.target, list);
      });
      await q.enqueue([
        ...[1, 2, 3, 4, 5, 6].map((n) => job(`rate:${n}`, { target: 'blob:r' })),
        ...[1, 2, 3, 4].map((n) => job(`free:${n}`, { target: 'blob:free' })),
      ]);
      await q.start();
      await waitFor('10 completed jobs', async () => (await q.counts()).completed === 10);
      const limited = [...(starts.get('blob:r') ?? [])].sort((a, b) => a - b);
      const free = starts.get('blob:free') ?? [];
      expect(limited).toHaveLength(6);
      // Any two starts two apart are a full window apart (a little tolerance for timer granularity).
      for (let i = 0; i + 2 < limited.length; i++) {
        expect((limited[i + 2] ?? 0) - (limited[i] ?? 0)).toBeGreaterThanOrEqual(470);
      }
      expect(free).toHaveLength(4);
      expect(Math.max(...free)).toBeLessThan(limited[2] ?? 0);
    });

    it('applies limits changed after start to the next jobs of a running target', async () => {
      const q = await fresh();
      const starts: number[] = [];
      let running = 0;
      let maxRunning = 0;
      q.register('work', async () => {
        starts.push(performance.now());
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(30);
        running--;
      });
      await q.start();
      await q.enqueue([job('late:0', { target: 'crm:late' })]);
      await waitForState(q, 'late:0', 'completed');
      starts.length = 0;
      maxRunning = 0;
      q.setTargetLimits('crm:*', { concurrency: 1, rate: { max: 1, windowMs: 200 } });
      await q.enqueue([1, 2, 3].map((n) => job(`late:${n}`, { target: 'crm:late' })));
      await waitFor('3 more completed jobs', async () => (await q.counts()).completed === 4);
      expect(maxRunning).toBe(1);
      expect(starts).toHaveLength(3);
      expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(180);
      expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBeGreaterThanOrEqual(180);
    });

    it('counts jobs per state', async () => {
      const q = await fresh();
      q.register('work', async () => undefined);
      q.register('bad', async () => {
        throw new PermanentJobError('no');
      });
      await q.enqueue([
        job('count:1'),
        job('count:2', { target: 'crm:b' }),
        job('count:3', { purpose: 'bad' }),
        job('count:4', { runAt: Date.now() + 60_000 }),
      ]);
      await q.start();
      await waitForState(q, 'count:3', 'failed');
      await waitFor('2 completed', async () => (await q.counts()).completed === 2);
      expect(await q.counts()).toEqual({ waiting: 0, delayed: 1, active: 0, completed: 2, failed: 1 });
      expect(await q.counts('no-such-target')).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
      expect(await q.counts('crm:b')).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 1, failed: 0 });
    });

    it('lists newest first with an opaque cursor, by state and across states', async () => {
      const q = await fresh();
      q.register('work', async () => undefined);
      q.register('bad', async () => {
        throw new PermanentJobError('no');
      });
      const ids = [1, 2, 3, 4, 5].map((n) => `page:${n}`);
      await q.enqueue(ids.map((id, i) => job(id, { purpose: 'bad', target: i % 2 ? 'crm:a' : 'crm:b' })));
      await q.enqueue([job('page:ok')]);
      await q.start();
      await waitFor('5 failed, 1 completed', async () => {
        const c = await q.counts();
        return c.failed === 5 && c.completed === 1;
      });
      const pages: JobRecord[][] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 5; i++) {
        const page = await q.list({ state: 'failed', limit: 2, ...(cursor ? { cursor } : {}) });
        pages.push(page.items);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      const all = pages.flat();
      expect(new Set(all.map((j) => j.id))).toEqual(new Set(ids));
      for (let i = 1; i < all.length; i++) {
        expect(all[i - 1]?.updatedAt ?? 0).toBeGreaterThanOrEqual(all[i]?.updatedAt ?? 0);
      }
      expect(all.every((j) => j.state === 'failed' && j.lastError === 'no')).toBe(true);
      const everything = await q.list({ limit: 100 });
      expect(everything.items.map((j) => j.id).sort()).toEqual([...ids, 'page:ok'].sort());
      expect(everything.nextCursor).toBeNull();
      await expect(q.list({ limit: 2, cursor: 'not a cursor' })).rejects.toThrow();
    });

    it('keeps a job whose purpose has no handler (a newer version wrote it) and runs it once registered', async () => {
      const q = await fresh();
      q.register('work', async () => undefined);
      await q.enqueue([job('future:1', { purpose: 'from-the-future' }), job('known:1')]);
      await q.start();
      await waitForState(q, 'known:1', 'completed');
      await sleep(300);
      const parked = await q.get('future:1');
      expect(['waiting', 'delayed']).toContain(parked?.state);
      expect(parked?.attempts).toBe(0);
      let ran = 0;
      q.register('from-the-future', async () => {
        ran++;
      });
      await waitForState(q, 'future:1', 'completed', 5000);
      expect(ran).toBe(1);
    });

    it('stop() waits for running handlers', async () => {
      const q = await fresh();
      let started = false;
      let finished = false;
      q.register('work', async () => {
        started = true;
        await sleep(300);
        finished = true;
      });
      await q.enqueue([job('stop:1')]);
      await q.start();
      await waitFor('the handler to start', () => started);
      await q.stop();
      expect(finished).toBe(true);
    });
  });
}

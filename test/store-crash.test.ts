// Crash test: a child process writing to the store is killed with SIGKILL; every write it acknowledged must be there.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/core/ports.js';
import { openRedisStore } from '../src/adapters/store/redis-store.js';
import { openSqliteStore } from '../src/adapters/store/sqlite-store.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';

const WRITER = join(import.meta.dirname, 'fixtures', 'store-writer.ts');
const ROOT = join(import.meta.dirname, '..');
const ACKS_BEFORE_KILL = 300;

/** Runs the writer until it has acknowledged `acks` writes, kills it with SIGKILL, returns every acknowledged i. */
function runWriterAndKill(args: string[], acks: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffer = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer did not reach ${acks} acks within 30 s (got ${acked.length}); stderr: ${stderr}`));
    }, 30_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (m) acked.push(Number(m[1]));
      }
      if (!killed && acked.length >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && killed) resolve(acked);
      else reject(new Error(`writer exited early (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
}

async function expectAllAcknowledged(store: Store, acked: number[]): Promise<void> {
  expect(acked.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);
  expect(acked).toEqual(acked.map((_, i) => i)); // acks arrive in order
  const keys = acked.map((i) => `k${i}`);
  const values = await store.getMany<{ i: number }>(keys);
  const missing = acked.filter((i, n) => values[n]?.i !== i);
  expect(missing).toEqual([]);
  for (const i of acked) expect(await store.indexScore('crash', `k${i}`)).toBe(i);
  // Writes past the last ack may or may not have landed, but nothing beyond the one in flight.
  expect(await store.indexCount('crash')).toBeLessThanOrEqual(acked.length + 1);
}

const dirs: string[] = [];
let redis: RedisServerHandle | undefined;
afterAll(async () => {
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('store crash safety (kill -9 of the writer)', () => {
  it('embedded SQLite keeps every acknowledged write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-crash-'));
    dirs.push(dir);
    const file = join(dir, 'store.db');
    const acked = await runWriterAndKill(['sqlite', file], ACKS_BEFORE_KILL);
    const store = await openSqliteStore({ file });
    try {
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      await expectAllAcknowledged(store, acked);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('redis (appendfsync always) keeps every acknowledged write, even when the server is killed too', async () => {
    redis = await startRedis({ appendfsync: 'always' });
    const acked = await runWriterAndKill(['redis', redis.url, 'crash:'], ACKS_BEFORE_KILL);
    // Kill the server as well and reload it from its AOF: acknowledged writes were fsynced before the reply.
    await redis.kill();
    await redis.restart();
    const store = await openRedisStore({ url: redis.url, keyPrefix: 'crash:' });
    try {
      await expectAllAcknowledged(store, acked);
    } finally {
      await store.close();
    }
  }, 60_000);
});

// `npm start` as a real process: prints URL, store and generated token; settings survive kill -9
// on the embedded store and on Redis [R-API-3, R-REL-1]; Redis without shared secrets refuses to start.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServiceProcess, type RunningService } from './helpers/service-process.js';
import { startRedis, type RedisServerHandle } from './helpers/redis-server.js';
import { tempDirs } from './helpers/temp-dirs.js';

const startService = (env: Record<string, string>) => startServiceProcess(env);
const kill9 = (r: RunningService) => r.kill9();

const temp = tempDirs('ec-proc-');
const tempDir = (): string => temp.make();

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'always' });
});
afterAll(async () => {
  await redis?.stop();
  temp.removeAll();
});

describe('the service process (npm start)', () => {
  it('starts with embedded defaults, generates and saves an admin token, serves /health', async () => {
    const dataDir = tempDir();
    const svc = await startService({ DATA_DIR: dataDir });
    try {
      const out = svc.output();
      expect(out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/store: embedded SQLite/i);
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(out).toContain(token);
      expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
      const health = await fetch(`${svc.base}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
      expect((await fetch(`${svc.base}/api/settings`)).status).toBe(401);
      const settings = await fetch(`${svc.base}/api/settings`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await settings.json()) as any).emailChannel.enabled).toBe(false);
    } finally {
      await kill9(svc);
    }
    // Second start: same token, not printed again.
    const again = await startService({ DATA_DIR: dataDir });
    try {
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      expect(again.output()).not.toContain(token);
      expect((await fetch(`${again.base}/api/settings`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await kill9(again);
    }
  }, 90_000);

  for (const backend of ['embedded', 'redis'] as const) {
    it(`keeps a PUT /api/settings acknowledged just before kill -9 (${backend})`, async () => {
      const dataDir = tempDir();
      const token = 'proc-admin-token-0123456789abcdef';
      const env: Record<string, string> = { DATA_DIR: dataDir, ADMIN_TOKEN: token };
      if (backend === 'redis') Object.assign(env, { REDIS_URL: `${redis.url}/2`, SECRET_KEY: 'cd'.repeat(32) });
      const svc = await startService(env);
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      try {
        const res = await fetch(`${svc.base}/api/settings`, {
          method: 'PUT',
          headers: auth,
          body: JSON.stringify({ emailChannel: { enabled: true }, timers: { pausedToClosed: { days: 45 } } }),
        });
        expect(res.status).toBe(200);
      } finally {
        await kill9(svc); // immediately after the 200
      }
      const restarted = await startService(env);
      try {
        const body = (await (await fetch(`${restarted.base}/api/settings`, { headers: auth })).json()) as any;
        expect(body.emailChannel.enabled).toBe(true);
        expect(body.timers.pausedToClosed.days).toBe(45);
      } finally {
        await kill9(restarted);
      }
    }, 90_000);
  }

  it('refuses to start on Redis without SECRET_KEY and ADMIN_TOKEN, saying why', async () => {
    await expect(startService({ DATA_DIR: tempDir(), REDIS_URL: redis.url })).rejects.toThrow(/SECRET_KEY and ADMIN_TOKEN must be set/);
  }, 60_000);
});

// Builds the whole service in-process (createServices) on a temp DATA_DIR, embedded or on Redis, for API tests.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from '../../src/config/env.js';
import { createServices, type Services } from '../../src/entry/services.js';
import type { Clock } from '../../src/core/ports.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const TEST_SECRET_KEY = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

export interface TestService {
  services: Services;
  dataDir: string;
  /** JSON request through app.request; `token: null` sends none. */
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any; headers: Headers }>;
  /** Closes and builds the service again on the same data (a restart). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestService(
  opts: { redisUrl?: string; env?: Record<string, string>; clock?: Clock; dataDir?: string; resolveHost?: (host: string) => Promise<string[]> } = {},
): Promise<TestService> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'ec-data-'));
  chmodSync(dataDir, 0o755);
  const env = parseEnv({
    DATA_DIR: dataDir,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SECRET_KEY: TEST_SECRET_KEY,
    LOG_LEVEL: 'silent',
    ALLOW_PRIVATE_HOSTS: 'true',
    METRICS_DEFAULTS: 'false',
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env,
  });
  const serviceOpts = { ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.resolveHost ? { resolveHost: opts.resolveHost } : {}) };
  let services = await createServices(env, serviceOpts);
  const handle: TestService = {
    get services() {
      return services;
    },
    dataDir,
    async call(method, path, body, token = TEST_ADMIN_TOKEN) {
      const headers: Record<string, string> = {};
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      let payload: string | undefined;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const res = await services.app.request(path, { method, headers, body: payload });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async restart() {
      await services.close();
      services = await createServices(env, serviceOpts);
    },
    async stop() {
      await services.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

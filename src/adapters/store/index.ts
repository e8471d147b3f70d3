// Opens the configured Store: Redis when a URL is given, otherwise the embedded SQLite file under the data dir.
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Clock, Logger, Store } from '../../core/ports.js';
import { openRedisStore, type JobSink } from './redis-store.js';
import { openSqliteStore } from './sqlite-store.js';

export { openRedisStore, RedisStore, type JobSink, type RedisStoreOptions } from './redis-store.js';
export { openSqliteStore, SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

/** File name of the embedded database inside the data dir. */
export const EMBEDDED_DB_FILE = 'email-channel.db';

export interface OpenStoreConfig {
  /** When set, the store is Redis; otherwise embedded SQLite. */
  redisUrl?: string;
  dataDir: string;
  clock?: Clock;
  /** Redis only: where `commit` sends its jobs (the BullMQ queue). Embedded jobs go to the same SQLite file. */
  jobSink?: JobSink;
  logger?: Logger;
}

export interface OpenedStore {
  store: Store;
  kind: 'embedded' | 'redis';
  /** For logs and /health: where the data lives, with any password masked. */
  describe: string;
  /** Embedded only: the SQLite handle the embedded job runner shares. */
  db?: Database.Database;
}

/** `redis://user:secret@host:6379/0` -> `redis://user:****@host:6379/0`. */
export function maskRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return '(unparseable redis url)';
  }
}

export async function openStore(config: OpenStoreConfig): Promise<OpenedStore> {
  if (config.redisUrl) {
    const store = await openRedisStore({
      url: config.redisUrl,
      ...(config.clock ? { clock: config.clock } : {}),
      ...(config.jobSink ? { jobSink: config.jobSink } : {}),
      ...(config.logger ? { logger: config.logger } : {}),
    });
    return { store, kind: 'redis', describe: `redis at ${maskRedisUrl(config.redisUrl)}` };
  }
  const file = join(config.dataDir, EMBEDDED_DB_FILE);
  const store = await openSqliteStore({ file, ...(config.clock ? { clock: config.clock } : {}) });
  return { store, kind: 'embedded', describe: `embedded SQLite at ${file}`, db: store.db };
}

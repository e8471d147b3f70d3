// Builds the durable job queue: the SQLite runner when embedded, BullMQ when a Redis URL is configured.
import type Database from 'better-sqlite3';
import type { JobQueue } from '../../core/ports.js';
import { BullmqJobQueue, type BullmqJobQueueOptions } from './bullmq-jobs.js';
import { SqliteJobQueue, type SqliteJobQueueOptions } from './sqlite-jobs.js';

export type CreateJobQueueOptions =
  | ({ kind: 'embedded'; db: Database.Database } & Omit<SqliteJobQueueOptions, 'db'>)
  | ({ kind: 'redis'; url: string } & Omit<BullmqJobQueueOptions, 'url'>);

export function createJobQueue(opts: CreateJobQueueOptions): JobQueue {
  if (opts.kind === 'embedded') {
    const { kind: _kind, ...rest } = opts;
    return new SqliteJobQueue(rest);
  }
  const { kind: _kind, ...rest } = opts;
  return new BullmqJobQueue(rest);
}

export { BullmqJobQueue, decodeBullId, encodeBullId, type BullmqJobQueueOptions } from './bullmq-jobs.js';
export { SqliteJobQueue, type SqliteJobQueueOptions } from './sqlite-jobs.js';
export { ensureJobsSchema, insertJobsSync } from './sqlite-schema.js';

// The embedded job table, shared by the SQLite store (which inserts jobs in the same transaction
// as the state change that caused them) and the SQLite job runner (which executes them).
import type Database from 'better-sqlite3';
import type { JobSpec } from '../../core/ports.js';

export const DEFAULT_MAX_ATTEMPTS = 10;

export const JOBS_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS jobs (
  id           TEXT PRIMARY KEY,
  purpose      TEXT NOT NULL,
  target       TEXT NOT NULL,
  payload      TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('waiting','delayed','active','completed','failed')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  run_at       INTEGER NOT NULL,
  last_error   TEXT,
  lease_until  INTEGER,
  lease_owner  TEXT,
  deferrals    INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
`;

/** Indexes: due jobs per state, paging per state and across states (newest first). */
export const JOBS_INDEX_SQL = `
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at);
CREATE INDEX IF NOT EXISTS jobs_state_updated ON jobs (state, updated_at, id);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated_at, id);
`;

/** Columns added after the first version of the table, applied to older databases by `ensureJobsSchema`. */
const ADDED_COLUMNS: ReadonlyArray<[name: string, ddl: string]> = [
  ['lease_owner', 'lease_owner TEXT'],
  ['deferrals', 'deferrals INTEGER NOT NULL DEFAULT 0'],
];

/** Creates the table and indexes (idempotent) and adds columns missing from an older table. */
export function ensureJobsSchema(db: Database.Database): void {
  db.exec(JOBS_SCHEMA_SQL);
  const present = new Set((db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).map((c) => c.name));
  for (const [name, ddl] of ADDED_COLUMNS) {
    if (!present.has(name)) db.exec(`ALTER TABLE jobs ADD COLUMN ${ddl}`);
  }
  db.exec(JOBS_INDEX_SQL);
}

/** Inserts jobs unless a job with the same id exists (dedup). Call inside the caller's transaction. */
export function insertJobsSync(db: Database.Database, jobs: JobSpec[], now: number): void {
  if (jobs.length === 0) return;
  const stmt = db.prepare(
    `INSERT OR IGNORE INTO jobs (id, purpose, target, payload, state, attempts, max_attempts, run_at, created_at, updated_at)
     VALUES (@id, @purpose, @target, @payload, @state, 0, @maxAttempts, @runAt, @now, @now)`,
  );
  for (const job of jobs) {
    // INSERT OR IGNORE would also drop rows breaking NOT NULL/CHECK silently: refuse bad specs loudly.
    for (const field of ['id', 'purpose', 'target'] as const) {
      if (typeof job[field] !== 'string' || job[field].length === 0) throw new TypeError(`job ${field} must be a non-empty string`);
    }
    const runAt = job.runAt ?? now;
    stmt.run({
      id: job.id,
      purpose: job.purpose,
      target: job.target,
      payload: JSON.stringify(job.payload ?? null),
      state: runAt > now ? 'delayed' : 'waiting',
      maxAttempts: job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      runAt,
      now,
    });
  }
}

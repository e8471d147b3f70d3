// Mail archive (R-STO-2..4): every inbound and outbound message as raw .eml, and at each session end its PDF,
// metadata file and JSON transcript, under `<folder>/<sessionId>/…`. Writes are durable jobs (a bucket outage
// delays the archive, never loses it, never blocks ingest); object keys are derived from the message or the
// session end, so a retried job overwrites the same object (exactly once per object). Retention (R-STO-1) purges
// bodies and raw bytes from the service's own store once archived, by an indexed sweep over what is due.
import {
  ARCHIVE_ATTEMPTS,
  ARCHIVE_BATCH_PURPOSE,
  ARCHIVE_PENDING_INDEX,
  archiveWrites,
  ARCHIVE_SESSION_PURPOSE,
  ARCHIVE_TARGET,
  archiveObjectKey,
  ArchiveError,
  type ArchiveSettings,
  type ArchiveStore,
} from '../core/archive.js';
import { AppError } from '../core/errors.js';
import { CommitConflictError, RetryLaterError, type BlobStore, type Clock, type JobRecord, type JobSpec, type Logger, type Store, type WriteOp } from '../core/ports.js';
import type { Session } from '../core/session/model.js';
import { IDX_MESSAGES_RECEIVED, idxSessionMessages, messageKey, sessionKey, type StoredSession } from '../core/session/store-layout.js';
import type { StoredMessage } from './ingest-message.js';
import { messageWriteOps, patchMessage } from './message-writes.js';

export { ARCHIVE_TARGET, archiveWrites } from '../core/archive.js';
const ARCHIVE_SESSION = ARCHIVE_SESSION_PURPOSE;
export const ARCHIVE_STATUS_KEY = 'archive-status';
/** Held (with a TTL) while a batch runs: one batch at a time. */
export const ARCHIVE_BATCH_LOCK = 'archive-batch-lock';
const DAY_MS = 86_400_000;

export interface ArchiveStatus {
  lastSuccessAt: string | null;
  lastErrorAt: string | null;
  /** The failure's code (auth, no_bucket, forbidden, network, timeout, unknown): safe for the open /health. */
  lastError: string | null;
  /** The provider's own words (admin API only: GET /api/storage/status). */
  lastErrorMessage?: string | null;
}

export interface ArchiveDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  logger: Logger;
  settings(): Promise<ArchiveSettings>;
  archive(): Promise<ArchiveStore>;
  /** The thread as a PDF (null when no renderer runs here: the PDF is then skipped, the rest archived). */
  transcriptPdf?(sessionId: string): Promise<Uint8Array>;
  metadata(sessionId: string): Promise<Record<string, unknown>>;
}

/** A message's archive copy (set once written): the object key and the store it went to. */
export interface ArchivedRef {
  key: string;
  at: string;
  /** Provider, bucket and folder at the time (the copy stays there when the settings change later). */
  where?: string;
}

/** Where objects go under the settings (no secret): compared when reading a copy back. */
const whereOf = (s: ArchiveSettings) => `${s.provider}:${s.bucket}:${s.folder}`;

type WithArchive = StoredMessage & { archive?: ArchivedRef; purgedAt?: string };

/** The jobs a session change causes: at each session end (closed), its PDF, metadata file and JSON transcript. */
export function archiveSessionJobs(prev: Session | null, next: Session): JobSpec[] {
  if (next.status !== 'closed' || prev?.status === 'closed') return [];
  const end = next.interactions.filter((i) => i.type === 'closed').length;
  return [{ id: `archive:session:${next.id}:${end}`, purpose: ARCHIVE_SESSION, target: ARCHIVE_TARGET, payload: { sessionId: next.id, end, at: next.statusChangedAt }, maxAttempts: ARCHIVE_ATTEMPTS }];
}


export class ArchiveService {
  constructor(private readonly deps: ArchiveDeps) {}

  register(jobs: { register(purpose: string, handler: (job: JobRecord) => Promise<void>): void }): void {
    jobs.register(ARCHIVE_BATCH_PURPOSE, () => this.guard(() => this.archiveBatch()));
    jobs.register(ARCHIVE_SESSION, (job) => this.guard(() => this.archiveSession(job.payload as { sessionId: string; end: number; at: number })));
  }

  /** Records success or the last error (for /health and /metrics); a failure is retried later. */
  private async guard(run: () => Promise<void | 'more'>): Promise<void> {
    let more = false;
    try {
      more = (await run()) === 'more';
      await this.status({ lastSuccessAt: new Date(this.deps.clock.now()).toISOString() });
    } catch (err) {
      const message = (err as Error).message;
      // /health is open: it says what kind of failure (the code), the provider's words go to the log and the jobs list.
      const code = err instanceof ArchiveError ? err.code : 'unknown';
      await this.status({ lastErrorAt: new Date(this.deps.clock.now()).toISOString(), lastError: code, lastErrorMessage: message.slice(0, 500) }).catch(() => undefined);
      this.deps.logger.warn({ err: message }, 'archive write failed; it will be retried');
      // Auth, missing bucket, forbidden: an admin has to act; keep the write and look again in a few minutes.
      if (err instanceof ArchiveError && !err.transient) throw new RetryLaterError(`archive: ${message}`, 5 * 60_000);
      throw err;
    }
    // A large backlog: this run went well and the job runs again for the rest (not a failure).
    if (more) throw new RetryLaterError('more messages are waiting for the archive', 100);
  }

  private async status(patch: Partial<ArchiveStatus>): Promise<void> {
    const cur = (await this.deps.store.get<ArchiveStatus>(ARCHIVE_STATUS_KEY)) ?? { lastSuccessAt: null, lastErrorAt: null, lastError: null };
    await this.deps.store.put(ARCHIVE_STATUS_KEY, { ...cur, ...patch });
  }

  async lastStatus(): Promise<ArchiveStatus> {
    return (await this.deps.store.get<ArchiveStatus>(ARCHIVE_STATUS_KEY)) ?? { lastSuccessAt: null, lastErrorAt: null, lastError: null };
  }

  /**
   * Archives the pending messages stored up to now (the batch job of a window): objects written 8 at a time, then one
   * commit for all their archive references (revision-checked; one by one after a concurrent change). At most 4,000
   * per run; more asks for another run. A failed write keeps what was done and retries the rest.
   */
  private async archiveBatch(): Promise<'more' | undefined> {
    // One batch at a time across jobs and instances: concurrent ones would upload the same objects.
    const owner = `${this.deps.clock.now()}:${Math.random().toString(36).slice(2)}`;
    if (!(await this.deps.store.putIfAbsent(ARCHIVE_BATCH_LOCK, owner, { ttlMs: 120_000 }))) {
      throw new RetryLaterError('another archive batch is running', 2_000);
    }
    try {
      return await this.archivePending();
    } finally {
      if ((await this.deps.store.get<string>(ARCHIVE_BATCH_LOCK)) === owner) await this.deps.store.delete(ARCHIVE_BATCH_LOCK);
    }
  }

  private async archivePending(): Promise<'more' | undefined> {
    const settings = await this.deps.settings();
    const archive = await this.deps.archive();
    for (let round = 0; round < 20; round++) {
      const due = await this.deps.store.indexRange(ARCHIVE_PENDING_INDEX, { max: this.deps.clock.now(), limit: 200 });
      if (due.length === 0) return undefined;
      const docs = await this.deps.store.getMany<WithArchive>(due.map((e) => messageKey(e.member)));
      const at = new Date(this.deps.clock.now()).toISOString();
      const written: { m: WithArchive; ref: ArchivedRef }[] = [];
      const drop: string[] = [];
      let failure: unknown;
      let failed = 0;
      for (let i = 0; i < due.length; i += 8) {
        await Promise.all(
          due.slice(i, i + 8).map(async (entry, j) => {
            const m = docs[i + j];
            if (!m || m.archive) return void drop.push(entry.member);
            let key: string;
            try {
              key = archiveObjectKey(settings.folder, m.sessionId, Date.parse(m.receivedAt), 'eml', m.id);
            } catch (err) {
              // Cannot be named (a malformed old document): never archivable, so it must not block the others.
              this.deps.logger.warn({ messageId: m.id, err: (err as Error).message }, 'archive: message cannot be archived; skipped');
              return void drop.push(entry.member);
            }
            try {
              const raw = m.rawKey ? await this.deps.blobs.get(m.rawKey) : undefined;
              if (!raw) {
                this.deps.logger.warn({ messageId: m.id }, 'archive: the raw bytes are gone; nothing to archive');
                return void drop.push(entry.member);
              }
              await archive.put(key, raw, 'message/rfc822');
              written.push({ m, ref: { key, at, where: whereOf(settings) } });
            } catch (err) {
              failure ??= err;
              failed++;
            }
          }),
        );
      }
      // What was written is recorded before any failure is reported: a retry redoes only the rest.
      await this.recordArchived(written, drop);
      if (failure !== undefined) {
        if (written.length === 0) throw failure;
        this.deps.logger.warn({ failed, written: written.length, err: (failure as Error).message }, 'archive: some objects could not be written; they are retried');
        throw failure;
      }
    }
    return 'more';
  }

  /** One commit for a batch's references and index removals; one by one when a message changed meanwhile. */
  private async recordArchived(written: { m: WithArchive; ref: ArchivedRef }[], drop: string[]): Promise<void> {
    const unindex = (id: string): WriteOp => ({ op: 'unindex', index: ARCHIVE_PENDING_INDEX, member: id });
    if (written.length + drop.length === 0) return;
    try {
      await this.deps.store.commit([...written.flatMap(({ m, ref }) => messageWriteOps(m, { ...m, archive: ref } as WithArchive)), ...drop.map(unindex), ...written.map(({ m }) => unindex(m.id))]);
    } catch (err) {
      if (!(err instanceof CommitConflictError)) throw err;
      for (const { m, ref } of written) {
        await patchMessage(this.deps.store, m.id, (cur) => ((cur as WithArchive).archive ? null : ({ ...cur, archive: ref } as WithArchive)), async () => ({ ops: [unindex(m.id)] }));
      }
      if (drop.length > 0) await this.deps.store.commit(drop.map(unindex));
    }
  }

  /**
   * Safety net: messages pending for a while with no archive job waiting or running (a message committed into a window
   * whose job had already run, a crash) get a new batch job. Returns how many were pending.
   */
  async reconcile(jobs: { enqueue(specs: JobSpec[]): Promise<void>; counts(target?: string): Promise<Record<string, number>> }, minAgeMs = 30_000): Promise<number> {
    const now = this.deps.clock.now();
    const stranded = await this.deps.store.indexCount(ARCHIVE_PENDING_INDEX, Number.NEGATIVE_INFINITY, now - minAgeMs);
    if (stranded === 0) return 0;
    const c = await jobs.counts(ARCHIVE_TARGET);
    if ((c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) === 0) await jobs.enqueue(archiveWrites('reconcile', now).jobs);
    return stranded;
  }

  /** Messages waiting for their archive copy. */
  async pendingCount(): Promise<number> {
    return this.deps.store.indexCount(ARCHIVE_PENDING_INDEX);
  }

  private async archiveSession(p: { sessionId: string; end: number; at: number }): Promise<void> {
    const session = await this.deps.store.get<StoredSession>(sessionKey(p.sessionId));
    if (!session) return;
    const settings = await this.deps.settings();
    const archive = await this.deps.archive();
    const tag = `end${p.end}`;
    const metadata = await this.deps.metadata(p.sessionId);
    await archive.put(archiveObjectKey(settings.folder, p.sessionId, p.at, 'metadata', tag), json(metadata), 'application/json');
    await archive.put(archiveObjectKey(settings.folder, p.sessionId, p.at, 'transcript', tag), json(await this.transcript(session)), 'application/json');
    if (this.deps.transcriptPdf) {
      const pdf = await this.deps.transcriptPdf(p.sessionId);
      await archive.put(archiveObjectKey(settings.folder, p.sessionId, p.at, 'pdf', tag), pdf, 'application/pdf');
    }
  }

  /** The thread as data: the session and every message with its text (what the archive keeps once bodies are purged here). */
  private async transcript(session: StoredSession): Promise<Record<string, unknown>> {
    const entries = await this.deps.store.indexRange(idxSessionMessages(session.id), { limit: 1000 });
    const messages = (await this.deps.store.getMany<WithArchive>(entries.map((e) => messageKey(e.member)))).filter((m): m is WithArchive => !!m);
    const { rev: _rev, ...s } = session;
    return {
      session: { ...s, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt), statusChangedAt: iso(s.statusChangedAt), lastActivityAt: iso(s.lastActivityAt), interactions: s.interactions.map((i) => ({ ...i, at: iso(i.at) })) },
      messages: messages.map(({ rawKey: _r, source: _s, ...m }) => m),
    };
  }

  /** The archived bytes of a message whose own copy was purged (raw download, R-STO-4 item 6). */
  async rawFromArchive(message: StoredMessage): Promise<Uint8Array | undefined> {
    const ref = (message as WithArchive).archive;
    if (!ref) return undefined;
    const settings = await this.deps.settings();
    if (ref.where && ref.where !== whereOf(settings)) {
      throw new AppError('not_found', `the archive copy of message ${message.id} is in ${ref.where.replace(/:/g, ' / ')}, which is no longer the configured storage (${ref.key})`);
    }
    return (await this.deps.archive()).get(ref.key);
  }

  /**
   * Retention (R-STO-1): past `retentionDays`, archived messages lose their bodies, raw bytes and attachment bytes here
   * (headers, ids and the archive key stay). Reads only the due part of the index (cost ∝ what is due); idempotent.
   * Messages not archived yet are left for a later sweep. Returns how many were purged.
   */
  async purgeExpired(max = 5000): Promise<number> {
    const settings = await this.deps.settings();
    if (settings.retentionDays === null) return 0;
    const cutoff = this.deps.clock.now() - settings.retentionDays * DAY_MS;
    let purged = 0;
    let seen = 0;
    let after: { member: string; score: number } | undefined;
    while (seen < max) {
      const due = await this.deps.store.indexRange(IDX_MESSAGES_RECEIVED, { max: cutoff, limit: 200, ...(after ? { after } : {}) });
      if (due.length === 0) break;
      for (const entry of due) {
        seen++;
        const m = await this.deps.store.get<WithArchive>(messageKey(entry.member));
        if (!m || m.purgedAt) {
          await this.deps.store.indexRemove(IDX_MESSAGES_RECEIVED, entry.member);
          continue;
        }
        if (!m.archive) {
          // Not archived yet (an outage): look again in an hour, so it never blocks the sweep's head.
          await this.deps.store.indexAdd(IDX_MESSAGES_RECEIVED, m.id, cutoff + 3_600_000);
          continue;
        }
        const purgedAt = new Date(this.deps.clock.now()).toISOString();
        const written = await patchMessage(
          this.deps.store,
          m.id,
          (cur) => ((cur as WithArchive).archive && !(cur as WithArchive).purgedAt ? ({ ...cur, text: '', html: null, rawKey: null, purgedAt } as WithArchive) : null),
          async () => ({ ops: [{ op: 'unindex', index: IDX_MESSAGES_RECEIVED, member: m.id }] }),
        );
        if ((written as WithArchive | undefined)?.purgedAt !== purgedAt) continue;
        if (m.rawKey) await this.deps.blobs.delete(m.rawKey);
        purged++;
      }
      after = due[due.length - 1];
      if (due.length < 200) break;
    }
    if (purged > 0) this.deps.logger.info({ purged, retentionDays: settings.retentionDays }, 'retention: message bodies purged (the archive keeps them)');
    return purged;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));

// GET /health: the store's reachability and each mailbox's state (SPEC §11b Health).
import type { Store } from '../core/ports.js';

export interface MailboxHealth {
  accountId: string;
  state: string;
  backlog: number;
  lastError: string | null;
  lastMessageAt: string | null;
  /** Progress of an `importSince` import, while one exists. */
  import?: { done: number; total: number | null; finished: boolean } | null;
}

export interface ArchiveHealth {
  /** Archive writes waiting or being retried. */
  backlog: number;
  lastError: string | null;
  lastErrorAt: string | null;
  lastSuccessAt: string | null;
}

export interface HealthReport {
  status: 'ok' | 'degraded' | 'unavailable';
  store: 'ok' | 'unreachable';
  mailboxes: MailboxHealth[];
  /** The mail archive (R-STO-4), where it runs. */
  archive?: ArchiveHealth;
}

/** Anything that reports mailbox states (the mailbox workers of the inbound issue). */
export interface MailboxStatusSource {
  mailboxes(): MailboxHealth[];
}

export class HealthService {
  constructor(
    private readonly store: Store | undefined,
    private readonly sources: MailboxStatusSource[] = [],
    private readonly archive?: () => Promise<ArchiveHealth>,
  ) {}

  async report(): Promise<HealthReport> {
    const storeOk = this.store ? await this.store.ping().catch(() => false) : false;
    const mailboxes = this.sources.flatMap((s) => s.mailboxes());
    if (!storeOk) return { status: 'unavailable', store: 'unreachable', mailboxes };
    const found = this.archive ? await this.archive().catch(() => undefined) : undefined;
    // The open /health shows the failure's code only; the provider's words are for the admin API.
    const archive: ArchiveHealth | undefined = found && { backlog: found.backlog, lastError: found.lastError, lastErrorAt: found.lastErrorAt, lastSuccessAt: found.lastSuccessAt };
    // The archive is failing when its last attempt failed and writes are waiting.
    const archiveFailing = !!archive && archive.backlog > 0 && !!archive.lastErrorAt && (!archive.lastSuccessAt || archive.lastErrorAt > archive.lastSuccessAt);
    const degraded = archiveFailing || mailboxes.some((m) => m.state !== 'connected' && m.state !== 'idle' && m.state !== 'disabled');
    return { status: degraded ? 'degraded' : 'ok', store: 'ok', mailboxes, ...(archive ? { archive } : {}) };
  }
}

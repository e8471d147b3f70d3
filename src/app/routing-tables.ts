// The routing tables (accounts with their addresses, which queue owns each account, the default queue),
// cached briefly so ingest does not re-read them for every message; invalidated on any change.
import type { Clock } from '../core/ports.js';
import type { RoutableAccount, RoutingTables } from '../core/routing.js';

export interface RoutingSources {
  accounts(): Promise<RoutableAccount[]>;
  queueOfAccounts(accountIds: string[]): Promise<Map<string, string>>;
  defaultQueueId(): Promise<string | null>;
}

export class RoutingTablesCache {
  private cached: { at: number; tables: Promise<RoutingTables> } | undefined;

  constructor(
    private readonly sources: RoutingSources,
    private readonly clock: Clock,
    private readonly ttlMs = 5000,
  ) {}

  get(): Promise<RoutingTables> {
    const now = this.clock.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.tables;
    const tables = (async () => {
      const accounts = await this.sources.accounts();
      const [queueOfAccount, defaultQueueId] = await Promise.all([this.sources.queueOfAccounts(accounts.map((a) => a.id)), this.sources.defaultQueueId()]);
      return { accounts, queueOfAccount, defaultQueueId };
    })();
    this.cached = { at: now, tables };
    tables.catch(() => {
      if (this.cached?.tables === tables) this.cached = undefined;
    });
    return tables;
  }

  invalidate(): void {
    this.cached = undefined;
  }
}

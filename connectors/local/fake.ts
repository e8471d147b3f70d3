// The local connector's fake for the kit: an in-memory stand-in for the storage the service lends it, with failure injection.
import type { RequestHandler } from 'msw';
import type { ConnectorStorage, CrmEvent } from '../contract.js';
import { applyLocalChange, LOCAL_KEYS } from './client.js';
import { isLocalRecord, isLocalStatus, type LocalRecord } from './mapping.js';

/** What the kit injects; the local "CRM" has no HTTP, so every failure becomes the store throwing. */
export type StorageFailure = { status: number; retryAfterSeconds?: number } | { network: true };

function injectedError(failure: StorageFailure, op: string): Error {
  if ('network' in failure) return Object.assign(new Error(`${op}: connection reset by peer (injected)`), { code: 'ECONNRESET' });
  return Object.assign(new Error(`${op}: store unavailable, status ${failure.status} (injected)`), { status: failure.status });
}

/** ConnectorStorage in memory. Values are kept as JSON text, as a real store serialises them. */
export class MemoryStorage implements ConnectorStorage {
  private readonly data = new Map<string, string>();
  private failures: { failure: StorageFailure; left: number }[] = [];
  private ops = 0;

  async get(key: string): Promise<unknown> {
    this.tick('get');
    return this.peek(key);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.tick('put');
    this.data.set(key, JSON.stringify(value));
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    this.tick('putIfAbsent');
    if (this.data.has(key)) return false;
    this.data.set(key, JSON.stringify(value));
    return true;
  }

  async list(prefix: string, limit: number): Promise<unknown[]> {
    this.tick('list');
    return [...this.data.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort()
      .slice(0, limit)
      .map((k) => this.peek(k));
  }

  /** Reads without counting or failing (for the kit's assertions). */
  peek(key: string): unknown {
    const text = this.data.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  values(): unknown[] {
    return [...this.data.values()].map((text) => JSON.parse(text));
  }

  /** The next `times` operations throw. */
  fail(failure: StorageFailure, times: number): void {
    this.failures.push({ failure, left: times });
  }

  operations(): number {
    return this.ops;
  }

  clear(): void {
    this.data.clear();
    this.failures = [];
    this.ops = 0;
  }

  private tick(op: string): void {
    this.ops += 1;
    const head = this.failures[0];
    if (!head) return;
    head.left -= 1;
    if (head.left <= 0) this.failures.shift();
    throw injectedError(head.failure, op);
  }
}

/** The fake the kit drives (ConnectorFake, structurally: a connector folder does not import the kit). */
export function createLocalFake() {
  const storage = new MemoryStorage();
  const records = (): LocalRecord[] => storage.values().filter(isLocalRecord);
  const recordOf = (id: string): LocalRecord | undefined => {
    const value = storage.peek(LOCAL_KEYS.record(id));
    return isLocalRecord(value) ? value : undefined;
  };
  const handlers: RequestHandler[] = [];

  return {
    /** No HTTP API: nothing for msw to answer. */
    handlers,
    storage,
    reset(): void {
      storage.clear();
    },
    injectFailure(failure: StorageFailure, opts?: { times?: number }): void {
      storage.fail(failure, opts?.times ?? 1);
    },
    countRecords(externalId: string): number {
      return records().filter((r) => r.externalId === externalId).length;
    },
    comments(recordId: string): { body: string; public: boolean }[] {
      return (recordOf(recordId)?.comments ?? []).map((c) => ({ body: c.body, public: c.public }));
    },
    files(recordId: string): { filename: string; size: number }[] {
      return (recordOf(recordId)?.files ?? []).map((f) => ({ filename: f.filename, size: f.size }));
    },
    record(recordId: string) {
      const r = recordOf(recordId);
      if (!r) return undefined;
      return {
        status: r.status,
        assigneeEmail: r.assigneeEmail,
        tags: r.tags,
        queue: r.queue ? r.queue.name : null,
        requesterEmail: r.requester.email,
        customFields: r.customFields,
      };
    },
    seedAgents(_n: number): void {
      throw new Error("the local CRM has no agents of its own: they are the service's agents (/api/agents)");
    },
    requestCount(): number {
      return storage.operations();
    },
    /** Someone works the local record outside the connector: the change lands in the change log pollEvents reads. */
    async crmChange(recordId: string, change: { status?: string; assigneeEmail?: string | null; publicReply?: string }): Promise<CrmEvent[]> {
      if (change.status !== undefined && !isLocalStatus(change.status)) throw new Error(`not a local status: ${change.status}`);
      return applyLocalChange(
        storage,
        recordId,
        {
          ...(change.status !== undefined ? { status: change.status } : {}),
          ...(change.assigneeEmail !== undefined ? { assigneeEmail: change.assigneeEmail } : {}),
          ...(change.publicReply !== undefined ? { publicReply: change.publicReply } : {}),
        },
        Date.now(),
      );
    },
  };
}

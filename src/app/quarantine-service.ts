// Quarantine read side: list, raw bytes, retry (R-REL-3). Entries are written by the ingest use case.
import { notFound, validationError } from '../core/errors.js';
import { decodeCursor, pageFromEntries, type Page } from '../core/paging.js';
import type { BlobStore, Store } from '../core/ports.js';
import { IDX_QUARANTINE, quarantineKey } from '../core/session/store-layout.js';
import type { IngestService, QuarantineEntry } from './ingest-message.js';

export type QuarantineView = Omit<QuarantineEntry, 'rawKey' | 'rev'> & { rawAvailable: boolean };

const view = ({ rawKey, rev: _rev, ...rest }: QuarantineEntry): QuarantineView => ({ ...rest, rawAvailable: rawKey !== null });

export class QuarantineService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly ingest: IngestService,
  ) {}

  async list(limit: number, cursor?: string): Promise<Page<QuarantineView>> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (cursor !== undefined && !after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    const entries = await this.store.indexRange(IDX_QUARANTINE, { reverse: true, limit: limit + 1, ...(after ? { after } : {}) });
    const docs = await this.store.getMany<QuarantineEntry>(entries.slice(0, limit).map((e) => quarantineKey(e.member)));
    const byId = new Map(docs.filter((d): d is QuarantineEntry => !!d).map((d) => [d.id, d]));
    return pageFromEntries(entries, limit, (e) => {
      const d = byId.get(e.member);
      return d ? view(d) : undefined;
    });
  }

  async raw(id: string): Promise<Uint8Array> {
    const entry = await this.store.get<QuarantineEntry>(quarantineKey(id));
    if (!entry) throw notFound('quarantine entry', id);
    const bytes = entry.rawKey ? await this.blobs.get(entry.rawKey) : undefined;
    if (!bytes) throw notFound('raw bytes of quarantine entry', id);
    return bytes;
  }

  async retry(id: string): Promise<QuarantineView> {
    return view(await this.ingest.retryQuarantined(id));
  }
}

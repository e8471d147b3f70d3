// The local CRM's storage layer (its "client"): key layout, id allocation, per-record serialisation, change log.
import { Buffer } from 'node:buffer';
import { ConnectorError, RECORD_MARKER, type ConnectorStorage, type CreateRecordInput, type CrmEvent } from '../contract.js';
import {
  isCrmEvent,
  isLocalRecord,
  localStatusMap,
  recordId,
  toSessionStatus,
  type LocalComment,
  type LocalFile,
  type LocalRecord,
  type LocalReservation,
  type LocalStatus,
  type LocalVoid,
} from './mapping.js';

/**
 * Every key the local connector writes, relative to the namespace the service lends it (ctx.storage).
 *   rec:<id>              LocalRecord (or a reservation / void slot while ids are allocated)
 *   ext:<externalId>      the record id created for this external id (the idempotency claim)
 *   file:<id>:<fileId>    base64 bytes of an attached file
 *   evt:<12-digit seq>    a CrmEvent: a change made to a record outside the connector (polled)
 *   hint:rec, hint:evt    the last allocated sequence numbers (hints only: allocation claims with putIfAbsent)
 */
export const LOCAL_KEYS = {
  record: (id: string): string => `rec:${id}`,
  external: (externalId: string): string => `ext:${externalId}`,
  fileBytes: (id: string, fileId: string): string => `file:${id}:${fileId}`,
  event: (seq: number): string => `evt:${String(seq).padStart(12, '0')}`,
  recordHint: 'hint:rec',
  eventHint: 'hint:evt',
} as const;

const MAX_CLAIM_PROBES = 10_000;

/** Claims the next free sequence number: putIfAbsent is the claim, so concurrent writers never share one. */
async function claimNext(storage: ConnectorStorage, hintKey: string, keyOf: (n: number) => string, valueOf: (n: number) => unknown): Promise<number> {
  const hint = await storage.get(hintKey);
  let n = typeof hint === 'number' && Number.isSafeInteger(hint) && hint >= 0 ? hint + 1 : 1;
  for (let probes = 0; probes < MAX_CLAIM_PROBES; probes++, n++) {
    if (await storage.putIfAbsent(keyOf(n), valueOf(n))) {
      await storage.put(hintKey, n);
      return n;
    }
  }
  throw new ConnectorError('transient', `local connector: no free slot after ${MAX_CLAIM_PROBES} probes from ${hintKey}`);
}

const locks = new WeakMap<ConnectorStorage, Map<string, Promise<unknown>>>();

/** Serialises read-modify-write of one record within this process (the storage has no compare-and-set). */
async function withRecordLock<T>(storage: ConnectorStorage, id: string, fn: () => Promise<T>): Promise<T> {
  let held = locks.get(storage);
  if (!held) {
    held = new Map();
    locks.set(storage, held);
  }
  const previous = held.get(id) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  held.set(id, tail);
  try {
    return await run;
  } finally {
    if (held.get(id) === tail) held.delete(id);
  }
}

export async function readRecord(storage: ConnectorStorage, id: string): Promise<LocalRecord | undefined> {
  const value = await storage.get(LOCAL_KEYS.record(id));
  return isLocalRecord(value) ? value : undefined;
}

/** What a change to one record decides: the record to write (null: nothing to write) and a result. */
interface RecordUpdate<T> {
  next: LocalRecord | null;
  result: T;
}

/** Applies `change` to the stored record under the record's lock. Throws not_found for an unknown id. */
export async function updateRecord<T>(
  storage: ConnectorStorage,
  id: string,
  change: (record: LocalRecord) => Promise<RecordUpdate<T>> | RecordUpdate<T>,
  now: number,
): Promise<{ before: LocalRecord; after: LocalRecord; result: T }> {
  return withRecordLock(storage, id, async () => {
    const before = await readRecord(storage, id);
    if (!before) throw new ConnectorError('not_found', `local record ${id} does not exist`, undefined, 404);
    const { next, result } = await change(before);
    if (next === null) return { before, after: before, result };
    const after = { ...next, updatedAt: now };
    await storage.put(LOCAL_KEYS.record(id), after);
    return { before, after, result };
  });
}

function newRecord(id: string, input: CreateRecordInput, now: number): LocalRecord {
  const comments: LocalComment[] = [];
  if (input.firstComment) {
    const c = input.firstComment;
    comments.push({
      id: 'C1',
      externalId: `${input.externalId}:first`,
      body: c.bodyText,
      ...(c.bodyHtml !== undefined ? { html: c.bodyHtml } : {}),
      public: c.public,
      ...(c.author ? { author: c.author } : {}),
      at: now,
    });
  }
  return {
    kind: 'record',
    id,
    externalId: input.externalId,
    sessionId: input.sessionId,
    subject: input.subject,
    requester: input.requester,
    status: localStatusMap[input.status],
    assigneeEmail: input.assignee?.email ?? null,
    queue: input.queue,
    comments,
    files: [],
    tags: [RECORD_MARKER],
    customFields: { ...(input.customFields ?? {}) },
    followUpOf: input.followUpOf ?? null,
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * Creates the record of `input.externalId`, or answers the one already created: the external id is
 * claimed with putIfAbsent, so retries and concurrent creators end with one record. A crash between the
 * claim and the write leaves a reservation, which the next attempt completes.
 */
export async function createRecord(storage: ConnectorStorage, input: CreateRecordInput, now: number): Promise<LocalRecord> {
  const record = await settleRecord(storage, input, now);
  // The first message's attachments travel with the creation (idempotent per file: a retry adds none twice).
  const files = input.firstComment?.attachments ?? [];
  for (const [i, file] of files.entries()) await attachFile(storage, record.id, { ...file, externalId: `${input.externalId}:first:${i}` }, now);
  if (files.length === 0) return record;
  const after = await storage.get(LOCAL_KEYS.record(record.id));
  return isLocalRecord(after) ? after : record;
}

async function settleRecord(storage: ConnectorStorage, input: CreateRecordInput, now: number): Promise<LocalRecord> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const claimed = await storage.get(LOCAL_KEYS.external(input.externalId));
    if (typeof claimed === 'string') {
      return withRecordLock(storage, claimed, async () => {
        const slot = await storage.get(LOCAL_KEYS.record(claimed));
        if (isLocalRecord(slot)) return slot;
        const record = newRecord(claimed, input, now);
        await storage.put(LOCAL_KEYS.record(claimed), record);
        return record;
      });
    }
    const n = await claimNext(storage, LOCAL_KEYS.recordHint, (i) => LOCAL_KEYS.record(recordId(i)), (i): LocalReservation => ({
      kind: 'reservation',
      id: recordId(i),
      externalId: input.externalId,
      at: now,
    }));
    const id = recordId(n);
    if (await storage.putIfAbsent(LOCAL_KEYS.external(input.externalId), id)) {
      const record = newRecord(id, input, now);
      await storage.put(LOCAL_KEYS.record(id), record);
      return record;
    }
    // Another writer claimed this external id first: give up our slot and answer theirs.
    const gone: LocalVoid = { kind: 'void', id };
    await storage.put(LOCAL_KEYS.record(id), gone);
  }
  throw new ConnectorError('conflict', `local connector: could not settle the record of ${input.externalId}`);
}

/** Finds the record created for an external id (a reservation not completed yet counts as none). */
export async function findByExternalId(storage: ConnectorStorage, externalId: string): Promise<LocalRecord | undefined> {
  const claimed = await storage.get(LOCAL_KEYS.external(externalId));
  if (typeof claimed !== 'string') return undefined;
  return readRecord(storage, claimed);
}

export async function addComment(
  storage: ConnectorStorage,
  id: string,
  comment: Omit<LocalComment, 'id' | 'at'>,
  now: number,
): Promise<LocalComment> {
  const { result } = await updateRecord(
    storage,
    id,
    (record): RecordUpdate<LocalComment> => {
      const existing = record.comments.find((c) => c.externalId === comment.externalId);
      if (existing) return { next: null, result: existing };
      const added: LocalComment = { ...comment, id: `C${record.comments.length + 1}`, at: now };
      return { next: { ...record, comments: [...record.comments, added] }, result: added };
    },
    now,
  );
  return result;
}

export async function attachFile(
  storage: ConnectorStorage,
  id: string,
  file: { filename: string; contentType: string; bytes: Uint8Array; externalId: string },
  now: number,
): Promise<LocalFile> {
  const { result } = await updateRecord(
    storage,
    id,
    async (record): Promise<RecordUpdate<LocalFile>> => {
      const existing = record.files.find((f) => f.externalId === file.externalId);
      if (existing) return { next: null, result: existing };
      const fileId = `F${record.files.length + 1}`;
      // Bytes first: a crash before the record write leaves unreferenced bytes, never a file without bytes.
      await storage.put(LOCAL_KEYS.fileBytes(id, fileId), Buffer.from(file.bytes).toString('base64'));
      const added: LocalFile = { id: fileId, externalId: file.externalId, filename: file.filename, contentType: file.contentType, size: file.bytes.byteLength, at: now };
      return { next: { ...record, files: [...record.files, added] }, result: added };
    },
    now,
  );
  return result;
}

/** The bytes of an attached file (for the API that shows local records). */
export async function readFileBytes(storage: ConnectorStorage, id: string, fileId: string): Promise<Uint8Array | undefined> {
  const value = await storage.get(LOCAL_KEYS.fileBytes(id, fileId));
  return typeof value === 'string' ? new Uint8Array(Buffer.from(value, 'base64')) : undefined;
}

/** Local records in id-key order (for the API that shows them). */
export async function listRecords(storage: ConnectorStorage, limit: number): Promise<LocalRecord[]> {
  return (await storage.list('rec:', limit)).filter(isLocalRecord);
}

// --- change log: changes made to records outside the connector, read back by pollEvents ---

async function appendEvent(storage: ConnectorStorage, make: (eventId: string) => CrmEvent): Promise<CrmEvent> {
  const n = await claimNext(storage, LOCAL_KEYS.eventHint, LOCAL_KEYS.event, (i) => make(`L-evt-${i}`));
  return make(`L-evt-${n}`);
}

/** The last sequence number of the change log (0 when empty). */
export async function latestEventSeq(storage: ConnectorStorage): Promise<number> {
  const hint = await storage.get(LOCAL_KEYS.eventHint);
  let n = typeof hint === 'number' && Number.isSafeInteger(hint) && hint >= 0 ? hint : 0;
  while ((await storage.get(LOCAL_KEYS.event(n + 1))) !== undefined) n += 1;
  return n;
}

/** Events after `since`, at most `limit`, and the sequence number to poll from next. */
export async function readEvents(storage: ConnectorStorage, since: number, limit: number): Promise<{ events: CrmEvent[]; last: number }> {
  const events: CrmEvent[] = [];
  let last = since;
  while (events.length < limit) {
    const value = await storage.get(LOCAL_KEYS.event(last + 1));
    if (value === undefined) break;
    last += 1;
    if (isCrmEvent(value)) events.push(value);
  }
  return { events, last };
}

/** A change to a local record made outside the connector (an agent working the local record). */
export interface LocalChange {
  status?: LocalStatus;
  assigneeEmail?: string | null;
  publicReply?: string;
  /** Who wrote `publicReply` (default: the record's assignee). */
  authorEmail?: string;
}

/**
 * Applies a change made outside the connector to a local record and logs it for pollEvents, in session
 * terms. The connector's own writes are not logged (they come from the service; echoing them would loop).
 */
export async function applyLocalChange(storage: ConnectorStorage, id: string, change: LocalChange, now: number): Promise<CrmEvent[]> {
  const { before: prev, after } = await updateRecord(
    storage,
    id,
    (record): RecordUpdate<null> => {
      const next: LocalRecord = { ...record };
      if (change.status !== undefined) next.status = change.status;
      if (change.assigneeEmail !== undefined) next.assigneeEmail = change.assigneeEmail;
      if (change.publicReply !== undefined) {
        const author = change.authorEmail ?? record.assigneeEmail ?? 'agent@local.invalid';
        next.comments = [
          ...record.comments,
          { id: `C${record.comments.length + 1}`, externalId: `local:reply:${now}:${record.comments.length + 1}`, body: change.publicReply, public: true, author: { email: author }, at: now },
        ];
      }
      return { next, result: null };
    },
    now,
  );
  const events: CrmEvent[] = [];
  if (change.status !== undefined && change.status !== prev.status) {
    const status = toSessionStatus(change.status, prev.status);
    events.push(await appendEvent(storage, (eventId) => ({ type: 'status_changed', recordId: id, status, at: now, eventId })));
  }
  if (change.assigneeEmail !== undefined && change.assigneeEmail !== prev.assigneeEmail) {
    const assigneeEmail = change.assigneeEmail;
    events.push(await appendEvent(storage, (eventId) => ({ type: 'assignee_changed', recordId: id, assigneeEmail, at: now, eventId })));
  }
  if (change.publicReply !== undefined) {
    const bodyText = change.publicReply;
    const authorEmail = change.authorEmail ?? after.assigneeEmail ?? 'agent@local.invalid';
    events.push(await appendEvent(storage, (eventId) => ({ type: 'agent_reply', recordId: id, bodyText, authorEmail, at: now, eventId })));
  }
  return events;
}

// The local connector (R-API-3): the embedded default CRM, keeping records in the service's own store.
import { z } from 'zod';
import { ConnectorError, defineConnector, type ConnectorInstance, type ConnectorStorage, type RecordRef } from '../contract.js';
import * as client from './client.js';
import { classifyStorageError, localStatusMap } from './mapping.js';

/** The local connector takes no configuration: its "CRM" is the service's own store. */
export const localConfigSchema = z.object({}).strict();

/** Most events a poll answers. */
const POLL_BATCH = 100;

function checkpointOf(since: string | null): number | null {
  if (since === null) return null;
  if (!/^\d{1,15}$/.test(since)) throw new ConnectorError('permanent', `local connector: bad checkpoint "${since}"`);
  return Number(since);
}

export const localConnector = defineConnector({
  id: 'local',
  name: 'Local (embedded)',
  configSchema: localConfigSchema,
  secretFields: [],
  capabilities: {
    comments: true,
    attachments: true,
    statusSync: 'both',
    assignee: true,
    agents: false,
    presence: false,
    webhooks: false,
    polling: true,
    streaming: false,
    followUps: true,
  },
  statusMap: localStatusMap,
  create(ctx): ConnectorInstance {
    const lent = ctx.storage;
    if (!lent) throw new Error('the local connector needs ctx.storage (the service lends it a namespace of its store)');
    const storage: ConnectorStorage = lent;

    /** Every storage failure becomes a ConnectorError (transient); ConnectorErrors pass through. */
    async function guard<T>(op: string, fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (err) {
        throw classifyStorageError(err, op);
      }
    }
    const ref = (id: string): RecordRef => ({ id });

    return {
      test: () =>
        guard('test', async () => {
          await storage.get(client.LOCAL_KEYS.recordHint);
          return { ok: true as const, account: 'local' };
        }),

      createRecord: (input) => guard('createRecord', async () => ref((await client.createRecord(storage, input, ctx.now())).id)),

      findByExternalId: (externalId) =>
        guard('findByExternalId', async () => {
          const record = await client.findByExternalId(storage, externalId);
          return record ? ref(record.id) : null;
        }),

      addComment: (input) =>
        guard('addComment', async () => {
          const now = ctx.now();
          const comment = await client.addComment(
            storage,
            input.recordId,
            {
              externalId: input.externalId,
              body: input.bodyText,
              ...(input.bodyHtml !== undefined ? { html: input.bodyHtml } : {}),
              public: input.public,
              ...(input.author ? { author: input.author } : {}),
            },
            now,
          );
          for (const [i, file] of (input.attachments ?? []).entries()) {
            await client.attachFile(storage, input.recordId, { ...file, externalId: `${input.externalId}:attachment:${i}` }, now);
          }
          return { id: comment.id };
        }),

      attachFile: (recordId, file) => guard('attachFile', async () => ({ id: (await client.attachFile(storage, recordId, file, ctx.now())).id })),

      setStatus: (recordId, status) =>
        guard('setStatus', async () => {
          const target = localStatusMap[status];
          await client.updateRecord(storage, recordId, (r) => ({ next: r.status === target ? null : { ...r, status: target }, result: null }), ctx.now());
        }),

      setAssignee: (recordId, assignee) =>
        guard('setAssignee', async () => {
          const email = assignee?.email ?? null;
          await client.updateRecord(storage, recordId, (r) => ({ next: r.assigneeEmail === email ? null : { ...r, assigneeEmail: email }, result: null }), ctx.now());
        }),

      setQueue: (recordId, queue) =>
        guard('setQueue', async () => {
          await client.updateRecord(storage, recordId, (r) => ({ next: { ...r, queue: { id: queue.id, name: queue.name } }, result: null }), ctx.now());
        }),

      pollEvents: (since) =>
        guard('pollEvents', async () => {
          const from = checkpointOf(since);
          // No checkpoint yet: start from now (replaying old history would undo newer session changes).
          if (from === null) return { events: [], checkpoint: String(await client.latestEventSeq(storage)) };
          const { events, last } = await client.readEvents(storage, from, POLL_BATCH);
          return { events, checkpoint: String(last) };
        }),
    };
  },
});

// The Salesforce connector (R-CON-1): sessions as Cases (EmailMessage, CaseComment, ContentVersion), agent changes by polling.
import { z } from 'zod';
import {
  ConnectorError,
  defineConnector,
  RECORD_MARKER,
  type AddCommentInput,
  type ConnectorInstance,
  type CreateRecordInput,
  type CrmEvent,
  type FileRef,
  type RecordRef,
  type SessionStatus,
} from '../contract.js';
import { SalesforceClient, type CompositeSubrequest, type CompositeSubresponse, type SalesforceAuth, type SalesforceSession } from './client.js';
import { classifySalesforceError, firstErrorCode } from './errors.js';
import { CASE_CHANGE_CHANNEL, COMMENT_EVENT_CHANNEL, subscribeChanges, type ChangeSubscription } from './streaming.js';
import {
  advanceCursor,
  agentsSoql,
  alreadySeen,
  caseCommentsSoql,
  caseFields,
  caseFilesSoql,
  commentBody,
  crmStatusToSession,
  DATA_PATH,
  decodeCheckpoint,
  DEFAULT_STATUS_MAP,
  encodeCheckpoint,
  EXTERNAL_ID_MAX,
  fileDescription,
  firstEmailMessage,
  isSessionStatus,
  LIMITS,
  parseSfDateTime,
  POLL_BATCH,
  pollCasesSoql,
  pollCommentsSoql,
  queueByNameSoql,
  resolveStatusMap,
  SALESFORCE_ID,
  SESSION_ID_FIELD,
  STATUS_FIELD,
  toBase64,
  userByEmailSoql,
  type CursorRow,
} from './mapping.js';

/** Hosts that serve the SOAP/password flows but refuse client credentials ("request not supported on this domain"). */
const GENERIC_LOGIN_HOSTS = new Set(['login.salesforce.com', 'test.salesforce.com']);

const loginUrl = z
  .string()
  .trim()
  .regex(/^https:\/\/[a-zA-Z0-9.-]+(?::\d+)?\/?$/, 'must be an https origin such as https://acme.my.salesforce.com')
  .transform((u) => u.replace(/\/$/, ''));
const statusValue = z.string().trim().min(1).max(40);
const salesforceId = z.string().regex(SALESFORCE_ID, 'must be a 15- or 18-character Salesforce id');

const common = {
  loginUrl,
  /** Session status → Case.Status, over the defaults (an org with "On Hold" sets `paused`). */
  statusMap: z
    .object({ unopened: statusValue, active: statusValue, paused: statusValue, resolved: statusValue, closed: statusValue, reopened: statusValue })
    .partial()
    .strict()
    .optional(),
  /** Service queue id (or name) → OwnerId of the Salesforce queue (00G…) or user; unmapped queues are looked up by name. */
  ownerByQueue: z.record(z.string().min(1).max(100), salesforceId).optional(),
  /** OwnerId for "nobody" after an unassign (default: the integration user). */
  unassignedOwnerId: salesforceId.optional(),
  /** Hold back once the daily API usage reaches this percentage (default 90). */
  apiUsageBackoffPercent: z.number().int().min(50).max(100).optional(),
};

/** OAuth 2.0 client credentials flow: a Connected App whose run-as user is the integration user (the first choice). */
export const clientCredentialsConfigSchema = z
  .object({ ...common, clientId: z.string().trim().min(1).max(256), clientSecret: z.string().min(1).max(256) })
  .strict()
  .refine((c) => !GENERIC_LOGIN_HOSTS.has(new URL(c.loginUrl).hostname), {
    path: ['loginUrl'],
    message: 'the client credentials flow needs the org’s My Domain URL (https://<domain>.my.salesforce.com), not login/test.salesforce.com',
  });

/** SOAP login() with username, password and security token (retired in Summer ’27: the alternative only). */
export const soapLoginConfigSchema = z
  .object({ ...common, username: z.string().trim().min(3).max(80), password: z.string().min(1).max(256), securityToken: z.string().max(64).default('') })
  .strict();

export const salesforceConfigSchema = z.union([clientCredentialsConfigSchema, soapLoginConfigSchema]);
export type SalesforceConfig = z.output<typeof salesforceConfigSchema>;

/** On a first poll (no checkpoint), changes of the last minute are reported: our clock and Salesforce's may differ. */
const POLL_LOOKBACK_MS = 60_000;
/** Per-record idempotency caches (comment and file markers) and look-up caches. */
const CACHE_RECORDS = 500;
const LOOKUP_TTL_MS = 10 * 60_000;

/** A Map that forgets its oldest entries past `max`. */
class Bounded<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.has(key)) this.delete(key);
    super.set(key, value);
    while (this.size > this.max) {
      const oldest = this.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    return this;
  }
}

interface CaseRow {
  Id: string;
  Status: string;
  OwnerId: string;
  Owner: { Type?: string; Email?: string | null } | null;
  EmailChannel_Status__c: string | null;
  LastModifiedDate: string;
  LastModifiedById: string;
}

interface CommentRow {
  Id: string;
  ParentId: string;
  CommentBody: string | null;
  CreatedDate: string;
  CreatedById: string;
  CreatedBy: { Email?: string | null } | null;
}

/** An ambiguous failure: the write may have happened (no answer, or a 5xx). */
function ambiguous(err: unknown): boolean {
  return err instanceof ConnectorError && err.kind === 'transient' && (err.status === undefined || err.status >= 500);
}

function authOf(cfg: SalesforceConfig): SalesforceAuth {
  if ('clientId' in cfg) return { kind: 'client_credentials', clientId: cfg.clientId, clientSecret: cfg.clientSecret };
  return { kind: 'soap', username: cfg.username, password: cfg.password, securityToken: cfg.securityToken };
}

export const salesforceConnector = defineConnector({
  id: 'salesforce',
  name: 'Salesforce',
  configSchema: salesforceConfigSchema,
  secretFields: ['clientSecret', 'password', 'securityToken'],
  capabilities: {
    comments: true,
    attachments: true,
    statusSync: 'both',
    assignee: true,
    agents: true,
    presence: false,
    webhooks: false,
    polling: true,
    streaming: true,
    followUps: true,
  },
  statusMap: DEFAULT_STATUS_MAP,
  create(ctx): ConnectorInstance {
    const cfg = ctx.config;
    const statusMap = resolveStatusMap(cfg.statusMap);
    const client = new SalesforceClient({
      loginUrl: cfg.loginUrl,
      auth: authOf(cfg),
      timeoutMs: ctx.timeoutMs,
      now: ctx.now,
      checkHost: ctx.checkHost,
      log: ctx.log,
      usageBackoffPercent: cfg.apiUsageBackoffPercent ?? 90,
    });
    const userIds = new Bounded<string, { id: string | null; at: number }>(CACHE_RECORDS);
    const queueOwners = new Bounded<string, { id: string | null; at: number }>(100);
    /** recordId → (comment external id → CaseComment id), loaded by a query the first time a record is touched. */
    const commentIds = new Bounded<string, Map<string, string>>(CACHE_RECORDS);
    /** recordId → (file external id → ContentVersion id). */
    const fileIds = new Bounded<string, Map<string, string>>(CACHE_RECORDS);

    const caseUrl = (s: SalesforceSession, id: string) => `${s.instanceUrl}/lightning/r/Case/${id}/view`;
    const casePath = (id: string) => `${DATA_PATH}/sobjects/Case/${encodeURIComponent(id)}`;
    const noAutoAssign = { 'Sforce-Auto-Assign': 'FALSE' };

    async function cached(cache: Map<string, { id: string | null; at: number }>, key: string, load: () => Promise<string | null>): Promise<string | null> {
      const hit = cache.get(key);
      if (hit && ctx.now() - hit.at < LOOKUP_TTL_MS) return hit.id;
      const id = await load();
      cache.set(key, { id, at: ctx.now() });
      return id;
    }

    /** The active user with this email (cached). */
    function userIdOf(email: string): Promise<string | null> {
      return cached(userIds, email.toLowerCase(), async () => (await client.query<{ Id: string }>(userByEmailSoql(email))).records[0]?.Id ?? null);
    }

    /** The OwnerId a service queue maps to: config by id, then by name, else the Salesforce queue of that name. */
    function queueOwnerOf(queue: { id: string; name: string }): Promise<string | null> {
      const mapped = cfg.ownerByQueue?.[queue.id] ?? cfg.ownerByQueue?.[queue.name];
      if (mapped) return Promise.resolve(mapped);
      return cached(queueOwners, queue.name.toLowerCase(), async () => (await client.query<{ Id: string }>(queueByNameSoql(queue.name))).records[0]?.Id ?? null);
    }

    async function ownerFor(input: CreateRecordInput): Promise<string | undefined> {
      if (input.assignee) {
        const id = await userIdOf(input.assignee.email);
        if (id) return id;
        ctx.log.warn({ assignee: input.assignee.email }, 'salesforce: no active user with the assignee’s email, the case goes to its queue');
      }
      if (input.queue) {
        const id = await queueOwnerOf(input.queue);
        if (id) return id;
        ctx.log.warn({ queue: input.queue.name }, 'salesforce: no Salesforce queue mapped for this service queue');
      }
      return undefined;
    }

    async function patchCase(recordId: string, fields: Record<string, unknown>): Promise<void> {
      await client.request('PATCH', casePath(recordId), fields, noAutoAssign);
    }

    async function findByExternalId(externalId: string): Promise<RecordRef | null> {
      if (externalId.length === 0 || externalId.length > EXTERNAL_ID_MAX) return null;
      const session = await client.ensureSession();
      try {
        const res = await client.request<{ Id: string }>('GET', `${DATA_PATH}/sobjects/Case/${SESSION_ID_FIELD}/${encodeURIComponent(externalId)}?fields=Id`);
        return { id: res.body.Id, url: caseUrl(session, res.body.Id) };
      } catch (err) {
        if (err instanceof ConnectorError && err.kind === 'not_found') return null;
        throw err;
      }
    }

    /** The markers of the case's comments: external id → CaseComment id. */
    async function commentsOf(recordId: string): Promise<Map<string, string>> {
      const known = commentIds.get(recordId);
      if (known) return known;
      const rows = await client.queryAll<{ Id: string; CommentBody: string | null }>(caseCommentsSoql(recordId));
      const map = new Map<string, string>();
      for (const row of rows) {
        const m = /\[([^[\]\s]+)\]\s*$/.exec(row.CommentBody ?? '');
        if (m?.[1]) map.set(m[1], row.Id);
      }
      commentIds.set(recordId, map);
      return map;
    }

    async function filesOf(recordId: string): Promise<Map<string, string>> {
      const known = fileIds.get(recordId);
      if (known) return known;
      const rows = await client.queryAll<{ Id: string; Description: string | null }>(caseFilesSoql(recordId));
      const map = new Map<string, string>();
      const prefix = `${RECORD_MARKER} `;
      for (const row of rows) if (row.Description?.startsWith(prefix)) map.set(row.Description.slice(prefix.length), row.Id);
      fileIds.set(recordId, map);
      return map;
    }

    /** Writes a record once per external id: known → its id; after an ambiguous failure the cache is dropped so the next attempt queries. */
    async function once(cache: Map<string, Map<string, string>>, recordId: string, known: Map<string, string>, externalId: string, write: () => Promise<string>): Promise<{ id: string }> {
      const existing = known.get(externalId);
      if (existing) return { id: existing };
      try {
        const id = await write();
        known.set(externalId, id);
        return { id };
      } catch (err) {
        if (ambiguous(err)) cache.delete(recordId);
        throw err;
      }
    }

    async function addComment(input: AddCommentInput): Promise<{ id: string }> {
      const known = await commentsOf(input.recordId);
      return once(commentIds, input.recordId, known, input.externalId, async () => {
        const res = await client.request<{ id: string }>('POST', `${DATA_PATH}/sobjects/CaseComment`, {
          ParentId: input.recordId,
          CommentBody: commentBody(input.bodyText, input.externalId),
          IsPublished: input.public,
        });
        return res.body.id;
      });
    }

    async function attachFile(recordId: string, file: FileRef & { externalId: string }): Promise<{ id: string }> {
      const data = toBase64(file.bytes);
      if (data.length > LIMITS.base64Bytes) {
        throw new ConnectorError('permanent', `Salesforce: ${file.filename} is too large for a JSON upload (${file.bytes.byteLength} bytes, at most ~28 MB)`);
      }
      const known = await filesOf(recordId);
      return once(fileIds, recordId, known, file.externalId, async () => {
        const res = await client.request<{ id: string }>('POST', `${DATA_PATH}/sobjects/ContentVersion`, {
          Title: file.filename.slice(0, 255),
          PathOnClient: file.filename.slice(0, 500),
          VersionData: data,
          FirstPublishLocationId: recordId,
          Description: fileDescription(file.externalId),
        });
        return res.body.id;
      });
    }

    /** The first error of a composite answer that is not the echo of another's failure. */
    function compositeFailure(results: CompositeSubresponse[]): CompositeSubresponse | undefined {
      const failed = results.filter((r) => r.httpStatusCode >= 400);
      return failed.find((r) => firstErrorCode(r.body) !== 'PROCESSING_HALTED') ?? failed[0];
    }

    async function createRecord(input: CreateRecordInput): Promise<RecordRef> {
      if (input.externalId.length === 0 || input.externalId.length > EXTERNAL_ID_MAX) {
        throw new ConnectorError('permanent', `Salesforce: externalId "${input.externalId}" does not fit ${SESSION_ID_FIELD} (1…${EXTERNAL_ID_MAX} characters)`);
      }
      const session = await client.ensureSession();
      const ownerId = await ownerFor(input);
      // Case and first message in ONE /composite call (one API call), all or none: a retry after a lost
      // answer hits the unique external id (DUPLICATE_VALUE), nothing is written twice, and we answer the
      // existing case. (An upsert would rewrite a case agents have worked on since, and add the message again.)
      const subs: CompositeSubrequest[] = [
        { method: 'POST', url: `${DATA_PATH}/sobjects/Case`, referenceId: 'newCase', body: caseFields(input, statusMap, ownerId ? { ownerId } : {}), httpHeaders: noAutoAssign },
      ];
      const email = firstEmailMessage(input, '@{newCase.id}', ctx.now());
      if (email) subs.push({ method: 'POST', url: `${DATA_PATH}/sobjects/EmailMessage`, referenceId: 'firstEmail', body: email });
      else if (input.firstComment) {
        subs.push({
          method: 'POST',
          url: `${DATA_PATH}/sobjects/CaseComment`,
          referenceId: 'firstNote',
          body: { ParentId: '@{newCase.id}', CommentBody: commentBody(input.firstComment.bodyText, `${input.externalId}:first`), IsPublished: false },
        });
      }
      const results = await client.composite(subs, true);
      const failure = compositeFailure(results);
      let id: string;
      if (!failure) {
        id = (results[0]?.body as { id: string }).id;
      } else if (firstErrorCode(failure.body) === 'DUPLICATE_VALUE') {
        const existing = await findByExternalId(input.externalId);
        if (!existing) throw classifySalesforceError({ status: failure.httpStatusCode, body: failure.body, headers: failure.httpHeaders }, ctx.now());
        id = existing.id;
      } else {
        throw classifySalesforceError({ status: failure.httpStatusCode, body: failure.body, headers: failure.httpHeaders }, ctx.now());
      }
      // Attachments of the first message, idempotent by their own external ids (a retry completes them).
      for (const [i, att] of (input.firstComment?.attachments ?? []).entries()) {
        await attachFile(id, { ...att, externalId: `${input.externalId}:att:${i}` });
      }
      return { id, url: caseUrl(session, id) };
    }

    async function pollEvents(since: string | null): Promise<{ events: CrmEvent[]; checkpoint: string }> {
      const session = await client.ensureSession();
      const cp = decodeCheckpoint(since, ctx.now() - POLL_LOOKBACK_MS);
      // Both queries in one /composite call: one API call per poll.
      const results = await client.composite(
        [
          { method: 'GET', url: `${DATA_PATH}/query?q=${encodeURIComponent(pollCasesSoql(cp.cases))}`, referenceId: 'cases' },
          { method: 'GET', url: `${DATA_PATH}/query?q=${encodeURIComponent(pollCommentsSoql(cp.comments, session.userId))}`, referenceId: 'comments' },
        ],
        false,
      );
      const failure = compositeFailure(results);
      if (failure) throw classifySalesforceError({ status: failure.httpStatusCode, body: failure.body, headers: failure.httpHeaders }, ctx.now());
      const cases = ((results[0]?.body as { records?: CaseRow[] }).records ?? []) as CaseRow[];
      const comments = ((results[1]?.body as { records?: CommentRow[] }).records ?? []) as CommentRow[];
      const events: CrmEvent[] = [];

      const caseRows: CursorRow[] = [];
      for (const row of cases) {
        const t = parseSfDateTime(row.LastModifiedDate);
        const sig = `${row.Status}|${row.OwnerId}|${row.EmailChannel_Status__c ?? ''}`;
        const cur: CursorRow = { id: row.Id, t, sig };
        caseRows.push(cur);
        if (alreadySeen(cp.cases, cur)) continue;
        const current: SessionStatus | null = isSessionStatus(row.EmailChannel_Status__c) ? row.EmailChannel_Status__c : null;
        const next = crmStatusToSession(row.Status, current, statusMap);
        if (next) events.push({ type: 'status_changed', recordId: row.Id, status: next, at: t, eventId: `sf:${row.Id}:status:${row.Status}:${t}` });
        const previousOwner = cp.cases.seen[row.Id]?.split('|')[1];
        const byAgent = row.LastModifiedById.slice(0, 15) !== session.userId.slice(0, 15);
        if (byAgent && previousOwner !== row.OwnerId && row.OwnerId.slice(0, 15) !== session.userId.slice(0, 15)) {
          const email = row.Owner?.Type === 'User' ? (row.Owner.Email ?? null) : null;
          events.push({ type: 'assignee_changed', recordId: row.Id, assigneeEmail: email, at: t, eventId: `sf:${row.Id}:owner:${row.OwnerId}:${t}` });
        }
      }
      const commentRows: CursorRow[] = [];
      for (const row of comments) {
        const t = parseSfDateTime(row.CreatedDate);
        const cur: CursorRow = { id: row.Id, t, sig: 'c' };
        commentRows.push(cur);
        if (alreadySeen(cp.comments, cur)) continue;
        events.push({ type: 'agent_reply', recordId: row.ParentId, bodyText: row.CommentBody ?? '', authorEmail: row.CreatedBy?.Email ?? '', at: t, eventId: `sf:comment:${row.Id}` });
      }
      events.sort((a, b) => a.at - b.at);
      const checkpoint = encodeCheckpoint({
        v: 2,
        cases: advanceCursor(cp.cases, caseRows, cases.length >= POLL_BATCH),
        comments: advanceCursor(cp.comments, commentRows, comments.length >= POLL_BATCH),
      });
      return { events, checkpoint };
    }

    /** Streaming as a trigger for an immediate poll (streaming.ts): events only call `onChange`; event ids stay the poll's. */
    async function streamChanges(onChange: () => void, onError: (err: Error) => void): Promise<ChangeSubscription> {
      const session = await client.ensureSession();
      return subscribeChanges(
        async (fresh) => {
          if (!fresh) return (await client.ensureSession()).conn;
          // After an authentication failure: a new login (the REST client renews its own session on its next 401).
          const relogin = new SalesforceClient({
            loginUrl: cfg.loginUrl,
            auth: authOf(cfg),
            timeoutMs: ctx.timeoutMs,
            now: ctx.now,
            checkHost: ctx.checkHost,
            log: ctx.log,
            usageBackoffPercent: cfg.apiUsageBackoffPercent ?? 90,
          });
          return (await relogin.ensureSession()).conn;
        },
        {
          onChange,
          onError,
          logger: ctx.log,
          timeoutMs: ctx.timeoutMs,
          ignoreUserId: session.userId,
          channels: [CASE_CHANGE_CHANNEL, { name: COMMENT_EVENT_CHANNEL, optional: true }],
        },
      );
    }

    return {
      async test() {
        const session = await client.ensureSession();
        const res = await client.request<{ fields?: { name: string; externalId?: boolean; unique?: boolean }[] }>('GET', `${DATA_PATH}/sobjects/Case/describe`);
        const fields = new Map((res.body.fields ?? []).map((f) => [f.name, f]));
        const idField = fields.get(SESSION_ID_FIELD);
        if (!idField || !fields.has(STATUS_FIELD)) {
          throw new ConnectorError('permanent', `Salesforce: Case has no ${!idField ? SESSION_ID_FIELD : STATUS_FIELD}: deploy manifests/salesforce and assign the Email_Channel_Integration permission set`);
        }
        if (!idField.externalId || !idField.unique) throw new ConnectorError('permanent', `Salesforce: ${SESSION_ID_FIELD} must be an External ID marked Unique`);
        return { ok: true as const, account: `${new URL(session.instanceUrl).host} (org ${session.orgId})` };
      },
      createRecord,
      findByExternalId,
      addComment,
      attachFile,
      async setStatus(recordId, status) {
        await patchCase(recordId, { Status: statusMap[status], [STATUS_FIELD]: status });
      },
      async setAssignee(recordId, assignee) {
        let ownerId: string;
        if (assignee) {
          const id = await userIdOf(assignee.email);
          if (!id) throw new ConnectorError('permanent', `Salesforce: no active user with the email ${assignee.email}`);
          ownerId = id;
        } else {
          ownerId = cfg.unassignedOwnerId ?? (await client.ensureSession()).userId;
        }
        await patchCase(recordId, { OwnerId: ownerId });
      },
      async setQueue(recordId, queue) {
        const ownerId = await queueOwnerOf(queue);
        if (!ownerId) throw new ConnectorError('permanent', `Salesforce: no queue mapped for "${queue.name}" (set ownerByQueue, or create a queue of that name)`);
        await patchCase(recordId, { OwnerId: ownerId });
      },
      async listAgents(cursor) {
        const session = await client.ensureSession();
        const page = cursor
          ? await client.queryMore<{ Id: string; Email: string; Name: string }>(cursor)
          : await client.query<{ Id: string; Email: string; Name: string }>(agentsSoql(session.userId), { 'Sforce-Query-Options': 'batchSize=200' });
        return {
          agents: page.records.map((u) => ({ crmId: u.Id, email: u.Email, name: u.Name })),
          nextCursor: !page.done && page.nextRecordsUrl ? page.nextRecordsUrl : null,
        };
      },
      pollEvents,
      subscribeChanges: streamChanges,
    };
  },
});

export default salesforceConnector;

// The Zendesk connector (R-CON-1): sessions as tickets through node-zendesk, events back through webhooks.
import { z } from 'zod';
import {
  ConnectorError,
  defineConnector,
  type AddCommentInput,
  type ConnectorContext,
  type ConnectorInstance,
  type CreateRecordInput,
  type CrmAgent,
  type FileRef,
  type RecordRef,
  type SessionStatus,
} from '../contract.js';
import { createZendeskApi, type ZendeskApi, type ZendeskTicket } from './client.js';
import { isFollowUpNeeded, ZendeskConnectorError } from './errors.js';
import {
  COMMENT_METADATA_KEY,
  commentBody,
  createTicketBody,
  customFieldsFor,
  statusMapFor,
  updateTicketBody,
  type MappingConfig,
  type TicketPatch,
} from './mapping.js';
import { TicketWriter, type WriteOutcome } from './ticket-writer.js';
import { parseZendeskWebhook } from './webhooks.js';

export { ZendeskConnectorError, isFollowUpNeeded, classifyZendeskError } from './errors.js';

function parsedUrl(u: string): URL | null {
  try {
    return new URL(u);
  } catch {
    return null;
  }
}

const fieldId = z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)]);

export const zendeskConfigSchema = z
  .object({
    /** The account URL, `https://<subdomain>.zendesk.com` (or a host-mapped https domain). */
    url: z
      .string()
      .trim()
      .url()
      .refine((u) => parsedUrl(u)?.protocol === 'https:', 'must be an https:// URL')
      .refine((u) => parsedUrl(u)?.pathname === '/' && !/[?#]/.test(u), 'must be the account URL, e.g. https://acme.zendesk.com')
      .transform((u) => parsedUrl(u)?.origin ?? u),
    /** The agent or admin the API token belongs to; every write is made as this user. */
    email: z.string().trim().email(),
    apiToken: z.string().min(1),
    /** Signing secret of the webhook (Admin Center › Webhooks › email channel › Reveal secret). */
    webhookSecret: z.string().min(1),
    /** Zendesk status for a closed session: `solved` (default; the automation closes it after 4 days) or `closed` (terminal). */
    closedStatus: z.enum(['solved', 'closed']).default('solved'),
    /** Zendesk status for a paused session. */
    pausedStatus: z.enum(['pending', 'hold']).default('pending'),
    /** Service queue id → Zendesk group id. */
    groupByQueue: z.record(z.string(), fieldId).default({}),
    /** Ticket field (text) that receives the session id. */
    sessionIdFieldId: fieldId.optional(),
    /** Ticket field (text) that receives the session status. */
    statusFieldId: fieldId.optional(),
  })
  .strict();

export type ZendeskConfig = z.output<typeof zendeskConfigSchema>;

/** Audits read when checking whether a comment was already written (100 per page). */
const AUDIT_PAGES_CHECKED = 10;
/** Unknown emails are looked up again after this long (an agent may have been created meanwhile). */
const NEGATIVE_USER_CACHE_MS = 5 * 60_000;
const USER_CACHE_MAX = 1000;

function mappingOf(cfg: ZendeskConfig): MappingConfig {
  return {
    closedStatus: cfg.closedStatus,
    pausedStatus: cfg.pausedStatus,
    groupByQueue: cfg.groupByQueue,
    ...(cfg.sessionIdFieldId !== undefined ? { sessionIdFieldId: cfg.sessionIdFieldId } : {}),
    ...(cfg.statusFieldId !== undefined ? { statusFieldId: cfg.statusFieldId } : {}),
  };
}

/** The record's ticket id must be a Zendesk id; anything else cannot exist there. */
function ticketId(recordId: string): string {
  if (!/^\d{1,19}$/.test(recordId)) throw new ConnectorError('not_found', `zendesk: "${recordId}" is not a ticket id`);
  return recordId;
}

/** Failures after which the write may or may not have happened (check before retrying). */
function ambiguous(err: unknown): boolean {
  return err instanceof ConnectorError && err.kind === 'transient';
}

/** The instance: ConnectorInstance plus the Zendesk-specific coalesced update. */
export interface ZendeskConnectorInstance extends ConnectorInstance {
  /**
   * One Update Ticket call carrying any of status, assignee, queue (group) and a comment — what the service
   * uses when several changes happen together (an agent reply that also assigns and pauses). Separate calls
   * made within a few milliseconds are coalesced the same way.
   */
  updateRecord(
    recordId: string,
    change: { status?: SessionStatus; assignee?: { email: string } | null; queue?: { id: string; name: string }; comment?: Omit<AddCommentInput, 'recordId'> },
  ): Promise<{ commentId?: string }>;
}

export function createZendeskInstance(ctx: ConnectorContext<ZendeskConfig>): ZendeskConnectorInstance {
  const cfg = ctx.config;
  const mapping = mappingOf(cfg);
  const statusMap = statusMapFor(cfg);
  const api: ZendeskApi = createZendeskApi({ url: cfg.url, email: cfg.email, apiToken: cfg.apiToken, timeoutMs: ctx.timeoutMs, now: ctx.now });

  let hostChecked: Promise<void> | undefined;
  const ready = (): Promise<void> => {
    hostChecked ??= ctx.checkHost(new URL(cfg.url).hostname, 'url').catch((err: unknown) => {
      hostChecked = undefined;
      throw err;
    });
    return hostChecked;
  };

  const refOf = (t: { id: number }): RecordRef => ({ id: String(t.id), url: `${cfg.url}/agent/tickets/${t.id}` });

  // -- users by email (assignee, comment author), cached ------------------------------------------------
  const users = new Map<string, { id: number | null; role: string; at: number }>();
  async function userByEmail(email: string): Promise<{ id: number; role: string } | null> {
    const key = email.trim().toLowerCase();
    const hit = users.get(key);
    if (hit && (hit.id !== null || ctx.now() - hit.at < NEGATIVE_USER_CACHE_MS)) return hit.id === null ? null : { id: hit.id, role: hit.role };
    const found = (await api.searchUsers(key)).find((u) => u.id !== null && (u.email ?? '').toLowerCase() === key);
    if (users.size >= USER_CACHE_MAX) users.clear();
    const entry = { id: found?.id ?? null, role: found?.role ?? '', at: ctx.now() };
    users.set(key, entry);
    return entry.id === null ? null : { id: entry.id, role: entry.role };
  }
  async function agentId(email: string): Promise<number> {
    const u = await userByEmail(email);
    if (!u || (u.role !== 'agent' && u.role !== 'admin')) throw new ConnectorError('not_found', `zendesk: no agent with email ${email}`);
    return u.id;
  }
  async function authorId(author: { email: string } | undefined): Promise<number | undefined> {
    if (!author) return undefined;
    return (await userByEmail(author.email))?.id ?? undefined;
  }

  async function uploadAll(files: FileRef[] | undefined): Promise<string[]> {
    const tokens: string[] = [];
    for (const f of files ?? []) tokens.push((await api.upload(f)).token);
    return tokens;
  }

  // -- idempotent comments: our comment external id rides in the audit metadata ------------------------
  async function writtenComment(recordId: string, externalId: string): Promise<WriteOutcome | null> {
    const audits = await api.audits(recordId, AUDIT_PAGES_CHECKED);
    const audit = audits.find((a) => a.metadata?.custom?.[COMMENT_METADATA_KEY] === externalId);
    if (!audit) return null;
    const comment = audit.events?.find((e) => e.type === 'Comment');
    return comment?.id !== undefined ? { commentId: String(comment.id) } : {};
  }

  async function sendUpdate(recordId: string, patch: TicketPatch): Promise<WriteOutcome> {
    let toSend = patch;
    let already: WriteOutcome | null = null;
    if (patch.comment) {
      already = await writtenComment(recordId, patch.comment.externalId);
      if (already) {
        const { comment: _done, ...rest } = patch;
        toSend = rest;
      }
    }
    const body = updateTicketBody(toSend);
    if (Object.keys(body.ticket).length === 0) return already ?? {};
    try {
      const res = await api.updateTicket(recordId, body);
      return already ?? (res.commentId !== undefined ? { commentId: res.commentId } : {});
    } catch (err) {
      if (isFollowUpNeeded(err)) {
        ctx.log.info({ recordId }, 'zendesk: ticket is closed; a follow-up ticket is needed');
        throw new ZendeskConnectorError('conflict', `zendesk: ticket ${recordId} is closed; create a follow-up (createRecord with followUpOf)`, {
          status: err.status,
          followUpNeeded: true,
          closedRecordId: recordId,
        });
      }
      if (ambiguous(err) && toSend.comment) {
        // The update may have been applied before the answer was lost: look before the caller retries.
        const written = await writtenComment(recordId, toSend.comment.externalId).catch(() => null);
        if (written) return written;
      }
      throw err;
    }
  }

  const writer = new TicketWriter({ send: sendUpdate, now: ctx.now });

  // -- records -----------------------------------------------------------------------------------------
  function newest(tickets: ZendeskTicket[]): ZendeskTicket | undefined {
    return tickets.reduce<ZendeskTicket | undefined>((best, t) => (!best || t.id > best.id ? t : best), undefined);
  }

  /** The ticket this createRecord call already made (same external id; for a follow-up, newer than its source). */
  async function existingFor(input: CreateRecordInput): Promise<ZendeskTicket | undefined> {
    const found = await api.ticketsByExternalId(input.externalId);
    const source = input.followUpOf !== undefined ? Number(input.followUpOf) : undefined;
    return newest(source === undefined ? found : found.filter((t) => t.id > source));
  }

  async function commentPatch(c: Omit<AddCommentInput, 'recordId'>): Promise<TicketPatch['comment']> {
    const uploads = await uploadAll(c.attachments);
    return { ...commentBody(c, uploads, await authorId(c.author)), externalId: c.externalId };
  }

  const instance: ZendeskConnectorInstance = {
    async test() {
      await ready();
      const me = await api.me();
      if (me.id === null || (me.role !== 'agent' && me.role !== 'admin')) {
        throw new ConnectorError('auth', 'zendesk: the API token does not authenticate an agent or admin');
      }
      for (const [queueId, groupId] of Object.entries(cfg.groupByQueue)) {
        try {
          await api.showGroup(groupId);
        } catch (err) {
          if (err instanceof ConnectorError && err.kind === 'not_found') {
            throw new ConnectorError('permanent', `zendesk: groupByQueue.${queueId}: group ${groupId} does not exist`);
          }
          throw err;
        }
      }
      return { ok: true, account: new URL(cfg.url).hostname };
    },

    async createRecord(input) {
      await ready();
      const existing = await existingFor(input);
      if (existing) return refOf(existing);
      const first = input.firstComment;
      const uploads = await uploadAll(first?.attachments);
      const assignee = input.assignee ? await agentId(input.assignee.email).catch((err: unknown) => {
        if (!(err instanceof ConnectorError && err.kind === 'not_found')) throw err;
        ctx.log.warn({ externalId: input.externalId }, 'zendesk: assignee is not a Zendesk agent; ticket created unassigned');
        return undefined;
      }) : undefined;
      const body = createTicketBody(input, mapping, {
        uploads,
        ...(assignee !== undefined ? { assigneeId: assignee } : {}),
        ...(first?.author ? { authorId: await authorId(first.author) } : {}),
        commentExternalId: input.externalId,
      });
      try {
        return refOf(await api.createTicket(body));
      } catch (err) {
        if (ambiguous(err)) {
          // Timeout, reset or 5xx: Zendesk may have created it. Never create twice.
          const made = await existingFor(input).catch(() => undefined);
          if (made) return refOf(made);
        }
        throw err;
      }
    },

    async findByExternalId(externalId) {
      await ready();
      const found = await api.ticketsByExternalId(externalId);
      if (found.length > 1) ctx.log.info({ externalId, tickets: found.map((t) => t.id) }, 'zendesk: several tickets share this external id; the newest is the record');
      const t = newest(found);
      return t ? refOf(t) : null;
    },

    async addComment(input) {
      await ready();
      const id = ticketId(input.recordId);
      const out = await writer.write(id, { comment: await commentPatch(input) });
      return { id: out.commentId ?? input.externalId };
    },

    async attachFile(recordId, file) {
      await ready();
      const id = ticketId(recordId);
      const done = await writtenComment(id, file.externalId);
      if (done) return { id: done.commentId ?? file.externalId };
      const { token } = await api.upload(file);
      const out = await writer.write(id, {
        comment: { body: `Attached ${file.filename}`, public: false, uploads: [token], externalId: file.externalId },
      });
      return { id: out.commentId ?? file.externalId };
    },

    async setStatus(recordId, status) {
      await ready();
      const fields = customFieldsFor(mapping, { status });
      await writer.write(ticketId(recordId), { status: statusMap[status], ...(fields.length > 0 ? { customFields: fields } : {}) });
    },

    async setAssignee(recordId, assignee) {
      await ready();
      const id = ticketId(recordId);
      await writer.write(id, { assigneeId: assignee ? await agentId(assignee.email) : null });
    },

    async setQueue(recordId, queue) {
      await ready();
      const group = mapping.groupByQueue[queue.id];
      if (group === undefined) throw new ConnectorError('permanent', `zendesk: queue ${queue.id} has no group in groupByQueue`);
      await writer.write(ticketId(recordId), { groupId: group });
    },

    async updateRecord(recordId, change) {
      await ready();
      const id = ticketId(recordId);
      const patch: TicketPatch = {};
      if (change.status !== undefined) {
        patch.status = statusMap[change.status];
        const fields = customFieldsFor(mapping, { status: change.status });
        if (fields.length > 0) patch.customFields = fields;
      }
      if (change.assignee !== undefined) patch.assigneeId = change.assignee ? await agentId(change.assignee.email) : null;
      if (change.queue !== undefined) {
        const group = mapping.groupByQueue[change.queue.id];
        if (group === undefined) throw new ConnectorError('permanent', `zendesk: queue ${change.queue.id} has no group in groupByQueue`);
        patch.groupId = group;
      }
      if (change.comment) patch.comment = await commentPatch(change.comment);
      const out = await writer.write(id, patch);
      return out.commentId !== undefined ? { commentId: out.commentId } : {};
    },

    async listAgents(cursor) {
      await ready();
      const page = await api.agentsPage(cursor);
      const agents: CrmAgent[] = [];
      for (const u of page.users) {
        if (u.id === null || !u.email || u.active === false) continue;
        agents.push({ crmId: String(u.id), email: u.email, name: u.name ?? u.email });
      }
      return { agents, nextCursor: page.next };
    },

    async parseWebhook(request) {
      return parseZendeskWebhook(request, { secret: cfg.webhookSecret, apiUserEmail: cfg.email });
    },
  };
  return instance;
}

export const zendeskConnector = defineConnector({
  id: 'zendesk',
  name: 'Zendesk',
  configSchema: zendeskConfigSchema,
  secretFields: ['apiToken', 'webhookSecret'],
  capabilities: {
    comments: true,
    attachments: true,
    statusSync: 'both',
    assignee: true,
    agents: true,
    presence: false,
    webhooks: true,
    polling: false,
    streaming: false,
    followUps: true,
  },
  // The defaults; `pausedStatus` and `closedStatus` change paused and closed per account.
  statusMap: statusMapFor({ closedStatus: 'solved', pausedStatus: 'pending' }),
  create: createZendeskInstance,
});

export default zendeskConnector;

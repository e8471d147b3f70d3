// Queues (R-QUE-1..3, minimal for routing): name, language, email channel switch, assigned addresses
// (accounts; the first is the default sender) and agents. An account belongs to at most one queue.
// The queues/assignment issue extends this with hours, auto-assignment, signature and auto-reply.
import { z } from 'zod';
import { CommitConflictError, type Clock, type Store, type WriteOp } from '../core/ports.js';
import { AppError, conflict, notFound, validationError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { decodeCursor, pageFromEntries, type Page } from '../core/paging.js';
import { parseOrThrow } from '../config/validation.js';
import { validateHours, type Hours } from '../core/hours/hours.js';
import { AUTO_REPLY_TAGS, SIGNATURE_TAGS, scanTags } from '../core/templates/tags.js';
import type { FieldError } from '../core/errors.js';

export const queueKey = (id: string): string => `queue:${id}`;
export const accountQueueKey = (accountId: string): string => `account-queue:${accountId}`;
export const IDX_QUEUES = 'queues:created';

const idList = z.array(z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id')).max(200);

/** Hours of operation (SPEC §11b); checked in depth by validateHours (zone, ranges, overlaps, holidays). */
const HoursSchema = z
  .object({
    timeZone: z.string().min(1).max(64),
    weekly: z.record(z.string(), z.array(z.tuple([z.string(), z.string()])).max(10)),
    holidays: z.array(z.string()).max(366).default([]),
  })
  .strict()
  .meta({ id: 'Hours', description: 'IANA time zone, weekly ranges in local time ("09:00"–"17:00", end may be "24:00"), holidays as YYYY-MM-DD' });

const DEFAULT_HOURS = { timeZone: 'UTC', weekly: { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] }, holidays: [] };

const AutoAssignSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Assignments per agent per day (the day in the queue's time zone); null = no limit. */
    dailyLimit: z.number().int().min(0).max(100_000).nullable().default(null),
    businessHoursOnly: z.boolean().default(false),
    loggedInOnly: z.boolean().default(false),
  })
  .strict();

/** Rich HTML with its images embedded as data: URIs: a signature's images total at most 2 MB (≈ 2.7 MB of base64). */
const SIGNATURE_HTML_MAX = 3_000_000;
/** An auto-reply's HTML with embedded images (larger files travel as `attachments`). */
const AUTO_REPLY_HTML_MAX = 8_000_000;
const SignatureSchema = z.object({ enabled: z.boolean().default(false), html: z.string().max(SIGNATURE_HTML_MAX).default('') }).strict();

const AutoReplySchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Sender account; null = the queue's default address. May be an outbound-only account (R-ACC-3). */
    senderAccountId: z.string().min(1).max(64).nullable().default(null),
    html: z.string().max(AUTO_REPLY_HTML_MAX).default(''),
    /** Upload ids (POST /api/uploads). */
    attachments: idList.default([]),
  })
  .strict();

export const QueueInputSchema = z
  .object({
    name: z.string().trim().min(1).max(200).regex(/^[^\r\n\0]*$/, 'must not contain line breaks'),
    language: z.string().trim().min(2).max(35).regex(/^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/, 'must be a language tag such as "fr" or "en-GB"'),
    email: z
      .object({
        enabled: z.boolean().default(false),
        addresses: idList.default([]),
        agents: idList.default([]),
      })
      .strict()
      .default({ enabled: false, addresses: [], agents: [] }),
    hours: HoursSchema.nullable().default(null),
    autoAssign: AutoAssignSchema.default({ enabled: false, dailyLimit: null, businessHoursOnly: false, loggedInOnly: false }),
    signature: SignatureSchema.default({ enabled: false, html: '' }),
    autoReply: AutoReplySchema.default({ enabled: false, senderAccountId: null, html: '', attachments: [] }),
  })
  .strict();
export const QueuePatchSchema = z
  .object({
    name: QueueInputSchema.shape.name,
    language: QueueInputSchema.shape.language,
    email: z.object({ enabled: z.boolean(), addresses: idList, agents: idList }).partial().strict(),
    hours: HoursSchema.nullable(),
    autoAssign: z.object({ enabled: z.boolean(), dailyLimit: z.number().int().min(0).max(100_000).nullable(), businessHoursOnly: z.boolean(), loggedInOnly: z.boolean() }).partial().strict(),
    signature: z.object({ enabled: z.boolean(), html: z.string().max(SIGNATURE_HTML_MAX) }).partial().strict(),
    autoReply: z.object({ enabled: z.boolean(), senderAccountId: z.string().min(1).max(64).nullable(), html: z.string().max(AUTO_REPLY_HTML_MAX), attachments: idList }).partial().strict(),
  })
  .partial()
  .strict();

export interface Queue {
  id: string;
  name: string;
  language: string;
  /** `agents` holds agent ids and team ids (teams expand to their members). */
  email: { enabled: boolean; addresses: string[]; agents: string[] };
  /** Hours of operation; null = always open. */
  hours: Hours | null;
  autoAssign: { enabled: boolean; dailyLimit: number | null; businessHoursOnly: boolean; loggedInOnly: boolean };
  signature: { enabled: boolean; html: string };
  autoReply: { enabled: boolean; senderAccountId: string | null; html: string; attachments: string[] };
  createdAt: string;
  updatedAt: string;
  rev: number;
}

export interface QueueDeps {
  store: Store;
  clock: Clock;
  /** Whether the global email channel is on (R-GLB-1): a queue's email switch cannot be turned on while it is off. */
  channelEnabled(): Promise<boolean>;
  /** Account lookup (outbound-only accounts cannot be a queue's default address, R-ACC-3). */
  account(id: string): Promise<{ outboundOnly: boolean } | undefined>;
  /**
   * Checks auto-reply files (upload ids) against R-ARP-2 and keeps them (uploads otherwise expire): the refusals,
   * each naming the file (index) and the rule; [] when all are fine.
   */
  checkFiles?(uploadIds: string[]): Promise<{ index: number; message: string }[]>;
  /** Checks rich HTML (signature, auto-reply): embedded images within their limits (R-SIG-4, R-ARP-2); the refusal or null. */
  checkRichHtml?(html: string, use: 'signature' | 'autoReply'): string | null;
  onChange?: () => void;
}

export class QueuesService {
  constructor(private readonly deps: QueueDeps) {}

  async list(limit: number, cursor?: string): Promise<Page<Queue>> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    if (cursor !== undefined && !after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    const entries = await this.deps.store.indexRange(IDX_QUEUES, { reverse: true, limit: limit + 1, ...(after ? { after } : {}) });
    const docs = await this.deps.store.getMany<Queue>(entries.slice(0, limit).map((e) => queueKey(e.member)));
    const byId = new Map(docs.filter((d): d is Queue => !!d).map((d) => [d.id, d]));
    return pageFromEntries(entries, limit, (e) => byId.get(e.member));
  }

  async get(id: string): Promise<Queue> {
    const q = await this.deps.store.get<Queue>(queueKey(id));
    if (!q) throw notFound('queue', id);
    return q;
  }

  /** queueId owning each account id (for routing). */
  async queueOfAccounts(accountIds: string[]): Promise<Map<string, string>> {
    const owners = await this.deps.store.getMany<{ queueId: string }>(accountIds.map(accountQueueKey));
    const out = new Map<string, string>();
    accountIds.forEach((id, i) => {
      const o = owners[i];
      if (o) out.set(id, o.queueId);
    });
    return out;
  }

  async create(input: unknown): Promise<Queue> {
    const data = parseOrThrow(QueueInputSchema, input);
    const now = new Date(this.deps.clock.now()).toISOString();
    const queue: Queue = { id: newId('que'), ...data, hours: data.hours ? this.hours(data.hours) : null, createdAt: now, updatedAt: now, rev: 1 };
    await this.validate(queue, null);
    await this.save(null, queue);
    return queue;
  }

  async update(id: string, patch: unknown): Promise<Queue> {
    const data = parseOrThrow(QueuePatchSchema, patch);
    for (let attempt = 0; attempt < 5; attempt++) {
      const prev = await this.get(id);
      const next: Queue = {
        ...prev,
        ...(data.name !== undefined ? { name: data.name } : {}),
        ...(data.language !== undefined ? { language: data.language } : {}),
        email: { ...prev.email, ...data.email },
        hours: data.hours === undefined ? (prev.hours ?? null) : data.hours === null ? null : this.hours(data.hours),
        autoAssign: { ...(prev.autoAssign ?? AutoAssignSchema.parse({})), ...data.autoAssign },
        signature: { ...(prev.signature ?? SignatureSchema.parse({})), ...data.signature },
        autoReply: { ...(prev.autoReply ?? AutoReplySchema.parse({})), ...data.autoReply },
        updatedAt: new Date(this.deps.clock.now()).toISOString(),
        rev: prev.rev + 1,
      };
      await this.validate(next, prev);
      try {
        await this.save(prev, next);
        return next;
      } catch (err) {
        if (!(err instanceof CommitConflictError) || err.key !== queueKey(id)) throw err;
      }
    }
    throw conflict(`queue ${id} changed concurrently; try again`);
  }

  async delete(id: string): Promise<void> {
    const prev = await this.get(id);
    const ops: WriteOp[] = [
      { op: 'check', key: queueKey(id), rev: prev.rev },
      { op: 'del', key: queueKey(id) },
      { op: 'unindex', index: IDX_QUEUES, member: id },
      ...prev.email.addresses.map((a): WriteOp => ({ op: 'del', key: accountQueueKey(a) })),
    ];
    await this.deps.store.commit(ops);
    this.deps.onChange?.();
  }

  /** Deep check of hours of operation (time zone, ranges, overlaps, holidays), normalized. */
  private hours(input: unknown): Hours {
    const result = validateHours(input, 'hours');
    if (!result.ok) throw validationError(result.errors);
    return result.hours;
  }

  private async validate(next: Queue, prev: Queue | null): Promise<void> {
    // R-ARP-5 / R-SIG-2: an unknown tag is refused at save time, never sent as a raw `@{...}`.
    const tagErrors: FieldError[] = [];
    for (const [path, html, allowed] of [
      ['signature.html', next.signature.html, SIGNATURE_TAGS],
      ['autoReply.html', next.autoReply.html, AUTO_REPLY_TAGS],
    ] as const) {
      const { unknown } = scanTags(html, allowed);
      if (unknown.length > 0) {
        tagErrors.push({ path, message: `unknown tag${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `@{${u.tag}}`).join(', ')}; allowed: ${allowed.map((t) => `@{${t}}`).join(' ')}` });
      }
    }
    if (this.deps.checkRichHtml) {
      const sig = this.deps.checkRichHtml(next.signature.html, 'signature');
      if (sig) tagErrors.push({ path: 'signature.html', message: sig });
      const auto = this.deps.checkRichHtml(next.autoReply.html, 'autoReply');
      if (auto) tagErrors.push({ path: 'autoReply.html', message: auto });
    }
    if (tagErrors.length > 0) throw validationError(tagErrors);
    if (next.autoReply.enabled && next.autoReply.html.trim() === '') throw validationError([{ path: 'autoReply.html', message: 'an auto-reply that is on needs a message' }]);
    // Auto-reply files: known uploads, allowed types and sizes (R-ARP-2); kept for as long as the queue uses them.
    if (this.deps.checkFiles && next.autoReply.attachments.join() !== (prev?.autoReply.attachments ?? []).join()) {
      const refusals = await this.deps.checkFiles(next.autoReply.attachments);
      if (refusals.length > 0) throw validationError(refusals.map((r) => ({ path: r.index < 0 ? 'autoReply.attachments' : `autoReply.attachments.${r.index}`, message: r.message })));
    }
    if (next.autoReply.senderAccountId && !(await this.deps.account(next.autoReply.senderAccountId))) {
      throw validationError([{ path: 'autoReply.senderAccountId', message: `unknown account ${next.autoReply.senderAccountId}` }]);
    }
    if (next.email.enabled && !(prev?.email.enabled ?? false) && !(await this.deps.channelEnabled())) {
      throw validationError([{ path: 'email.enabled', message: 'the email channel is off in Settings › Email; turn it on first' }]);
    }
    if (new Set(next.email.addresses).size !== next.email.addresses.length) {
      throw validationError([{ path: 'email.addresses', message: 'lists an account twice' }]);
    }
    for (const [i, accountId] of next.email.addresses.entries()) {
      const account = await this.deps.account(accountId);
      if (!account) throw validationError([{ path: `email.addresses.${i}`, message: `unknown account ${accountId}` }]);
      if (i === 0 && account.outboundOnly) {
        throw validationError([{ path: 'email.addresses.0', message: 'an outbound-only account cannot be the queue’s default address (it is never read)' }]);
      }
    }
  }

  private async save(prev: Queue | null, next: Queue): Promise<void> {
    const added = next.email.addresses.filter((a) => !prev?.email.addresses.includes(a));
    const removed = (prev?.email.addresses ?? []).filter((a) => !next.email.addresses.includes(a));
    const ops: WriteOp[] = [
      { op: 'check', key: queueKey(next.id), rev: prev ? prev.rev : null },
      { op: 'put', key: queueKey(next.id), value: next },
      ...(prev ? [] : [{ op: 'index', index: IDX_QUEUES, member: next.id, score: Date.parse(next.createdAt) } as WriteOp]),
      // An account belongs to at most one queue: claiming its key fails if another queue holds it.
      ...added.flatMap((a): WriteOp[] => [
        { op: 'check', key: accountQueueKey(a), rev: null },
        { op: 'put', key: accountQueueKey(a), value: { queueId: next.id } },
      ]),
      ...removed.map((a): WriteOp => ({ op: 'del', key: accountQueueKey(a) })),
    ];
    try {
      await this.deps.store.commit(ops);
    } catch (err) {
      if (err instanceof CommitConflictError && err.key.startsWith('account-queue:')) {
        const accountId = err.key.slice('account-queue:'.length);
        const owner = await this.deps.store.get<{ queueId: string }>(err.key);
        throw new AppError('conflict', `account ${accountId} already belongs to queue ${owner?.queueId ?? '(another)'}; an account belongs to at most one queue`, [
          { path: `email.addresses.${next.email.addresses.indexOf(accountId)}`, message: 'already assigned to another queue' },
        ]);
      }
      throw err;
    }
    this.deps.onChange?.();
  }
}

// Email accounts (R-ACC-1..4): CRUD with unique addresses, sealed passwords, IMAP/SMTP checks recorded as status.
import { z } from 'zod';
import type { Account, AccountState, AccountStatus, MailboxBaseline, MailProbe, ProbeResult, ServerEndpoint } from '../core/account.js';
import { AppError, conflict, notFound, validationError, type FieldError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { accountAddressKey, accountKey, ACCOUNTS_BY_CREATED_INDEX, mailboxCheckpointKey, type MailboxCheckpoint } from '../core/keys.js';
import { decodeCursor, pageFromEntries, type Page } from '../core/paging.js';
import { CommitConflictError, systemClock, type Clock, type IndexEntry, type Logger, type SecretBox, type Store, type WriteOp } from '../core/ports.js';
import { parseOrThrow } from '../config/validation.js';
import { openSecret, redactSecrets } from './secret-fields.js';

// ---------------------------------------------------------------------------------------------------
// Ports this use case needs (implemented in src/adapters/mail/probe.ts and src/adapters/net/host-guard.ts)

export type { MailboxBaseline, MailProbe, ProbeResult } from '../core/account.js';

/** The outbound host guard (R-REL-4): throws a 400 AppError naming `field` for a host that may not be used. */
export interface HostChecker {
  check(host: string, field: string): Promise<unknown>;
}

export interface AccountChange {
  type: 'created' | 'updated' | 'deleted';
  accountId: string;
  /** The account after the change; null once deleted. */
  account: Account | null;
}

export interface AccountsServiceDeps {
  store: Store;
  secrets: SecretBox;
  hostGuard: HostChecker;
  probe: MailProbe;
  clock?: Clock;
  logger?: Logger;
  /** Called after every create, update and delete (the mailbox supervisor reconciles). Errors are logged, never thrown. */
  onChange?: (change: AccountChange) => void | Promise<void>;
  /** Safety net around each probe call, above the probe's own 15 s timeout. */
  probeDeadlineMs?: number;
}

// ---------------------------------------------------------------------------------------------------
// Input schemas (validated at the edge by the route, and again here after a PATCH is merged). `.meta({ id })`
// names them as OpenAPI components (built with plain zod: src/app does not import @hono/zod-openapi).

const NO_CONTROL = /^[^\r\n\0]*$/;
const NO_CONTROL_MESSAGE = 'must not contain CR, LF or NUL';
const text = (max: number) => z.string().max(max).regex(NO_CONTROL, NO_CONTROL_MESSAGE);
// zod's email pattern admits no whitespace or control character (CR/LF/NUL included).
const emailAddress = z.email('must be an email address').max(254);

export const TLS_MODES = ['auto', 'required', 'off'] as const;

const endpointShape = {
  host: z
    .string()
    .min(1)
    .max(253)
    .regex(/^(?:[A-Za-z0-9_.-]+|\[?[0-9A-Fa-f:.]+\]?)$/, 'must be a host name or an IP address'),
  port: z.number().int('must be a whole number').min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535'),
  secure: z.boolean().describe('TLS from the first byte; default true on ports 993 and 465, else false'),
  starttls: z.enum(TLS_MODES).describe('Without `secure`: `auto` upgrades when offered (default), `required` fails without STARTTLS, `off` never upgrades'),
};

export const EndpointInputSchema = z
  .object({ ...endpointShape, secure: endpointShape.secure.optional(), starttls: endpointShape.starttls.optional() })
  .strict();

const EndpointPatchSchema = z.object(endpointShape).partial().strict();

export const MarkAsSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('seen') }).strict(),
  z
    .object({
      type: z.literal('keyword'),
      keyword: z.string().regex(/^[A-Za-z0-9_$.-]{1,64}$/, 'must be an IMAP keyword: 1–64 of A–Z a–z 0–9 _ $ . -'),
    })
    .strict(),
  z.object({ type: z.literal('none') }).strict(),
]);

export const AuthInputSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('password') }).strict()]);

const importSince = z.union([z.iso.date(), z.iso.datetime({ offset: true })], { error: 'must be an ISO date (2025-01-31) or date-time' });

const password = text(1024).min(1, 'must not be empty');

const commonShape = {
  service: z.literal('generic_imap').optional(),
  username: text(320).min(1).optional().describe('Login for IMAP and SMTP; defaults to the address'),
  address: emailAddress,
  aliases: z.array(emailAddress).max(100).optional(),
  smtp: EndpointInputSchema,
  auth: AuthInputSchema.optional(),
  outboundOnly: z.boolean().optional(),
  markAs: MarkAsSchema.optional(),
  importSince: importSince.nullable().optional(),
};

/** POST /api/accounts. `imap` is required unless `outboundOnly`, and must be null or absent when it is. */
export const AccountCreateSchema = z
  .object({
    ...commonShape,
    imap: EndpointInputSchema.nullable().optional().describe('Required unless `outboundOnly`; must be null or absent when it is'),
    password: password.describe('Write-only: sealed at rest, never returned (`passwordSet`)'),
  })
  .strict()
  .meta({ id: 'AccountCreate' });
export type AccountCreateInput = z.infer<typeof AccountCreateSchema>;

/** PATCH /api/accounts/:id: any subset; objects merge (e.g. `{ "imap": { "port": 143 } }`), arrays replace. */
export const AccountPatchSchema = z
  .object({
    service: commonShape.service,
    username: text(320).min(1),
    address: emailAddress,
    aliases: commonShape.aliases.unwrap(),
    imap: EndpointPatchSchema.nullable(),
    smtp: EndpointPatchSchema,
    password,
    auth: AuthInputSchema,
    outboundOnly: z.boolean(),
    markAs: MarkAsSchema,
    importSince: importSince.nullable(),
  })
  .partial()
  .strict()
  .meta({ id: 'AccountPatch' });
export type AccountPatchInput = z.infer<typeof AccountPatchSchema>;

/** The editable fields after a PATCH is merged onto the stored account (password aside). */
const MergedSchema = z.object({ ...commonShape, imap: EndpointInputSchema.nullable().optional() }).strict();

// ---------------------------------------------------------------------------------------------------
// The public view: never the password, `passwordSet` instead (SPEC §11b)

export interface AccountView {
  id: string;
  service: 'generic_imap';
  username: string;
  address: string;
  aliases: string[];
  imap: ServerEndpoint | null;
  smtp: ServerEndpoint;
  auth: { type: 'password' };
  passwordSet: boolean;
  outboundOnly: boolean;
  markAs: Account['markAs'];
  importSince: string | null;
  status: AccountStatus;
  createdAt: string;
  updatedAt: string;
}

export function toAccountView(account: Account): AccountView {
  const { auth, rev: _rev, ...rest } = account;
  const redacted = redactSecrets({ ...rest, auth: { type: auth.type }, password: auth.password ?? undefined }, ['password']);
  return redacted as unknown as AccountView;
}

/** What a mailbox worker or a sender needs: the account and its password in clear (never sent over HTTP). */
export interface AccountForUse {
  account: Account;
  password: string | null;
}

// ---------------------------------------------------------------------------------------------------

const MAX_COMMIT_ATTEMPTS = 3;

type Draft = Omit<Account, 'id' | 'status' | 'createdAt' | 'updatedAt' | 'rev' | 'auth'>;

function normalizeEndpoint(e: z.infer<typeof EndpointInputSchema>): ServerEndpoint {
  const host = e.host.trim().toLowerCase();
  return {
    host,
    port: e.port,
    secure: e.secure ?? (e.port === 993 || e.port === 465),
    starttls: e.starttls ?? 'auto',
  };
}

/** Validated, normalized editable fields; throws a 400 naming each field at fault. */
function toDraft(input: z.infer<typeof MergedSchema>): Draft {
  const outboundOnly = input.outboundOnly ?? false;
  const address = input.address.toLowerCase();
  const fields: FieldError[] = [];
  const aliases: string[] = [];
  (input.aliases ?? []).forEach((raw, i) => {
    const alias = raw.toLowerCase();
    if (alias === address) fields.push({ path: `aliases.${i}`, message: 'is the account address itself' });
    else if (aliases.includes(alias)) fields.push({ path: `aliases.${i}`, message: 'listed twice' });
    else aliases.push(alias);
  });
  // R-ACC-3: an outbound-only account is never read, so it has no IMAP server.
  if (outboundOnly && input.imap) fields.push({ path: 'imap', message: 'must be null or absent for an outbound-only account' });
  if (!outboundOnly && !input.imap) fields.push({ path: 'imap', message: 'required unless outboundOnly is true' });
  if (fields.length > 0) throw validationError(fields);
  return {
    service: 'generic_imap',
    username: input.username ?? address,
    address,
    aliases,
    imap: input.imap ? normalizeEndpoint(input.imap) : null,
    smtp: normalizeEndpoint(input.smtp),
    outboundOnly,
    markAs: input.markAs ?? { type: 'seen' },
    importSince: input.importSince ?? null,
  };
}

/** Every address delivered to the account, with the field that holds it (for 409 messages). */
function addressesOf(a: Pick<Account, 'address' | 'aliases'>): { address: string; field: string }[] {
  return [{ address: a.address, field: 'address' }, ...a.aliases.map((address, i) => ({ address, field: `aliases.${i}` }))];
}

/** The part of an account a server check depends on: when it changes, the servers are checked again. */
function probeFingerprint(a: Pick<Account, 'username' | 'imap' | 'smtp' | 'outboundOnly' | 'auth'>): string {
  return JSON.stringify([a.username, a.imap, a.smtp, a.outboundOnly, a.auth.password?.sealed ?? null]);
}

function statusFrom(imap: ProbeResult | null, smtp: ProbeResult, checkedAt: string, previous?: AccountStatus): AccountStatus {
  const status: AccountStatus = {
    valid: smtp.state === 'connected' && (imap === null || imap.state === 'connected'),
    imap: imap ? { state: imap.state, error: imap.error, checkedAt } : null,
    smtp: { state: smtp.state, error: smtp.error, checkedAt },
  };
  if (previous?.import !== undefined) status.import = previous.import;
  return status;
}

function editableView(a: Account): Record<string, unknown> {
  return {
    service: a.service,
    username: a.username,
    address: a.address,
    aliases: a.aliases,
    imap: a.imap,
    smtp: a.smtp,
    auth: { type: a.auth.type },
    outboundOnly: a.outboundOnly,
    markAs: a.markAs,
    importSince: a.importSince,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; arrays, scalars and null replace. */
function mergePatch(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? mergePatch(out[key] as Record<string, unknown>, value) : value;
  }
  return out;
}

export class AccountsService {
  private readonly store: Store;
  private readonly secrets: SecretBox;
  private readonly hostGuard: HostChecker;
  private readonly probe: MailProbe;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly onChange: AccountsServiceDeps['onChange'];
  private readonly probeDeadlineMs: number;

  constructor(deps: AccountsServiceDeps) {
    this.store = deps.store;
    this.secrets = deps.secrets;
    this.hostGuard = deps.hostGuard;
    this.probe = deps.probe;
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger;
    this.onChange = deps.onChange;
    this.probeDeadlineMs = deps.probeDeadlineMs ?? 20_000;
  }

  /** Newest first, `{ items, nextCursor }`. */
  async list(opts: { limit: number; cursor?: string | undefined }): Promise<Page<AccountView>> {
    let after: IndexEntry | undefined;
    if (opts.cursor !== undefined) {
      after = decodeCursor(opts.cursor);
      if (!after) throw validationError([{ path: 'query.cursor', message: 'not a cursor of this list' }]);
    }
    const entries = await this.store.indexRange(ACCOUNTS_BY_CREATED_INDEX, { reverse: true, limit: opts.limit + 1, ...(after ? { after } : {}) });
    const docs = await this.store.getMany<Account>(entries.slice(0, opts.limit).map((e) => accountKey(e.member)));
    const byId = new Map(docs.filter((d): d is Account => d !== undefined).map((d) => [d.id, d]));
    return pageFromEntries(entries, opts.limit, (e) => {
      const doc = byId.get(e.member);
      return doc ? toAccountView(doc) : undefined;
    });
  }

  async get(id: string): Promise<AccountView> {
    const account = await this.load(id);
    // Import progress lives in the mailbox checkpoint the worker keeps (on whichever instance reads it).
    const checkpoint = await this.store.get<MailboxCheckpoint>(mailboxCheckpointKey(id));
    const progress = checkpoint?.import;
    const view = toAccountView(account);
    if (progress) view.status = { ...view.status, import: { done: progress.done, total: progress.total ?? 0, finished: progress.finished } };
    return view;
  }

  /** Creates the account after checking its servers; a failed check is recorded in `status`, never refused (R-ACC-4). */
  async create(input: unknown): Promise<AccountView> {
    const parsed = parseOrThrow(AccountCreateSchema, input);
    const { password: plain, ...fields } = parsed;
    const draft = toDraft(fields);
    await this.checkHosts(draft);
    await this.assertAddressesFree(draft, undefined);

    const id = newId('acc');
    const now = this.clock.now();
    const at = new Date(now).toISOString();
    const sealed = { sealed: await this.secrets.seal(plain) };
    const { status, baseline } = await this.runChecks(draft, draft.username, plain, true);
    const account: Account = {
      id,
      ...draft,
      auth: { type: 'password', password: sealed },
      status: statusFrom(status.imap, status.smtp, at),
      createdAt: at,
      updatedAt: at,
      rev: 1,
    };
    const ops: WriteOp[] = [{ op: 'check', key: accountKey(id), rev: null }];
    for (const { address } of addressesOf(account)) {
      ops.push({ op: 'check', key: accountAddressKey(address), rev: null }, { op: 'put', key: accountAddressKey(address), value: id });
    }
    ops.push({ op: 'put', key: accountKey(id), value: account }, { op: 'index', index: ACCOUNTS_BY_CREATED_INDEX, member: id, score: now });
    if (baseline) {
      // Only mail arriving after the account was added is ingested (the IMAP worker reads this checkpoint).
      const checkpoint: MailboxCheckpoint = { uidValidity: baseline.uidValidity, lastUid: Math.max(0, baseline.uidNext - 1) };
      ops.push({ op: 'check', key: mailboxCheckpointKey(id), rev: null }, { op: 'put', key: mailboxCheckpointKey(id), value: checkpoint });
    }
    await this.commitOrConflict(ops, account);
    await this.notify({ type: 'created', accountId: id, account });
    return toAccountView(account);
  }

  /** Partial update; the servers are checked again when servers, user name or password change. */
  async update(id: string, patchInput: unknown): Promise<AccountView> {
    const patch = parseOrThrow(AccountPatchSchema, patchInput);
    const current = await this.load(id);
    const { password: plain, ...fieldPatch } = patch;
    let merged = mergePatch(editableView(current), fieldPatch as Record<string, unknown>);
    // Switching to outbound-only clears the IMAP server unless the same call says otherwise.
    if (fieldPatch.outboundOnly === true && fieldPatch.imap === undefined) merged = { ...merged, imap: null };
    const draft = toDraft(parseOrThrow(MergedSchema, merged));

    const sealed = plain !== undefined ? { sealed: await this.secrets.seal(plain) } : current.auth.password;
    const next: Account = {
      ...current,
      ...draft,
      auth: { type: 'password', password: sealed },
      updatedAt: new Date(this.clock.now()).toISOString(),
      rev: current.rev + 1,
    };
    const serversChanged = plain !== undefined || probeFingerprint(next) !== probeFingerprint(current);
    if (serversChanged) await this.checkHosts(next);
    await this.assertAddressesFree(next, id);
    let baseline: MailboxBaseline | null = null;
    if (serversChanged) {
      const password = plain ?? (await this.passwordOf(current));
      const checked = await this.runChecks(next, next.username, password, await this.needsBaseline(next));
      next.status = statusFrom(checked.status.imap, checked.status.smtp, next.updatedAt, current.status);
      baseline = checked.baseline;
    }
    const before = new Set(addressesOf(current).map((a) => a.address));
    const after = new Set(addressesOf(next).map((a) => a.address));
    const ops: WriteOp[] = [{ op: 'check', key: accountKey(id), rev: current.rev }];
    for (const address of after) {
      if (!before.has(address)) ops.push({ op: 'check', key: accountAddressKey(address), rev: null }, { op: 'put', key: accountAddressKey(address), value: id });
    }
    for (const address of before) if (!after.has(address)) ops.push({ op: 'del', key: accountAddressKey(address) });
    ops.push({ op: 'put', key: accountKey(id), value: next });
    await this.commitOrConflict(ops, next);
    if (baseline) await this.saveBaseline(id, baseline);
    await this.notify({ type: 'updated', accountId: id, account: next });
    return toAccountView(next);
  }

  async remove(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.load(id);
      const ops: WriteOp[] = [
        { op: 'check', key: accountKey(id), rev: current.rev },
        { op: 'del', key: accountKey(id) },
        ...addressesOf(current).map(({ address }): WriteOp => ({ op: 'del', key: accountAddressKey(address) })),
        { op: 'unindex', index: ACCOUNTS_BY_CREATED_INDEX, member: id },
        { op: 'del', key: mailboxCheckpointKey(id) },
      ];
      try {
        await this.store.commit(ops);
        break;
      } catch (err) {
        if (!(err instanceof CommitConflictError) || attempt >= MAX_COMMIT_ATTEMPTS) throw this.mapConflict(err, current);
      }
    }
    await this.notify({ type: 'deleted', accountId: id, account: null });
  }

  /** `POST /api/accounts/:id/test`: checks the servers again and records the fresh status. */
  async test(id: string): Promise<AccountView> {
    const current = await this.load(id);
    await this.checkHosts(current);
    const password = await this.passwordOf(current);
    const checked = await this.runChecks(current, current.username, password, await this.needsBaseline(current));
    const checkedAt = new Date(this.clock.now()).toISOString();
    const fingerprint = probeFingerprint(current);
    let saved: Account | undefined;
    let doc = current;
    for (let attempt = 1; attempt <= MAX_COMMIT_ATTEMPTS; attempt++) {
      // Someone changed the servers meanwhile: their save checked them; this result is stale.
      if (probeFingerprint(doc) !== fingerprint) return toAccountView(doc);
      const next: Account = { ...doc, status: statusFrom(checked.status.imap, checked.status.smtp, checkedAt, doc.status), rev: doc.rev + 1 };
      try {
        await this.store.commit([
          { op: 'check', key: accountKey(id), rev: doc.rev },
          { op: 'put', key: accountKey(id), value: next },
        ]);
        saved = next;
        break;
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        doc = await this.load(id);
      }
    }
    if (!saved) throw conflict(`account ${id} is being changed concurrently; try again`);
    if (checked.baseline) await this.saveBaseline(id, checked.baseline);
    await this.notify({ type: 'updated', accountId: id, account: saved });
    return toAccountView(saved);
  }

  /** Every account (bounded: 100 pages of 500), oldest first. */
  async listAll(): Promise<Account[]> {
    const out: Account[] = [];
    let after: IndexEntry | undefined;
    for (let page = 0; page < 100; page++) {
      const entries = await this.store.indexRange(ACCOUNTS_BY_CREATED_INDEX, { limit: 500, ...(after ? { after } : {}) });
      const docs = await this.store.getMany<Account>(entries.map((e) => accountKey(e.member)));
      for (const doc of docs) if (doc) out.push(doc);
      if (entries.length < 500) break;
      after = entries[entries.length - 1];
    }
    return out;
  }

  /** Accounts a mailbox worker reads: every account that is not outbound-only. */
  async listInbound(): Promise<Account[]> {
    return (await this.listAll()).filter((a) => !a.outboundOnly && a.imap);
  }

  /** The stored account and its password in clear, for workers and senders only (never exposed by HTTP). */
  async getForUse(id: string): Promise<AccountForUse> {
    const account = await this.load(id);
    return { account, password: (await openSecret(account.auth as unknown as Record<string, unknown>, 'password', this.secrets)) ?? null };
  }

  /** The raw stored account, or undefined. */
  async find(id: string): Promise<Account | undefined> {
    return this.store.get<Account>(accountKey(id));
  }

  // -------------------------------------------------------------------------------------------------

  private async load(id: string): Promise<Account> {
    const doc = await this.store.get<Account>(accountKey(id));
    if (!doc) throw notFound('account', id);
    return doc;
  }

  private async passwordOf(account: Account): Promise<string> {
    return (await openSecret(account.auth as unknown as Record<string, unknown>, 'password', this.secrets)) ?? '';
  }

  /** Every server host goes through the host guard; all refusals are reported together. */
  private async checkHosts(draft: Pick<Account, 'imap' | 'smtp' | 'outboundOnly'>): Promise<void> {
    const checks: [string, string][] = [];
    if (draft.imap && !draft.outboundOnly) checks.push([draft.imap.host, 'imap.host']);
    checks.push([draft.smtp.host, 'smtp.host']);
    const results = await Promise.allSettled(checks.map(([host, field]) => this.hostGuard.check(host, field)));
    const fields: FieldError[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      const err: unknown = r.reason;
      if (err instanceof AppError && err.fields) fields.push(...err.fields);
      else throw err;
    }
    if (fields.length > 0) throw validationError(fields, 'Host refused');
  }

  /** Fails with 409 naming the field when an address or alias already belongs to another account. */
  private async assertAddressesFree(draft: Pick<Account, 'address' | 'aliases'>, selfId: string | undefined): Promise<void> {
    const list = addressesOf(draft);
    const owners = await this.store.getMany<string>(list.map((a) => accountAddressKey(a.address)));
    const fields: FieldError[] = [];
    list.forEach((a, i) => {
      const owner = owners[i];
      if (owner !== undefined && owner !== selfId) fields.push({ path: a.field, message: `${a.address} is already used by account ${owner}` });
    });
    if (fields.length > 0) throw new AppError('conflict', `Address already in use: ${fields.map((f) => `${f.path} ${f.message}`).join('; ')}`, fields);
  }

  /** A failed `check`: an address claimed meanwhile (409 naming the field) or a concurrent change of the account. */
  private mapConflict(err: unknown, account: Pick<Account, 'address' | 'aliases'>): unknown {
    if (!(err instanceof CommitConflictError)) return err;
    const hit = addressesOf(account).find((a) => accountAddressKey(a.address) === err.key);
    if (hit) {
      return new AppError('conflict', `Address already in use: ${hit.field} ${hit.address} was just taken by another account`, [
        { path: hit.field, message: `${hit.address} is already used by another account` },
      ]);
    }
    return conflict('The account was changed concurrently; read it again and retry');
  }

  private async commitOrConflict(ops: WriteOp[], account: Account): Promise<void> {
    try {
      await this.store.commit(ops);
    } catch (err) {
      throw this.mapConflict(err, account);
    }
  }

  private async needsBaseline(account: Pick<Account, 'id' | 'outboundOnly' | 'imap'>): Promise<boolean> {
    if (account.outboundOnly || !account.imap || !this.probe.baseline) return false;
    return (await this.store.get(mailboxCheckpointKey(account.id))) === undefined;
  }

  private async saveBaseline(id: string, baseline: MailboxBaseline): Promise<void> {
    const checkpoint: MailboxCheckpoint = { uidValidity: baseline.uidValidity, lastUid: Math.max(0, baseline.uidNext - 1) };
    try {
      await this.store.putIfAbsent(mailboxCheckpointKey(id), checkpoint);
    } catch (err) {
      this.logger?.warn({ accountId: id, err: (err as Error).message }, 'could not record the mailbox baseline');
    }
  }

  /**
   * Checks IMAP (unless outbound-only: never read, R-ACC-3) and SMTP in parallel, then the INBOX baseline
   * when asked and IMAP logged in. Never throws: every failure becomes a state (R-ACC-4).
   */
  private async runChecks(
    draft: Pick<Account, 'imap' | 'smtp' | 'outboundOnly'>,
    username: string,
    password: string,
    wantBaseline: boolean,
  ): Promise<{ status: { imap: ProbeResult | null; smtp: ProbeResult }; baseline: MailboxBaseline | null }> {
    const imapEndpoint = draft.outboundOnly ? null : draft.imap;
    const [imap, smtp] = await Promise.all([
      imapEndpoint ? this.guarded(() => this.probe.checkImap(imapEndpoint, username, password)) : Promise.resolve(null),
      this.guarded(() => this.probe.checkSmtp(draft.smtp, username, password)),
    ]);
    let baseline: MailboxBaseline | null = null;
    const probeBaseline = this.probe.baseline?.bind(this.probe);
    if (wantBaseline && imapEndpoint && imap?.state === 'connected' && probeBaseline) {
      baseline = await this.withDeadline(() => probeBaseline(imapEndpoint, username, password)).catch((err: unknown) => {
        this.logger?.warn({ err: (err as Error).message }, 'could not read the INBOX baseline');
        return null;
      });
      if (baseline && (!/^\d+$/.test(baseline.uidValidity) || !Number.isSafeInteger(baseline.uidNext) || baseline.uidNext < 1)) baseline = null;
    }
    return { status: { imap, smtp }, baseline };
  }

  private async guarded(run: () => Promise<ProbeResult>): Promise<ProbeResult> {
    try {
      return await this.withDeadline(run);
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      return { state: /deadline/i.test(message) ? 'timeout' : 'protocol_error', error: message };
    }
  }

  private withDeadline<T>(run: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer before the ${this.probeDeadlineMs} ms deadline`)), this.probeDeadlineMs);
    });
    return Promise.race([Promise.resolve().then(run), deadline]).finally(() => clearTimeout(timer));
  }

  private async notify(change: AccountChange): Promise<void> {
    if (!this.onChange) return;
    try {
      await this.onChange(change);
    } catch (err) {
      this.logger?.error({ accountId: change.accountId, err: (err as Error).message }, 'account change listener failed');
    }
  }
}

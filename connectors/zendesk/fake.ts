// A faithful in-memory fake of the Zendesk Support API (msw handlers) for the conformance kit and our tests.
import { randomBytes } from 'node:crypto';
import { http, HttpResponse, type RequestHandler } from 'msw';
import { type CrmEvent, type IncomingRequest, type SessionStatus } from '../contract.js';
import type { ZendeskStatus } from './mapping.js';
import { AGENT_REPLY_PAYLOAD, ASSIGNEE_PAYLOAD, WEBHOOK_HEADERS, signZendeskWebhook, statusPayload } from './webhooks.js';

/** Same shape as the kit's InjectedFailure (connectors/kit/types.ts); a connector folder does not import the kit. */
export type ZendeskInjectedFailure = { status: 429; retryAfterSeconds: number } | { status: 500 | 502 | 503 } | { status: 401 } | { network: true };

export interface ZendeskFakeOptions {
  /** Account URL the handlers answer for, e.g. `https://acme.zendesk.com`. */
  url: string;
  /** The API user (an admin) and its token: `Authorization: Basic base64(email/token:apiToken)`. */
  email: string;
  apiToken: string;
  /** Signing secret of the fake's webhook (what `webhook()` signs with). */
  webhookSecret: string;
  /** Agents known after reset() (besides the API user). Default agent1@example.com, agent2@example.com. */
  agents?: string[];
  /** Groups known after reset(). Default 2001 "Support", 2002 "Billing", 2003 "Sales". */
  groups?: { id: number; name: string }[];
  /** Per-account requests per minute (X-Rate-Limit). Default 700 (Enterprise). */
  accountLimitPerMinute?: number;
  now?: () => number;
}

interface FakeUser {
  id: number;
  name: string;
  email: string;
  role: 'end-user' | 'agent' | 'admin';
  active: boolean;
  created_at: string;
}

interface FakeAttachment {
  id: number;
  file_name: string;
  content_url: string;
  content_type: string;
  size: number;
}

interface FakeComment {
  id: number;
  type: 'Comment';
  author_id: number;
  body: string;
  html_body: string;
  plain_body: string;
  public: boolean;
  attachments: FakeAttachment[];
  audit_id: number;
  via: { channel: string };
  created_at: string;
}

interface FakeAudit {
  id: number;
  ticket_id: number;
  created_at: string;
  author_id: number;
  metadata: { system: Record<string, unknown>; custom: Record<string, unknown> };
  via: { channel: string };
  events: Record<string, unknown>[];
}

interface FakeTicket {
  id: number;
  subject: string;
  status: ZendeskStatus;
  requester_id: number;
  submitter_id: number;
  assignee_id: number | null;
  group_id: number | null;
  external_id: string | null;
  tags: string[];
  custom_fields: Map<number, unknown>;
  followup_ids: number[];
  via_followup_source_id: number | null;
  created_at: string;
  updated_at: string;
  comments: FakeComment[];
  audits: FakeAudit[];
}

const STATUSES: readonly ZendeskStatus[] = ['new', 'open', 'pending', 'hold', 'solved', 'closed'];
/** Zendesk's Update Ticket limit per user and ticket. */
const PER_TICKET = { updates: 30, windowMs: 10 * 60_000 };

// -- Zendesk's documented error bodies ---------------------------------------------------------------------
const AUTH_ERROR = { error: "Couldn't authenticate you" };
const NOT_FOUND = { error: 'RecordNotFound', description: 'Not found' };
const RATE_LIMITED = { error: 'APIRateLimitExceeded', description: 'Number of allowed API requests per minute exceeded' };
const invalid = (details: Record<string, { description: string; error?: string }[]>) => ({
  error: 'RecordInvalid',
  description: 'Record validation errors',
  details,
});
const CLOSED = invalid({ status: [{ description: 'Status: closed prevents ticket update' }] });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stripHtml(html: string): string {
  return html.replace(/<br\s*\/?>/gi, '\n').replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const SESSION_TO_ZENDESK: Record<SessionStatus, ZendeskStatus> = {
  unopened: 'new',
  active: 'open',
  reopened: 'open',
  paused: 'pending',
  resolved: 'solved',
  closed: 'closed',
};

/**
 * Renders a trigger payload the way Zendesk does for a JSON webhook: `{{a.b}}` placeholders (as unformatted
 * text, JSON-escaped) and the `{% for x in list %}…{% unless forloop.last %},{% endunless %}{% endfor %}` loop
 * our agent-reply payload uses. Unknown placeholders render empty.
 */
export function renderPayload(template: string, data: Record<string, unknown>): string {
  const lookup = (path: string, scope: Record<string, unknown>): unknown =>
    path.split('.').reduce<unknown>((v, k) => (isRecord(v) ? v[k] : undefined), scope);
  const text = (v: unknown) => (v === undefined || v === null ? '' : JSON.stringify(String(v)).slice(1, -1));
  const fill = (s: string, scope: Record<string, unknown>) => s.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_m, p: string) => text(lookup(p, scope)));
  const loops = /\{%\s*for\s+(\w+)\s+in\s+([\w.]+)\s*%\}([\s\S]*?)\{%\s*endfor\s*%\}/g;
  const withLoops = template.replace(loops, (_m, name: string, listPath: string, inner: string) => {
    const list = lookup(listPath, data);
    if (!Array.isArray(list)) return '';
    return list
      .map((item: unknown, i) => {
        const last = i === list.length - 1;
        const body = inner.replace(/\{%\s*unless\s+forloop\.last\s*%\}([\s\S]*?)\{%\s*endunless\s*%\}/g, (_x, sep: string) => (last ? '' : sep));
        return fill(body, { ...data, [name]: item });
      })
      .join('');
  });
  return fill(withLoops, data);
}

export interface ZendeskFake {
  handlers: RequestHandler[];
  reset(): void;
  injectFailure(failure: ZendeskInjectedFailure, opts?: { times?: number }): void;
  countRecords(externalId: string): number;
  comments(recordId: string): { body: string; public: boolean }[];
  files(recordId: string): { filename: string; size: number }[];
  record(recordId: string):
    | { status: string; assigneeEmail: string | null; tags: string[]; queue: string | null; requesterEmail: string; customFields: Record<string, unknown> }
    | undefined;
  seedAgents(n: number): void;
  requestCount(): number;
  webhook(event: CrmEvent, opts?: { forged?: boolean; unsigned?: boolean }): IncomingRequest;
  crmChange(recordId: string, change: { status?: string; assigneeEmail?: string | null; publicReply?: string }): void;
  // -- Zendesk-specific controls ----------------------------------------------------------------------------
  /** What Zendesk's default automation does 4 days after a ticket is solved (or an admin closing it). */
  closeTicket(recordId: string): void;
  /** Update Ticket calls that reached a ticket (accepted or refused by the per-ticket limit). */
  updateCalls(recordId: string): { accepted: number; limited: number };
  /** Requests served, by method and path (e.g. `PUT /api/v2/tickets/1001.json`). */
  requests(): string[];
  /** The ticket of a follow-up (`via_followup_source_id`), if any. */
  followUpsOf(recordId: string): string[];
}

export function createZendeskFake(opts: ZendeskFakeOptions): ZendeskFake {
  const origin = new URL(opts.url).origin;
  const api = `${origin}/api/v2`;
  const now = opts.now ?? (() => Date.now());
  const iso = () => new Date(now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const expectedAuth = `Basic ${Buffer.from(`${opts.email}/token:${opts.apiToken}`).toString('base64')}`;
  const limitPerMinute = opts.accountLimitPerMinute ?? 700;

  let users = new Map<number, FakeUser>();
  let groups = new Map<number, { id: number; name: string }>();
  let tickets = new Map<number, FakeTicket>();
  let uploads = new Map<string, FakeAttachment[]>();
  let failures: { failure: ZendeskInjectedFailure; left: number }[] = [];
  let served = 0;
  let log: string[] = [];
  let minute = { start: 0, used: 0 };
  let ticketUpdates = new Map<number, number[]>();
  let updateCounts = new Map<number, { accepted: number; limited: number }>();
  let ids = { user: 1, ticket: 1000, comment: 5000, audit: 9000, attachment: 7000 };

  const apiUserId = (): number => [...users.values()].find((u) => u.email === opts.email.toLowerCase())?.id ?? 1;

  function addUser(email: string, role: FakeUser['role'], name?: string): FakeUser {
    const u: FakeUser = { id: ids.user++, name: name ?? email.split('@')[0] ?? email, email: email.toLowerCase(), role, active: true, created_at: iso() };
    users.set(u.id, u);
    return u;
  }

  function reset(): void {
    users = new Map();
    groups = new Map();
    tickets = new Map();
    uploads = new Map();
    failures = [];
    served = 0;
    log = [];
    minute = { start: 0, used: 0 };
    ticketUpdates = new Map();
    updateCounts = new Map();
    ids = { user: 1, ticket: 1000, comment: 5000, audit: 9000, attachment: 7000 };
    addUser(opts.email, 'admin', 'Email channel API');
    for (const email of opts.agents ?? ['agent1@example.com', 'agent2@example.com']) addUser(email, 'agent');
    for (const g of opts.groups ?? [
      { id: 2001, name: 'Support' },
      { id: 2002, name: 'Billing' },
      { id: 2003, name: 'Sales' },
    ])
      groups.set(g.id, g);
  }
  reset();

  const userByEmail = (email: string) => [...users.values()].find((u) => u.email === email.trim().toLowerCase());

  // -- JSON views -------------------------------------------------------------------------------------------
  const userJson = (u: FakeUser) => ({ ...u, url: `${api}/users/${u.id}.json` });
  const ticketJson = (t: FakeTicket) => ({
    id: t.id,
    url: `${api}/tickets/${t.id}.json`,
    external_id: t.external_id,
    subject: t.subject,
    raw_subject: t.subject,
    description: t.comments[0]?.plain_body ?? '',
    status: t.status,
    requester_id: t.requester_id,
    submitter_id: t.submitter_id,
    assignee_id: t.assignee_id,
    group_id: t.group_id,
    tags: [...t.tags],
    custom_fields: [...t.custom_fields].map(([id, value]) => ({ id, value })),
    followup_ids: t.status === 'closed' ? [...t.followup_ids] : [],
    is_public: t.comments.some((c) => c.public),
    via: t.via_followup_source_id !== null ? { channel: 'api', source: { rel: 'follow_up', from: { ticket_id: t.via_followup_source_id } } } : { channel: 'api', source: { rel: null, from: {}, to: {} } },
    created_at: t.created_at,
    updated_at: t.updated_at,
  });

  // -- response helpers -------------------------------------------------------------------------------------
  function rateHeaders(): Record<string, string> {
    const remaining = Math.max(0, limitPerMinute - minute.used);
    return {
      'X-Rate-Limit': String(limitPerMinute),
      'X-Rate-Limit-Remaining': String(remaining),
      'ratelimit-limit': String(limitPerMinute),
      'ratelimit-remaining': String(remaining),
      'ratelimit-reset': String(Math.max(1, Math.ceil((minute.start + 60_000 - now()) / 1000))),
    };
  }
  function json(body: unknown, status = 200, extra: Record<string, string> = {}) {
    return HttpResponse.json(body as Record<string, unknown>, { status, headers: { ...rateHeaders(), ...extra } });
  }

  /** Cursor pagination (`page[size]`, `page[after]`): `meta.has_more`, `meta.after_cursor`, `links.next`. */
  function cursorPage<T extends { id: number }>(items: T[], url: URL, key: string, view: (t: T) => unknown) {
    const size = Math.min(100, Math.max(1, Number(url.searchParams.get('page[size]') ?? 100) || 100));
    const after = url.searchParams.get('page[after]');
    const afterId = after ? Number(Buffer.from(after, 'base64url').toString('utf8')) : null;
    const start = afterId === null ? 0 : items.findIndex((i) => i.id === afterId) + 1;
    const page = items.slice(start, start + size);
    const hasMore = start + size < items.length;
    const last = page[page.length - 1];
    const first = page[0];
    const cursor = (id: number) => Buffer.from(String(id), 'utf8').toString('base64url');
    const nextUrl = new URL(url);
    if (last) nextUrl.searchParams.set('page[after]', cursor(last.id));
    nextUrl.searchParams.delete('page[before]');
    return {
      [key]: page.map(view),
      meta: { has_more: hasMore, after_cursor: last ? cursor(last.id) : null, before_cursor: first ? cursor(first.id) : null },
      links: { next: hasMore ? nextUrl.toString() : null, prev: null },
    };
  }
  /** Offset pagination (no page[size]): `next_page`, `previous_page`, `count`. */
  const offsetPage = <T>(items: T[], key: string, view: (t: T) => unknown) => ({ [key]: items.map(view), next_page: null, previous_page: null, count: items.length });

  // -- writes -----------------------------------------------------------------------------------------------
  function takeUploads(tokens: unknown): FakeAttachment[] | string {
    if (tokens === undefined) return [];
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) return 'uploads must be a list of tokens';
    const out: FakeAttachment[] = [];
    for (const token of tokens as string[]) {
      const files = uploads.get(token);
      if (!files) return `upload token ${token} is invalid`;
      uploads.delete(token); // a token is consumed by the comment it is attached to
      out.push(...files);
    }
    return out;
  }

  function addComment(t: FakeTicket, c: Record<string, unknown>, audit: FakeAudit, attachments: FakeAttachment[]): void {
    const html = typeof c.html_body === 'string' ? c.html_body : undefined;
    const body = typeof c.body === 'string' ? c.body : html !== undefined ? stripHtml(html) : '';
    const comment: FakeComment = {
      id: ids.comment++,
      type: 'Comment',
      author_id: typeof c.author_id === 'number' ? c.author_id : apiUserId(),
      body,
      html_body: html ?? `<div class="zd-comment"><p>${escapeHtml(body)}</p></div>`,
      plain_body: body,
      // The first comment's privacy persists unless set (docs: "public").
      public: typeof c.public === 'boolean' ? c.public : (t.comments[0]?.public ?? true),
      attachments,
      audit_id: audit.id,
      via: { channel: 'api' },
      created_at: iso(),
    };
    t.comments.push(comment);
    audit.events.push({ id: comment.id, type: 'Comment', author_id: comment.author_id, body: comment.body, html_body: comment.html_body, public: comment.public, attachments });
  }

  function newAudit(t: FakeTicket, metadata: unknown, authorId = apiUserId()): FakeAudit {
    return {
      id: ids.audit++,
      ticket_id: t.id,
      created_at: iso(),
      author_id: authorId,
      metadata: { system: { client: 'email-channel fake', ip_address: '127.0.0.1' }, custom: isRecord(metadata) ? { ...metadata } : {} },
      via: { channel: 'api' },
      events: [],
    };
  }

  /** Validates the writable fields shared by create and update; returns RecordInvalid details or null. */
  function validateFields(b: Record<string, unknown>): Record<string, { description: string; error?: string }[]> | null {
    const details: Record<string, { description: string; error?: string }[]> = {};
    if (b.status !== undefined && !STATUSES.includes(b.status as ZendeskStatus)) details.status = [{ description: `Status: ${String(b.status)} is not valid`, error: 'InvalidValue' }];
    if (b.assignee_id !== undefined && b.assignee_id !== null) {
      const a = typeof b.assignee_id === 'number' ? users.get(b.assignee_id) : undefined;
      if (!a || a.role === 'end-user') details.assignee_id = [{ description: 'Assignee: is not an agent', error: 'InvalidValue' }];
    }
    if (b.group_id !== undefined && b.group_id !== null && !(typeof b.group_id === 'number' && groups.has(b.group_id))) {
      details.group_id = [{ description: 'Group: is invalid', error: 'InvalidValue' }];
    }
    if (b.custom_fields !== undefined && (!Array.isArray(b.custom_fields) || b.custom_fields.some((f) => !isRecord(f) || typeof f.id !== 'number'))) {
      details.custom_fields = [{ description: 'Custom fields: must be a list of { id, value }', error: 'InvalidValue' }];
    }
    return Object.keys(details).length > 0 ? details : null;
  }

  function applyFields(t: FakeTicket, b: Record<string, unknown>, audit: FakeAudit): boolean {
    let changed = false;
    const change = (field: string, from: unknown, to: unknown) => {
      audit.events.push({ id: ids.audit++, type: 'Change', field_name: field, value: to, previous_value: from });
      changed = true;
    };
    if (b.status !== undefined && b.status !== t.status) {
      change('status', t.status, b.status);
      t.status = b.status as ZendeskStatus;
    }
    if (b.assignee_id !== undefined && b.assignee_id !== t.assignee_id) {
      change('assignee_id', t.assignee_id, b.assignee_id);
      t.assignee_id = b.assignee_id as number | null;
    }
    if (b.group_id !== undefined && b.group_id !== t.group_id) {
      change('group_id', t.group_id, b.group_id);
      t.group_id = b.group_id as number | null;
    }
    if (Array.isArray(b.custom_fields)) {
      for (const f of b.custom_fields as { id: number; value: unknown }[]) {
        if (t.custom_fields.get(f.id) !== f.value) {
          change(String(f.id), t.custom_fields.get(f.id) ?? null, f.value);
          t.custom_fields.set(f.id, f.value);
        }
      }
    }
    if (Array.isArray(b.tags)) {
      const tags = [...new Set((b.tags as unknown[]).map(String))];
      if (tags.join(' ') !== t.tags.join(' ')) {
        change('tags', t.tags.join(' '), tags.join(' '));
        t.tags = tags;
      }
    }
    return changed;
  }

  function createTicket(b: Record<string, unknown>) {
    const details = validateFields(b) ?? {};
    const comment = b.comment;
    if (!isRecord(comment) || ((typeof comment.body !== 'string' || comment.body === '') && (typeof comment.html_body !== 'string' || comment.html_body === ''))) {
      details.description = [{ description: 'Description: cannot be blank', error: 'BlankValue' }];
    }
    const requester = b.requester;
    let requesterUser: FakeUser | undefined;
    if (typeof b.requester_id === 'number') requesterUser = users.get(b.requester_id);
    else if (isRecord(requester) && typeof requester.email === 'string' && requester.email.includes('@')) {
      requesterUser = userByEmail(requester.email) ?? addUser(requester.email, 'end-user', typeof requester.name === 'string' ? requester.name : undefined);
    } else requesterUser = users.get(apiUserId());
    if (!requesterUser) details.requester = [{ description: 'Requester: is invalid', error: 'InvalidValue' }];
    const attachments = isRecord(comment) ? takeUploads(comment.uploads) : [];
    if (typeof attachments === 'string') details.uploads = [{ description: attachments, error: 'InvalidValue' }];
    if (Object.keys(details).length > 0 || !requesterUser || typeof attachments === 'string' || !isRecord(comment)) return json(invalid(details), 422);

    const source = typeof b.via_followup_source_id === 'number' ? tickets.get(b.via_followup_source_id) : undefined;
    // "The parameter only works with closed tickets. It has no effect with other tickets."
    const followUpOf = source && source.status === 'closed' ? source : undefined;
    const t: FakeTicket = {
      id: ids.ticket++,
      subject: typeof b.subject === 'string' && b.subject !== '' ? b.subject : (typeof comment.body === 'string' ? comment.body : '').slice(0, 80),
      status: 'new',
      requester_id: requesterUser.id,
      submitter_id: apiUserId(),
      assignee_id: null,
      group_id: null,
      external_id: typeof b.external_id === 'string' ? b.external_id : null,
      // "Follow-up tickets inherit the tags from the parent … If you include tags in the request, those tags will replace the parent ticket's tags."
      tags: followUpOf && !Array.isArray(b.tags) ? [...followUpOf.tags] : [],
      custom_fields: new Map(),
      followup_ids: [],
      via_followup_source_id: followUpOf ? followUpOf.id : null,
      created_at: iso(),
      updated_at: iso(),
      comments: [],
      audits: [],
    };
    const audit = newAudit(t, b.metadata);
    applyFields(t, { ...b, status: undefined }, audit);
    addComment(t, comment, audit, attachments);
    const status = typeof b.status === 'string' ? (b.status as ZendeskStatus) : t.assignee_id !== null ? 'open' : 'new';
    audit.events.push({ id: ids.audit++, type: 'Create', field_name: 'status', value: status });
    t.status = status;
    t.audits.push(audit);
    tickets.set(t.id, t);
    if (followUpOf) followUpOf.followup_ids.push(t.id);
    return json({ ticket: ticketJson(t), audit }, 201, { Location: `${api}/tickets/${t.id}.json` });
  }

  function updateTicket(t: FakeTicket, b: Record<string, unknown>) {
    const counts = updateCounts.get(t.id) ?? { accepted: 0, limited: 0 };
    updateCounts.set(t.id, counts);
    const since = now() - PER_TICKET.windowMs;
    const recent = (ticketUpdates.get(t.id) ?? []).filter((x) => x > since);
    const resets = (recent[0] ?? now()) + PER_TICKET.windowMs - now();
    if (recent.length >= PER_TICKET.updates) {
      counts.limited++;
      const seconds = String(Math.max(1, Math.ceil(resets / 1000)));
      return json(RATE_LIMITED, 429, {
        'Retry-After': seconds,
        'Zendesk-RateLimit-tickets-update': `total=${PER_TICKET.updates}; remaining=0; resets=${seconds}`,
      });
    }
    if (t.status === 'closed') return json(CLOSED, 422);
    const details = validateFields(b) ?? {};
    const comment = b.comment;
    const attachments = isRecord(comment) ? takeUploads(comment.uploads) : [];
    if (typeof attachments === 'string') details.uploads = [{ description: attachments, error: 'InvalidValue' }];
    if (Object.keys(details).length > 0 || typeof attachments === 'string') return json(invalid(details), 422);
    recent.push(now());
    ticketUpdates.set(t.id, recent);
    counts.accepted++;
    const audit = newAudit(t, b.metadata);
    let changed = applyFields(t, b, audit);
    if (isRecord(comment)) {
      addComment(t, comment, audit, attachments);
      changed = true;
    }
    // "If your update does not change the ticket, this will not create an Audit and will not save your metadata."
    if (changed) {
      t.updated_at = iso();
      t.audits.push(audit);
    }
    const remaining = String(PER_TICKET.updates - recent.length);
    const reset = String(Math.max(1, Math.ceil(((recent[0] ?? now()) + PER_TICKET.windowMs - now()) / 1000)));
    return json({ ticket: ticketJson(t), ...(changed ? { audit } : {}) }, 200, {
      'Zendesk-RateLimit-tickets-update': `total=${PER_TICKET.updates}; remaining=${remaining}; resets=${reset}`,
    });
  }

  // -- routing ----------------------------------------------------------------------------------------------
  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.slice('/api/v2'.length).replace(/\.json$/, '');
    const method = request.method.toUpperCase();
    const readJson = async (): Promise<Record<string, unknown> | null> => {
      try {
        const body: unknown = await request.json();
        return isRecord(body) ? body : null;
      } catch {
        return null;
      }
    };
    let m: RegExpMatchArray | null;

    if (method === 'GET' && path === '/users/me') return json({ user: userJson(users.get(apiUserId()) as FakeUser) });
    if (method === 'GET' && path === '/users/search') {
      const q = (url.searchParams.get('query') ?? '').trim().toLowerCase();
      const found = q === '' ? [] : [...users.values()].filter((u) => u.email.includes(q) || u.name.toLowerCase().includes(q));
      return json(offsetPage(found, 'users', userJson));
    }
    if (method === 'GET' && path === '/users') {
      const roles = url.searchParams.getAll('role[]').concat(url.searchParams.getAll('role'));
      const list = [...users.values()].filter((u) => roles.length === 0 || roles.includes(u.role)).sort((a, b) => a.id - b.id);
      return json(url.searchParams.has('page[size]') || url.searchParams.has('page[after]') ? cursorPage(list, url, 'users', userJson) : offsetPage(list, 'users', userJson));
    }
    if (method === 'GET' && path === '/groups') return json(offsetPage([...groups.values()], 'groups', (g) => g));
    if (method === 'GET' && (m = path.match(/^\/groups\/(\d+)$/))) {
      const g = groups.get(Number(m[1]));
      return g ? json({ group: g }) : json(NOT_FOUND, 404);
    }
    if (method === 'POST' && path === '/uploads') {
      const filename = url.searchParams.get('filename');
      if (!filename) return json(invalid({ filename: [{ description: 'Filename: cannot be blank', error: 'BlankValue' }] }), 422);
      const bytes = new Uint8Array(await request.arrayBuffer());
      const a: FakeAttachment = {
        id: ids.attachment++,
        file_name: filename,
        content_url: `${origin}/attachments/token/${randomBytes(8).toString('hex')}/?name=${encodeURIComponent(filename)}`,
        content_type: request.headers.get('content-type') ?? 'application/binary',
        size: bytes.byteLength,
      };
      const given = url.searchParams.get('token');
      const token = given && uploads.has(given) ? given : randomBytes(10).toString('hex');
      const files = uploads.get(token) ?? [];
      files.push(a);
      uploads.set(token, files);
      return json({ upload: { token, expires_at: new Date(now() + 3_600_000).toISOString(), attachment: a, attachments: files } }, 201);
    }
    if (path === '/tickets') {
      if (method === 'POST') {
        const body = await readJson();
        if (!body || !isRecord(body.ticket)) return json(invalid({ ticket: [{ description: 'Ticket: is required', error: 'BlankValue' }] }), 422);
        return createTicket(body.ticket);
      }
      if (method === 'GET') {
        const ext = url.searchParams.get('external_id');
        const list = [...tickets.values()].filter((t) => ext === null || t.external_id === ext);
        return json(url.searchParams.has('page[size]') ? cursorPage(list, url, 'tickets', ticketJson) : offsetPage(list, 'tickets', ticketJson));
      }
    }
    if ((m = path.match(/^\/tickets\/(\d+)(\/audits|\/comments)?$/))) {
      const t = tickets.get(Number(m[1]));
      if (!t) return json(NOT_FOUND, 404);
      if (method === 'GET' && m[2] === '/audits') {
        return json(url.searchParams.has('page[size]') ? cursorPage(t.audits, url, 'audits', (a) => a) : offsetPage(t.audits, 'audits', (a) => a));
      }
      if (method === 'GET' && m[2] === '/comments') {
        const list = url.searchParams.get('sort') === '-created_at' || url.searchParams.get('sort_order') === 'desc' ? [...t.comments].reverse() : t.comments;
        return json(url.searchParams.has('page[size]') ? cursorPage(list, url, 'comments', (c) => c) : offsetPage(list, 'comments', (c) => c));
      }
      if (method === 'GET' && !m[2]) return json({ ticket: ticketJson(t) });
      if (method === 'PUT' && !m[2]) {
        const body = await readJson();
        if (!body || !isRecord(body.ticket)) return json(invalid({ ticket: [{ description: 'Ticket: is required', error: 'BlankValue' }] }), 422);
        return updateTicket(t, body.ticket);
      }
    }
    return json({ error: 'InvalidEndpoint', description: 'Not found' }, 404);
  }

  async function handle(request: Request): Promise<Response> {
    served++;
    const url = new URL(request.url);
    log.push(`${request.method.toUpperCase()} ${url.pathname}`);
    if (now() - minute.start >= 60_000) minute = { start: now(), used: 0 };
    minute.used++;
    const injected = failures[0];
    if (injected) {
      if (--injected.left <= 0) failures.shift();
      const f = injected.failure;
      if ('network' in f) return HttpResponse.error();
      if (f.status === 429) return json(RATE_LIMITED, 429, { 'Retry-After': String(f.retryAfterSeconds) });
      if (f.status === 401) return json(AUTH_ERROR, 401);
      if (f.status === 500) return json({ error: 'InternalServerError', description: 'Something went wrong' }, 500);
      return new HttpResponse(`<html><body><h1>${f.status}</h1></body></html>`, { status: f.status, headers: { ...rateHeaders(), 'Content-Type': 'text/html' } });
    }
    if (request.headers.get('authorization') !== expectedAuth) return json(AUTH_ERROR, 401);
    if (minute.used > limitPerMinute) {
      return json(RATE_LIMITED, 429, { 'Retry-After': String(Math.max(1, Math.ceil((minute.start + 60_000 - now()) / 1000))) });
    }
    return route(request);
  }

  const handlers: RequestHandler[] = [http.all(`${api}/*`, ({ request }) => handle(request))];

  const ticketOf = (recordId: string) => (/^\d+$/.test(recordId) ? tickets.get(Number(recordId)) : undefined);

  function signed(body: string, opts2: { forged?: boolean; unsigned?: boolean }, invocationId: string): IncomingRequest {
    const timestamp = iso();
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      [WEBHOOK_HEADERS.accountId]: '123456',
      [WEBHOOK_HEADERS.webhookId]: '01F1KRFQ6BG29CNWFR60NK5FNY',
      [WEBHOOK_HEADERS.invocationId]: invocationId,
    };
    if (!opts2.unsigned) {
      headers[WEBHOOK_HEADERS.timestamp] = timestamp;
      headers[WEBHOOK_HEADERS.signature] = signZendeskWebhook(opts2.forged ? `${opts.webhookSecret}-forged` : opts.webhookSecret, timestamp, body);
    }
    return { headers, body, receivedAt: now() };
  }

  return {
    handlers,
    reset,
    injectFailure(failure, o) {
      failures.push({ failure, left: Math.max(1, o?.times ?? 1) });
    },
    countRecords(externalId) {
      return [...tickets.values()].filter((t) => t.external_id === externalId).length;
    },
    comments(recordId) {
      return (ticketOf(recordId)?.comments ?? []).map((c) => ({ body: c.plain_body, public: c.public }));
    },
    files(recordId) {
      return (ticketOf(recordId)?.comments ?? []).flatMap((c) => c.attachments.map((a) => ({ filename: a.file_name, size: a.size })));
    },
    record(recordId) {
      const t = ticketOf(recordId);
      if (!t) return undefined;
      return {
        status: t.status,
        assigneeEmail: t.assignee_id !== null ? (users.get(t.assignee_id)?.email ?? null) : null,
        tags: [...t.tags],
        queue: t.group_id !== null ? (groups.get(t.group_id)?.name ?? String(t.group_id)) : null,
        requesterEmail: users.get(t.requester_id)?.email ?? '',
        customFields: Object.fromEntries([...t.custom_fields].map(([id, v]) => [String(id), v])),
      };
    },
    seedAgents(n) {
      const start = users.size;
      for (let i = 0; i < n; i++) addUser(`seeded-agent-${start + i}@example.com`, 'agent', `Seeded Agent ${start + i}`);
    },
    requestCount: () => served,
    webhook(event, o = {}) {
      const t = ticketOf(event.recordId);
      const ticket = {
        id: event.recordId,
        external_id: t?.external_id ?? '',
        status: t?.status ?? '',
        assignee: { email: t && t.assignee_id !== null ? (users.get(t.assignee_id)?.email ?? '') : '' },
      };
      const defaultAgent = [...users.values()].find((u) => u.role === 'agent')?.email ?? 'agent1@example.com';
      let body: string;
      if (event.type === 'agent_reply') {
        body = renderPayload(AGENT_REPLY_PAYLOAD, {
          ticket: { ...ticket, latest_public_comment: { value: event.bodyText, author: { email: event.authorEmail }, attachments: event.attachments ?? [] } },
          current_user: { email: event.authorEmail },
        });
      } else if (event.type === 'status_changed') {
        body = renderPayload(statusPayload(SESSION_TO_ZENDESK[event.status]), { ticket, current_user: { email: defaultAgent } });
      } else {
        body = renderPayload(ASSIGNEE_PAYLOAD, { ticket: { ...ticket, assignee: { email: event.assigneeEmail ?? '' } }, current_user: { email: defaultAgent } });
      }
      return signed(body, o, event.eventId);
    },
    crmChange(recordId, change) {
      const t = ticketOf(recordId);
      if (!t) throw new Error(`fake zendesk: no ticket ${recordId}`);
      const agent = [...users.values()].find((u) => u.role === 'agent') ?? (users.get(apiUserId()) as FakeUser);
      const audit = newAudit(t, {}, agent.id);
      audit.via = { channel: 'web' };
      const fields: Record<string, unknown> = {};
      if (change.status !== undefined) fields.status = change.status;
      if (change.assigneeEmail !== undefined) fields.assignee_id = change.assigneeEmail === null ? null : (userByEmail(change.assigneeEmail)?.id ?? null);
      applyFields(t, fields, audit);
      if (change.publicReply !== undefined) {
        addComment(t, { body: change.publicReply, public: true, author_id: agent.id }, audit, []);
        const last = t.comments[t.comments.length - 1];
        if (last) last.via = { channel: 'web' };
      }
      t.updated_at = iso();
      t.audits.push(audit);
    },
    closeTicket(recordId) {
      const t = ticketOf(recordId);
      if (!t) throw new Error(`fake zendesk: no ticket ${recordId}`);
      const audit = newAudit(t, {}, -1);
      audit.via = { channel: 'rule' };
      applyFields(t, { status: 'closed' }, audit);
      t.audits.push(audit);
    },
    updateCalls(recordId) {
      const t = ticketOf(recordId);
      return (t && updateCounts.get(t.id)) || { accepted: 0, limited: 0 };
    },
    requests: () => [...log],
    followUpsOf(recordId) {
      return [...tickets.values()].filter((t) => String(t.via_followup_source_id) === recordId).map((t) => String(t.id));
    },
  };
}


// The Zendesk Support API through node-zendesk (the only file importing it): documented envelopes in, ConnectorErrors out.
import zendesk, { type ZendeskClientOptions } from 'node-zendesk';
import { z } from 'zod';
import type { FileRef } from '../contract.js';
import { classifyTransportError, classifyZendeskError, ZendeskConnectorError } from './errors.js';

export interface ZendeskApiOptions {
  /** Account URL, e.g. `https://acme.zendesk.com` (no path). */
  url: string;
  email: string;
  apiToken: string;
  /** Bound on every call (node-fetch `timeout`: headers and body). */
  timeoutMs: number;
  now(): number;
}

const looseObject = z.looseObject;

export const ticketSchema = looseObject({
  id: z.number(),
  status: z.string(),
  external_id: z.string().nullable().optional(),
  assignee_id: z.number().nullable().optional(),
  group_id: z.number().nullable().optional(),
  tags: z.array(z.string()).optional(),
});
export type ZendeskTicket = z.infer<typeof ticketSchema>;

export const userSchema = looseObject({
  id: z.number().nullable(),
  email: z.string().nullable().optional(),
  name: z.string().nullable().optional(),
  role: z.string().optional(),
  active: z.boolean().optional(),
});
export type ZendeskUser = z.infer<typeof userSchema>;

const auditSchema = looseObject({
  id: z.number(),
  metadata: looseObject({ custom: z.record(z.string(), z.unknown()).optional() }).optional(),
  events: z.array(looseObject({ id: z.number().optional(), type: z.string() })).optional(),
});
export type ZendeskAudit = z.infer<typeof auditSchema>;

const cursorPage = { meta: looseObject({ has_more: z.boolean() }).optional(), links: looseObject({ next: z.string().nullable().optional() }).optional() };

const envelopes = {
  ticket: looseObject({ ticket: ticketSchema, audit: auditSchema.nullable().optional() }),
  tickets: looseObject({ tickets: z.array(ticketSchema) }),
  user: looseObject({ user: userSchema }),
  users: looseObject({ users: z.array(userSchema), ...cursorPage }),
  audits: looseObject({ audits: z.array(auditSchema), ...cursorPage }),
  group: looseObject({ group: looseObject({ id: z.number(), name: z.string().optional() }) }),
  upload: looseObject({
    upload: looseObject({ token: z.string(), attachment: looseObject({ id: z.number() }).optional() }),
  }),
};

/** What node-zendesk resolves with: `{ response, result }`, response being its fetch-response adapter. */
interface Resolved {
  status: number;
  header(name: string): string | null;
  result: unknown;
}

function asResolved(out: unknown): Resolved | null {
  if (!isRecord(out) || !isRecord(out.response)) return null;
  const { status, headers } = out.response;
  if (typeof status !== 'number' || !isRecord(headers) || typeof headers.get !== 'function') return null;
  const get = headers.get;
  return {
    status,
    header: (name) => {
      const v: unknown = Reflect.apply(get, headers, [name]);
      return typeof v === 'string' ? v : null;
    },
    result: out.result,
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export interface ZendeskApi {
  /** GET /api/v2/users/me — the API user (test()). */
  me(): Promise<ZendeskUser>;
  /** GET /api/v2/groups/{id}. */
  showGroup(id: number): Promise<{ id: number; name?: string }>;
  /** POST /api/v2/tickets — 201 { ticket, audit }. */
  createTicket(body: { ticket: Record<string, unknown> }): Promise<ZendeskTicket>;
  /** GET /api/v2/tickets/{id}. */
  showTicket(id: string): Promise<ZendeskTicket>;
  /** PUT /api/v2/tickets/{id} — 200 { ticket, audit }; commentId is the Comment event of the audit. */
  updateTicket(id: string, body: { ticket: Record<string, unknown> }): Promise<{ ticket: ZendeskTicket; commentId?: string; auditId?: string }>;
  /** GET /api/v2/tickets?external_id= — external ids are not unique in Zendesk. */
  ticketsByExternalId(externalId: string): Promise<ZendeskTicket[]>;
  /** GET /api/v2/tickets/{id}/audits (cursor pages of 100, up to `maxPages`). */
  audits(id: string, maxPages: number): Promise<ZendeskAudit[]>;
  /** POST /api/v2/uploads?filename= with the file's MIME type — 201 { upload: { token } }. */
  upload(file: FileRef): Promise<{ token: string; attachmentId?: string }>;
  /** GET /api/v2/users/search?query= (one page: an exact email matches few users). */
  searchUsers(query: string): Promise<ZendeskUser[]>;
  /** GET /api/v2/users?role[]=agent&role[]=admin&page[size]=100, or the `links.next` of a previous page. */
  agentsPage(nextUrl?: string): Promise<{ users: ZendeskUser[]; next: string | null }>;
}

/**
 * node-zendesk 6 surfaces failures in three ways, and each is turned into a ConnectorError here:
 *  - it *throws* an Error carrying `statusCode` and the parsed body (`result`) for 400/401/403/404/405/
 *    409/422/429/500/503 — `throwOriginalException: true` keeps that error (otherwise it rethrows a bare
 *    Error whose message is all that is left of the status);
 *  - it *resolves* with `result` being an Error (statusCode 429 whatever the real status) whenever the answer
 *    carries `Retry-After` (429, and 503 during maintenance) — the real status and headers are read from
 *    `response`;
 *  - it *resolves* normally for statuses it does not know (502, 504, 413…): `response.status` is checked.
 * Transport failures (node-fetch FetchError: timeout, reset, DNS) reject and are transient.
 */
export function createZendeskApi(opts: ZendeskApiOptions): ZendeskApi {
  const apiBase = `${opts.url.replace(/\/+$/, '')}/api/v2`;
  const clientOptions: ZendeskClientOptions & { timeout: number } = {
    username: opts.email,
    token: opts.apiToken,
    endpointUri: apiBase,
    throwOriginalException: true,
    // Spread by node-zendesk into the node-fetch options of every request: a per-call timeout.
    timeout: opts.timeoutMs,
  };
  const zd = zendesk.createClient(clientOptions);
  // Client.request() of a resource client with no `jsonAPINames` returns the documented envelope untouched
  // (resource clients such as `tickets` unwrap it and lose `audit`, `meta` and `links`); `attachments` is one.
  const client = zd.attachments;
  const transporter = client.transporter;

  function fromThrown(err: unknown): ZendeskConnectorError {
    if (err instanceof ZendeskConnectorError) return err;
    if (isRecord(err) && typeof err.statusCode === 'number') {
      // Thrown by node-zendesk for a status it knows; the response headers are not kept on this path.
      return classifyZendeskError(err.statusCode, err.result, undefined, opts.now());
    }
    return classifyTransportError(err);
  }

  /** Runs one node-zendesk call and returns the answer body, or throws the ConnectorError it means. */
  async function call(run: () => Promise<unknown>): Promise<unknown> {
    let out: unknown;
    try {
      out = await run();
    } catch (err) {
      throw fromThrown(err);
    }
    const res = asResolved(out);
    if (!res) throw new ZendeskConnectorError('transient', 'zendesk: unexpected answer from node-zendesk');
    const headers = { get: res.header };
    if (res.result instanceof Error) {
      if (res.status === 204) return null; // "No Content", not a failure
      const body = isRecord(res.result) ? res.result.result : undefined;
      throw classifyZendeskError(res.status, body, headers, opts.now());
    }
    if (res.status >= 400 || res.status < 200) throw classifyZendeskError(res.status, res.result, headers, opts.now());
    return res.result;
  }

  function expect<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new ZendeskConnectorError('transient', `zendesk: unexpected ${what} body`);
    return parsed.data;
  }

  const request = (method: string, path: string, body?: object) =>
    // A full URL (it contains endpointUri) is used verbatim by node-zendesk's assembleUrl.
    call(() => (body ? client.request(method, `${apiBase}${path}`, body) : client.request(method, `${apiBase}${path}`)));

  const q = encodeURIComponent;

  return {
    async me() {
      return expect(envelopes.user, await request('GET', '/users/me.json'), 'users/me').user;
    },
    async showGroup(id) {
      return expect(envelopes.group, await request('GET', `/groups/${id}.json`), 'group').group;
    },
    async createTicket(body) {
      return expect(envelopes.ticket, await request('POST', '/tickets.json', body), 'ticket').ticket;
    },
    async showTicket(id) {
      return expect(envelopes.ticket, await request('GET', `/tickets/${q(id)}.json`), 'ticket').ticket;
    },
    async updateTicket(id, body) {
      const env = expect(envelopes.ticket, await request('PUT', `/tickets/${q(id)}.json`, body), 'ticket');
      const comment = env.audit?.events?.find((e) => e.type === 'Comment');
      return {
        ticket: env.ticket,
        ...(comment?.id !== undefined ? { commentId: String(comment.id) } : {}),
        ...(env.audit ? { auditId: String(env.audit.id) } : {}),
      };
    },
    async ticketsByExternalId(externalId) {
      return expect(envelopes.tickets, await request('GET', `/tickets.json?external_id=${q(externalId)}`), 'tickets').tickets;
    },
    async audits(id, maxPages) {
      const out: ZendeskAudit[] = [];
      let url: string | null = `${apiBase}/tickets/${q(id)}/audits.json?page%5Bsize%5D=100`;
      for (let page = 0; url && page < maxPages; page++) {
        const target: string = url;
        const env = expect(envelopes.audits, await call(() => client.request('GET', target)), 'audits');
        out.push(...env.audits);
        url = env.meta?.has_more && env.links?.next && env.links.next.startsWith(apiBase) ? env.links.next : null;
      }
      return out;
    },
    async upload(file) {
      // attachments.upload() cannot send bytes (a Buffer is taken for a file path) and sends
      // `application/binary`; the documented call wants the file's MIME type, so the request is prepared by
      // node-zendesk's transporter (URL, auth, timeout) and only Content-Type is set here.
      const prepared: unknown = transporter.prepareOptionsForRequest('POST', ['uploads', { filename: file.filename }], Buffer.from(file.bytes), true);
      if (!isRecord(prepared) || !isRecord(prepared.headers)) throw new ZendeskConnectorError('permanent', 'zendesk: cannot prepare upload');
      prepared.headers['Content-Type'] = file.contentType || 'application/octet-stream';
      const env = expect(envelopes.upload, await call(() => transporter.sendRequest(prepared)), 'upload');
      const attachmentId = env.upload.attachment?.id;
      return { token: env.upload.token, ...(attachmentId !== undefined ? { attachmentId: String(attachmentId) } : {}) };
    },
    async searchUsers(query) {
      return expect(envelopes.users, await request('GET', `/users/search.json?query=${q(query)}`), 'users').users;
    },
    async agentsPage(nextUrl) {
      if (nextUrl !== undefined && !nextUrl.startsWith(`${apiBase}/users`)) {
        throw new ZendeskConnectorError('permanent', 'zendesk: listAgents cursor is not a users page of this account');
      }
      const url = nextUrl ?? `${apiBase}/users.json?role%5B%5D=agent&role%5B%5D=admin&page%5Bsize%5D=100`;
      const env = expect(envelopes.users, await call(() => client.request('GET', url)), 'users');
      const next = env.meta?.has_more && env.links?.next ? env.links.next : null;
      return { users: env.users, next };
    },
  };
}

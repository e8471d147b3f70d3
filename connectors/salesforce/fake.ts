// A faithful fake of the Salesforce REST API (msw handlers): OAuth/SOAP login, sObjects, upsert, composite, SOQL, limits (test support).
import { http, HttpResponse, type RequestHandler } from 'msw';
import { fieldsOf, matches, parseSoql, SoqlError, sortRows, type SoqlQuery } from './fake-soql.js';

export const FAKE_INSTANCE_URL = 'https://email-channel-dev.my.salesforce.com';
export const FAKE_CLIENT_ID = '3MVG9EmailChannelFakeConnectedAppConsumerKey';
export const FAKE_CLIENT_SECRET = 'E8A1F7C2D4B6095A3C1E7F2D8B4A6C90E1F3A5B7C9D1E3F5A7B9C1D3E5F7A9B1';
export const FAKE_USERNAME = 'integration@email-channel.example';
export const FAKE_PASSWORD = 'correct-horse-battery';
export const FAKE_SECURITY_TOKEN = 'FAKESECURITYTOKEN01';
export const FAKE_INTEGRATION_EMAIL = FAKE_USERNAME;
/** The agent the kit uses (KIT_AGENT_EMAIL); known after reset(). */
export const FAKE_AGENT_EMAIL = 'agent1@example.com';
/** A custom field this fake org has on Case besides the connector's own (for the kit's customFields). */
export const FAKE_ORG_CUSTOM_FIELD = 'Product__c';

/** The kit's failure injections (same shape as connectors/kit/types.ts, which a connector's non-test code may not import). */
export type FakeInjectedFailure = { status: 429; retryAfterSeconds: number } | { status: 500 | 502 | 503 } | { status: 401 } | { network: true };

// ── ids ──────────────────────────────────────────────────────────────────────────────────────────────
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SUFFIX = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/** An 18-character id: key prefix, a pod-like filler, a base-62 counter (ids sort in creation order), the case-safe suffix. */
export function fakeId(prefix: string, n: number): string {
  let c = '';
  let v = n;
  for (let i = 0; i < 6; i++) {
    c = (B62[v % 62] as string) + c;
    v = Math.floor(v / 62);
  }
  const id15 = `${prefix}5g0000${c}`;
  let suffix = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let flags = 0;
    for (let j = 0; j < 5; j++) {
      const ch = id15[chunk * 5 + j] as string;
      if (ch >= 'A' && ch <= 'Z') flags |= 1 << j;
    }
    suffix += SUFFIX[flags] as string;
  }
  return id15 + suffix;
}

const ID_FORMAT = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;
const same15 = (a: string, b: string): boolean => a.slice(0, 15) === b.slice(0, 15);

export const FAKE_ORG_ID = fakeId('00D', 1);
export const FAKE_INTEGRATION_USER_ID = fakeId('005', 1);
export const FAKE_QUEUES = { Support: fakeId('00G', 1), Billing: fakeId('00G', 2) } as const;

// ── schema ───────────────────────────────────────────────────────────────────────────────────────────
type FieldType = 'id' | 'string' | 'textarea' | 'email' | 'picklist' | 'boolean' | 'reference' | 'datetime' | 'base64' | 'int';

interface FieldDef {
  type: FieldType;
  length?: number;
  /** Length counted in UTF-8 bytes (CaseComment.CommentBody). */
  bytes?: boolean;
  createable?: boolean;
  updateable?: boolean;
  required?: boolean;
  picklist?: string[];
  restricted?: boolean;
  externalId?: boolean;
  unique?: boolean;
  referenceTo?: string[];
  relationshipName?: string;
}

const SYSTEM: Record<string, FieldDef> = {
  Id: { type: 'id' },
  CreatedDate: { type: 'datetime' },
  CreatedById: { type: 'reference', referenceTo: ['User'], relationshipName: 'CreatedBy' },
  LastModifiedDate: { type: 'datetime' },
  LastModifiedById: { type: 'reference', referenceTo: ['User'], relationshipName: 'LastModifiedBy' },
  SystemModstamp: { type: 'datetime' },
  IsDeleted: { type: 'boolean' },
};
const rw = { createable: true, updateable: true };

/** Default picklist of Case.Status in a new org. */
export const DEFAULT_CASE_STATUSES = ['New', 'Working', 'Escalated', 'Closed'];
const SESSION_STATUSES = ['unopened', 'active', 'paused', 'resolved', 'closed', 'reopened'];

function buildSchema(caseStatuses: string[]): Record<string, Record<string, FieldDef>> {
  return {
    Case: {
      ...SYSTEM,
      CaseNumber: { type: 'string', length: 30 },
      Subject: { type: 'string', length: 255, ...rw },
      Description: { type: 'textarea', length: 32_000, ...rw },
      Origin: { type: 'picklist', picklist: ['Phone', 'Email', 'Web'], ...rw },
      Status: { type: 'picklist', picklist: caseStatuses, restricted: true, ...rw },
      Priority: { type: 'picklist', picklist: ['High', 'Medium', 'Low'], ...rw },
      IsClosed: { type: 'boolean' },
      SuppliedEmail: { type: 'email', length: 80, ...rw },
      SuppliedName: { type: 'string', length: 80, ...rw },
      OwnerId: { type: 'reference', referenceTo: ['User', 'Group'], relationshipName: 'Owner', ...rw },
      ParentId: { type: 'reference', referenceTo: ['Case'], relationshipName: 'Parent', ...rw },
      EmailChannel_Session_Id__c: { type: 'string', length: 32, externalId: true, unique: true, ...rw },
      EmailChannel_Status__c: { type: 'picklist', picklist: SESSION_STATUSES, restricted: true, ...rw },
      [FAKE_ORG_CUSTOM_FIELD]: { type: 'string', length: 255, ...rw },
    },
    EmailMessage: {
      ...SYSTEM,
      ParentId: { type: 'reference', referenceTo: ['Case'], relationshipName: 'Parent', createable: true },
      Incoming: { type: 'boolean', createable: true },
      Status: { type: 'picklist', picklist: ['0', '1', '2', '3', '4', '5'], restricted: true, createable: true, updateable: true },
      FromAddress: { type: 'email', length: 1000, createable: true },
      FromName: { type: 'string', length: 1000, createable: true },
      ToAddress: { type: 'string', length: 4000, createable: true },
      Subject: { type: 'string', length: 3000, createable: true },
      TextBody: { type: 'textarea', length: 32_000, createable: true },
      HtmlBody: { type: 'textarea', length: 32_000, createable: true },
      MessageDate: { type: 'datetime', createable: true },
    },
    CaseComment: {
      ...SYSTEM,
      ParentId: { type: 'reference', referenceTo: ['Case'], relationshipName: 'Parent', createable: true, required: true },
      CommentBody: { type: 'textarea', length: 4000, bytes: true, ...rw },
      IsPublished: { type: 'boolean', ...rw },
    },
    ContentVersion: {
      ...SYSTEM,
      Title: { type: 'string', length: 255, ...rw },
      PathOnClient: { type: 'string', length: 500, createable: true, required: true },
      VersionData: { type: 'base64', createable: true, required: true },
      Description: { type: 'textarea', length: 1000, ...rw },
      ReasonForChange: { type: 'string', length: 1000, ...rw },
      FirstPublishLocationId: { type: 'reference', referenceTo: ['Case'], createable: true },
      ContentDocumentId: { type: 'reference', referenceTo: ['ContentDocument'] },
      ContentSize: { type: 'int' },
      IsLatest: { type: 'boolean' },
    },
    User: {
      ...SYSTEM,
      Email: { type: 'email', length: 128 },
      Name: { type: 'string', length: 121 },
      Username: { type: 'string', length: 80 },
      IsActive: { type: 'boolean' },
      UserType: { type: 'picklist', picklist: ['Standard', 'AutomatedProcess', 'Guest'] },
    },
    Group: {
      ...SYSTEM,
      Name: { type: 'string', length: 40 },
      DeveloperName: { type: 'string', length: 80 },
      Type: { type: 'picklist', picklist: ['Queue', 'Regular'] },
    },
  };
}

/** Fields of the polymorphic "Name" object (Case.Owner: a User or a queue). */
const NAME_FIELDS = new Set(['Id', 'Name', 'Email', 'Type', 'IsActive', 'Username']);

const KEY_PREFIX: Record<string, string> = { Case: '500', EmailMessage: '02s', CaseComment: '00a', ContentVersion: '068', User: '005', Group: '00G', ContentDocument: '069' };

type Value = string | number | boolean | null;
type SfRecord = Record<string, Value>;

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface State {
  objects: Record<string, Map<string, SfRecord>>;
  counters: Record<string, number>;
  caseNumber: number;
}

const sfErr = (errorCode: string, message: string, fields?: string[]) => [{ message, errorCode, ...(fields ? { fields } : {}) }];
const notFound = (message = 'The requested resource does not exist'): Answer => ({ status: 404, body: sfErr('NOT_FOUND', message) });

export interface SalesforceFakeOptions {
  /** Case.Status picklist (default: New, Working, Escalated, Closed). */
  caseStatuses?: string[];
  /** Daily API request limit (Sforce-Limit-Info api-usage=n/limit). */
  dailyLimit?: number;
  /** The fake's clock (audit dates, to the second as Salesforce stores them). */
  now?: () => number;
}

export interface FakeRequest {
  method: string;
  path: string;
  /** Counted against the daily API limit (REST calls, not logins). */
  api: boolean;
}

/**
 * The fake Salesforce org. Implements the conformance kit's ConnectorFake, plus controls for the
 * Salesforce-specific tests (session expiry, daily usage, clock, request log).
 */
export class SalesforceFake {
  readonly handlers: RequestHandler[];
  private readonly schema: Record<string, Record<string, FieldDef>>;
  private state: State = { objects: {}, counters: {}, caseNumber: 1000 };
  private tokens = new Set<string>();
  private tokenSeq = 0;
  private injections: { failure: FakeInjectedFailure; remaining: number }[] = [];
  private used = 0;
  private dailyLimit: number;
  private readonly initialLimit: number;
  private clock: () => number;
  private readonly defaultClock: () => number;
  private log: FakeRequest[] = [];
  private locators = new Map<string, { rows: unknown[]; object: string }>();
  private locatorSeq = 0;
  private lostAnswers = 0;

  constructor(opts: SalesforceFakeOptions = {}) {
    this.schema = buildSchema(opts.caseStatuses ?? DEFAULT_CASE_STATUSES);
    this.initialLimit = opts.dailyLimit ?? 100_000;
    this.dailyLimit = this.initialLimit;
    this.defaultClock = opts.now ?? Date.now;
    this.clock = this.defaultClock;
    this.handlers = this.buildHandlers();
    this.reset();
  }

  // ── ConnectorFake ──────────────────────────────────────────────────────────────────────────────────

  reset(): void {
    this.state = { objects: {}, counters: {}, caseNumber: 1000 };
    for (const name of Object.keys(this.schema)) this.state.objects[name] = new Map();
    this.tokens.clear();
    this.injections = [];
    this.used = 0;
    this.dailyLimit = this.initialLimit;
    this.clock = this.defaultClock;
    this.log = [];
    this.locators.clear();
    this.lostAnswers = 0;
    const ts = this.timestamp();
    this.table('User').set(FAKE_INTEGRATION_USER_ID, {
      ...this.audit(FAKE_INTEGRATION_USER_ID, ts),
      Email: FAKE_INTEGRATION_EMAIL,
      Name: 'Email Channel Integration',
      Username: FAKE_USERNAME,
      IsActive: true,
      UserType: 'Standard',
    });
    this.state.counters.User = 1;
    this.addUser(FAKE_AGENT_EMAIL, 'Agent 1');
    for (const [name, id] of Object.entries(FAKE_QUEUES)) {
      this.table('Group').set(id, { ...this.audit(id, ts), Name: name, DeveloperName: name, Type: 'Queue' });
    }
    this.state.counters.Group = Object.keys(FAKE_QUEUES).length;
  }

  injectFailure(failure: FakeInjectedFailure, opts?: { times?: number }): void {
    this.injections.push({ failure, remaining: opts?.times ?? 1 });
  }

  countRecords(externalId: string): number {
    return [...this.table('Case').values()].filter((c) => typeof c.EmailChannel_Session_Id__c === 'string' && c.EmailChannel_Session_Id__c.toLowerCase() === externalId.toLowerCase()).length;
  }

  /** The case's feed as the kit sees it: EmailMessages (public: they are the emails) and CaseComments (IsPublished). */
  comments(recordId: string): { body: string; public: boolean }[] {
    const rows: { at: string; id: string; body: string; public: boolean }[] = [];
    for (const m of this.table('EmailMessage').values()) {
      if (typeof m.ParentId === 'string' && same15(m.ParentId, recordId)) {
        rows.push({ at: String(m.CreatedDate), id: String(m.Id), body: String(m.TextBody ?? m.HtmlBody ?? ''), public: true });
      }
    }
    for (const c of this.table('CaseComment').values()) {
      if (typeof c.ParentId === 'string' && same15(c.ParentId, recordId)) {
        rows.push({ at: String(c.CreatedDate), id: String(c.Id), body: String(c.CommentBody ?? ''), public: c.IsPublished === true });
      }
    }
    rows.sort((a, b) => (a.at === b.at ? (a.id < b.id ? -1 : 1) : a.at < b.at ? -1 : 1));
    return rows.map(({ body, public: pub }) => ({ body, public: pub }));
  }

  files(recordId: string): { filename: string; size: number }[] {
    return [...this.table('ContentVersion').values()]
      .filter((v) => typeof v.FirstPublishLocationId === 'string' && same15(v.FirstPublishLocationId, recordId) && v.IsLatest === true)
      .map((v) => ({ filename: String(v.PathOnClient), size: Number(v.ContentSize) }));
  }

  /**
   * The case as the kit checks it. The assignee is the owning agent: null when a queue owns the case or the
   * integration user does (it stands for "nobody" after an unassign). No `tags`: Cases have none (the
   * marker is EmailChannel_Session_Id__c); no `queue`: a case is owned by a user or by a queue, never both.
   */
  record(recordId: string): { status: string; assigneeEmail: string | null; requesterEmail?: string; customFields?: Record<string, unknown> } | undefined {
    const c = this.findById('Case', recordId);
    if (!c) return undefined;
    const owner = typeof c.OwnerId === 'string' ? this.findById('User', c.OwnerId) : undefined;
    const assigneeEmail = owner && owner.Id !== FAKE_INTEGRATION_USER_ID ? String(owner.Email) : null;
    const customFields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c)) if (this.schema.Case?.[k]?.createable) customFields[k] = v;
    return {
      status: String(c.Status),
      assigneeEmail,
      ...(typeof c.SuppliedEmail === 'string' ? { requesterEmail: c.SuppliedEmail } : {}),
      customFields,
    };
  }

  /** Active standard users agent1…agentN@example.com (the ones that exist already are kept). */
  seedAgents(n: number): void {
    const have = new Set([...this.table('User').values()].map((u) => String(u.Email).toLowerCase()));
    for (let k = 1; k <= n; k++) {
      const email = `agent${k}@example.com`;
      if (!have.has(email)) this.addUser(email, `Agent ${k}`);
    }
  }

  /** Every HTTP request the fake answered (logins included). */
  requestCount(): number {
    return this.log.length;
  }

  /** An agent (agent1, or the new assignee) changes the case in Salesforce. */
  crmChange(recordId: string, change: { status?: string; assigneeEmail?: string | null; publicReply?: string }): void {
    const c = this.findById('Case', recordId);
    if (!c) throw new Error(`crmChange: no case ${recordId}`);
    const agentId = this.userByEmail(FAKE_AGENT_EMAIL)?.Id ?? this.addUser(FAKE_AGENT_EMAIL, 'Agent 1');
    const ts = this.timestamp();
    if (change.status !== undefined) c.Status = change.status;
    if (change.assigneeEmail !== undefined) {
      c.OwnerId = change.assigneeEmail === null ? FAKE_QUEUES.Support : (this.userByEmail(change.assigneeEmail)?.Id ?? this.addUser(change.assigneeEmail, change.assigneeEmail));
    }
    if (change.status !== undefined || change.assigneeEmail !== undefined) {
      c.IsClosed = c.Status === 'Closed';
      Object.assign(c, { LastModifiedDate: ts, LastModifiedById: String(agentId), SystemModstamp: ts });
    }
    if (change.publicReply !== undefined) {
      const id = this.nextId('CaseComment');
      this.table('CaseComment').set(id, { ...this.audit(id, ts, String(agentId)), ParentId: String(c.Id), CommentBody: change.publicReply, IsPublished: true });
    }
  }

  // ── Salesforce-specific controls ─────────────────────────────────────────────────────────────────────

  /** The next `n` REST calls are carried out, then their answers are lost (connection reset after the write). */
  loseNextAnswers(n = 1): void {
    this.lostAnswers = n;
  }

  /** Revokes every access token (the next REST call answers 401 INVALID_SESSION_ID). */
  expireSessions(): void {
    this.tokens.clear();
  }

  /** Sets the daily API usage the org reports (Sforce-Limit-Info) and enforces (403 REQUEST_LIMIT_EXCEEDED). */
  setApiUsage(used: number, limit = this.dailyLimit): void {
    this.used = used;
    this.dailyLimit = limit;
  }

  apiUsage(): { used: number; limit: number } {
    return { used: this.used, limit: this.dailyLimit };
  }

  /** Pins the fake's clock (null: back to the default). */
  setClock(now: (() => number) | null): void {
    this.clock = now ?? this.defaultClock;
  }

  requests(): FakeRequest[] {
    return [...this.log];
  }

  /** REST calls counted against the daily limit. */
  apiCalls(): number {
    return this.log.filter((r) => r.api).length;
  }

  rows(object: string): SfRecord[] {
    return [...this.table(object).values()].map((r) => ({ ...r }));
  }

  addUser(email: string, name: string): string {
    const id = this.nextId('User');
    this.table('User').set(id, { ...this.audit(id, this.timestamp()), Email: email, Name: name, Username: email, IsActive: true, UserType: 'Standard' });
    return id;
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────────────

  private table(object: string): Map<string, SfRecord> {
    const t = this.state.objects[object];
    if (!t) throw new Error(`fake: no table ${object}`);
    return t;
  }

  private nextId(object: string): string {
    const n = (this.state.counters[object] ?? 0) + 1;
    this.state.counters[object] = n;
    return fakeId(KEY_PREFIX[object] ?? '001', n);
  }

  /** Salesforce dateTime, whole seconds: "2024-05-01T10:00:00.000+0000". */
  private timestamp(): string {
    return new Date(Math.floor(this.clock() / 1000) * 1000).toISOString().replace('Z', '+0000');
  }

  private audit(id: string, ts: string, by = FAKE_INTEGRATION_USER_ID): SfRecord {
    return { Id: id, CreatedDate: ts, CreatedById: by, LastModifiedDate: ts, LastModifiedById: by, SystemModstamp: ts, IsDeleted: false };
  }

  private findById(object: string, id: string): SfRecord | undefined {
    if (!ID_FORMAT.test(id)) return undefined;
    for (const r of this.table(object).values()) if (same15(String(r.Id), id)) return r;
    return undefined;
  }

  private userByEmail(email: string): SfRecord | undefined {
    for (const u of this.table('User').values()) if (String(u.Email).toLowerCase() === email.toLowerCase()) return u;
    return undefined;
  }

  private objectOfId(id: string): string | undefined {
    for (const [object, prefix] of Object.entries(KEY_PREFIX)) if (id.startsWith(prefix) && this.findById(object, id)) return object;
    return undefined;
  }

  private limitHeader(): Record<string, string> {
    return { 'Sforce-Limit-Info': `api-usage=${this.used}/${this.dailyLimit}` };
  }

  private respond(answer: Answer, api: boolean): Response {
    const headers: Record<string, string> = { ...(api ? this.limitHeader() : {}), ...(answer.headers ?? {}) };
    if (answer.body === undefined) return new HttpResponse(null, { status: answer.status, headers });
    if (typeof answer.body === 'string') return new HttpResponse(answer.body, { status: answer.status, headers: { 'Content-Type': 'text/html;charset=UTF-8', ...headers } });
    return HttpResponse.json(answer.body as never, { status: answer.status, headers: { 'Content-Type': 'application/json;charset=UTF-8', ...headers } });
  }

  private buildHandlers(): RequestHandler[] {
    const base = FAKE_INSTANCE_URL;
    return [
      http.post(`${base}/services/oauth2/token`, async ({ request }) => {
        this.log.push({ method: 'POST', path: '/services/oauth2/token', api: false });
        return this.respond(this.token(new URLSearchParams(await request.text())), false);
      }),
      http.post(`${base}/services/Soap/u/:version`, async ({ request, params }) => {
        this.log.push({ method: 'POST', path: new URL(request.url).pathname, api: false });
        const { status, xml } = this.soapLogin(await request.text(), String(params.version));
        return new HttpResponse(xml, { status, headers: { 'Content-Type': 'text/xml;charset=UTF-8' } });
      }),
      http.all(`${base}/services/data/*`, async ({ request }) => {
        const url = new URL(request.url);
        this.log.push({ method: request.method, path: url.pathname + url.search, api: true });
        const injected = this.takeInjection();
        if (injected === 'network') return HttpResponse.error();
        if (injected) {
          if (injected.status === 401) this.tokens.delete(bearer(request.headers.get('authorization')));
          return this.respond(injected, true);
        }
        if (!this.tokens.has(bearer(request.headers.get('authorization')))) {
          return this.respond({ status: 401, body: sfErr('INVALID_SESSION_ID', 'Session expired or invalid') }, true);
        }
        if (this.used >= this.dailyLimit) return this.respond({ status: 403, body: sfErr('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.') }, true);
        this.used += 1;
        const text = request.method === 'GET' || request.method === 'HEAD' ? '' : await request.text();
        let body: unknown;
        if (text) {
          try {
            body = JSON.parse(text);
          } catch {
            return this.respond({ status: 400, body: sfErr('JSON_PARSER_ERROR', 'Unexpected character: was expecting a JSON value') }, true);
          }
        }
        const headers: Record<string, string> = {};
        request.headers.forEach((v, k) => {
          headers[k.toLowerCase()] = v;
        });
        const answer = this.route(request.method, url.pathname, url.searchParams, body, headers, false);
        if (this.lostAnswers > 0) {
          // Processed, but the answer never arrives (a timeout or reset after the write): the ambiguous case.
          this.lostAnswers -= 1;
          return HttpResponse.error();
        }
        return this.respond(answer, true);
      }),
    ];
  }

  private takeInjection(): Answer | 'network' | null {
    const next = this.injections[0];
    if (!next) return null;
    next.remaining -= 1;
    if (next.remaining <= 0) this.injections.shift();
    const f = next.failure;
    if ('network' in f) return 'network';
    switch (f.status) {
      // Salesforce has no 429: over a limit it answers 403 REQUEST_LIMIT_EXCEEDED, without Retry-After.
      case 429:
        return { status: 403, body: sfErr('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.') };
      case 401:
        return { status: 401, body: sfErr('INVALID_SESSION_ID', 'Session expired or invalid') };
      case 500:
        return { status: 500, body: sfErr('UNKNOWN_EXCEPTION', 'An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)') };
      case 502:
        return { status: 502, body: '<html><body><h1>502 Bad Gateway</h1></body></html>' };
      case 503:
        return { status: 503, body: sfErr('SERVER_UNAVAILABLE', 'Server temporarily unavailable, please retry your request.') };
    }
  }

  private issueToken(): string {
    this.tokenSeq += 1;
    const token = `${FAKE_ORG_ID.slice(0, 15)}!AQ4AQ.fake.${this.tokenSeq}.${Math.random().toString(36).slice(2, 12)}`;
    this.tokens.add(token);
    return token;
  }

  /** POST /services/oauth2/token (client credentials flow). */
  private token(form: URLSearchParams): Answer {
    const grant = form.get('grant_type');
    if (grant !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant type not supported' } };
    if (form.get('client_id') !== FAKE_CLIENT_ID) return { status: 400, body: { error: 'invalid_client_id', error_description: 'client identifier invalid' } };
    if (form.get('client_secret') !== FAKE_CLIENT_SECRET) return { status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } };
    return {
      status: 200,
      body: {
        access_token: this.issueToken(),
        signature: 'nUFHwtfIGLKDTHcLWmDBG8frv0t+HQGl/iCZFIQUarE=',
        token_format: 'opaque',
        scope: 'api',
        instance_url: FAKE_INSTANCE_URL,
        id: `${FAKE_INSTANCE_URL}/id/${FAKE_ORG_ID}/${FAKE_INTEGRATION_USER_ID}`,
        token_type: 'Bearer',
        issued_at: String(this.clock()),
      },
    };
  }

  /** POST /services/Soap/u/<version> login(): loginResponse, or a 500 INVALID_LOGIN fault. */
  private soapLogin(xml: string, version: string): { status: number; xml: string } {
    const tag = (name: string) => unescapeXml(new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1] ?? '');
    if (tag('username') !== FAKE_USERNAME || tag('password') !== `${FAKE_PASSWORD}${FAKE_SECURITY_TOKEN}`) {
      return {
        status: 500,
        xml:
          '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
          '<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>' +
          '<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail>' +
          '</soapenv:Fault></soapenv:Body></soapenv:Envelope>',
      };
    }
    const org15 = FAKE_ORG_ID.slice(0, 15);
    return {
      status: 200,
      xml:
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
        '<soapenv:Body><loginResponse><result>' +
        `<metadataServerUrl>${FAKE_INSTANCE_URL}/services/Soap/m/${version}/${org15}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>` +
        `<serverUrl>${FAKE_INSTANCE_URL}/services/Soap/u/${version}/${org15}</serverUrl><sessionId>${this.issueToken()}</sessionId><userId>${FAKE_INTEGRATION_USER_ID}</userId>` +
        `<userInfo><organizationId>${FAKE_ORG_ID}</organizationId><userEmail>${FAKE_INTEGRATION_EMAIL}</userEmail><userFullName>Email Channel Integration</userFullName><userId>${FAKE_INTEGRATION_USER_ID}</userId><userName>${FAKE_USERNAME}</userName></userInfo>` +
        '</result></loginResponse></soapenv:Body></soapenv:Envelope>',
    };
  }

  /** Routes one REST call (top level or composite subrequest); `path` starts with /services/data/. */
  private route(method: string, path: string, params: URLSearchParams, body: unknown, headers: Record<string, string>, inComposite: boolean): Answer {
    const m = /^\/services\/data\/(v\d+\.\d)(\/.*)?$/.exec(path);
    if (!m) return notFound();
    const version = Number((m[1] as string).slice(1));
    const rest = (m[2] ?? '/').split('/').filter(Boolean).map(decodeURIComponent);
    const [resource, ...args] = rest;
    if (resource === 'query' && method === 'GET') {
      if (args.length === 0) return this.query(params.get('q'), m[1] as string, headers);
      if (args.length === 1) return this.queryMore(args[0] as string);
    }
    if (resource === 'composite' && args.length === 0 && method === 'POST' && !inComposite) return this.composite(body);
    if (resource === 'sobjects' && args.length >= 1) {
      const [type, a, b] = args as [string, string | undefined, string | undefined];
      const schema = this.schema[type];
      if (!schema) return notFound();
      if (a === undefined) return method === 'POST' ? this.create(type, body) : { status: 405, body: sfErr('METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are GET,HEAD,POST`) };
      if (a === 'describe' && b === undefined && method === 'GET') return this.describe(type);
      if (b === undefined) {
        if (method === 'GET') return this.retrieve(type, a, params.get('fields'), m[1] as string);
        if (method === 'PATCH') return this.update(type, a, body);
        return { status: 405, body: sfErr('METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are HEAD,GET,PATCH,DELETE`) };
      }
      if (method === 'GET') return this.byExternalId(type, a, b, params.get('fields'), m[1] as string);
      if (method === 'PATCH') return this.upsert(type, a, b, body, version, m[1] as string);
      return { status: 405, body: sfErr('METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are GET,HEAD,PATCH,DELETE`) };
    }
    return notFound();
  }

  private describe(type: string): Answer {
    const schema = this.schema[type] as Record<string, FieldDef>;
    return {
      status: 200,
      body: {
        name: type,
        label: type,
        createable: true,
        updateable: true,
        queryable: true,
        fields: Object.entries(schema).map(([name, f]) => ({
          name,
          type: f.type,
          length: f.length ?? 0,
          externalId: f.externalId === true,
          unique: f.unique === true,
          createable: f.createable === true,
          updateable: f.updateable === true,
          nillable: f.required !== true,
          referenceTo: f.referenceTo ?? [],
          relationshipName: f.relationshipName ?? null,
          restrictedPicklist: f.restricted === true,
          picklistValues: (f.picklist ?? []).map((value) => ({ value, label: value, active: true, defaultValue: false })),
        })),
      },
    };
  }

  /** Validates a write; answers the Salesforce error of the first problem, or null. */
  private validate(type: string, fields: Record<string, unknown>, creating: boolean, selfId?: string): Answer | null {
    const schema = this.schema[type] as Record<string, FieldDef>;
    for (const [name, value] of Object.entries(fields)) {
      const def = schema[name];
      if (!def) return { status: 400, body: sfErr('INVALID_FIELD', `No such column '${name}' on sobject of type ${type}`) };
      if (creating ? !def.createable : !def.updateable) {
        return {
          status: 400,
          body: sfErr('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, [name]),
        };
      }
      if (value === null) continue;
      if (def.type === 'boolean' && typeof value !== 'boolean') return { status: 400, body: sfErr('JSON_PARSER_ERROR', `Cannot deserialize instance of boolean from ${typeof value} value for ${name}`) };
      if (def.type !== 'boolean' && typeof value === 'object') return { status: 400, body: sfErr('JSON_PARSER_ERROR', `Cannot deserialize instance of ${def.type} from START_OBJECT value for ${name}`) };
      const text = String(value);
      if (def.length) {
        const size = def.bytes ? new TextEncoder().encode(text).length : text.length;
        if (size > def.length) return { status: 400, body: sfErr('STRING_TOO_LONG', `${name}: data value too large: ${text.slice(0, 40)}... (max length=${def.length})`, [name]) };
      }
      if (def.type === 'picklist' && def.restricted && !def.picklist?.includes(text)) {
        return { status: 400, body: sfErr('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${name}: bad value for restricted picklist field: ${text}`, [name]) };
      }
      if (def.type === 'reference') {
        if (!ID_FORMAT.test(text)) return { status: 400, body: sfErr('MALFORMED_ID', `${name}: id value of incorrect type: ${text}`, [name]) };
        const target = this.objectOfId(text);
        if (!target || !(def.referenceTo ?? []).includes(target) || (target === 'Group' && this.findById('Group', text)?.Type !== 'Queue')) {
          return { status: 400, body: sfErr('INVALID_CROSS_REFERENCE_KEY', 'invalid cross reference id', [name]) };
        }
      }
      if (def.type === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return { status: 400, body: sfErr('JSON_PARSER_ERROR', `Cannot deserialize base64 value for ${name}`) };
    }
    if (creating) {
      const missing = Object.entries(schema).filter(([n, d]) => d.required && (fields[n] === undefined || fields[n] === null || fields[n] === '')).map(([n]) => n);
      if (missing.length) return { status: 400, body: sfErr('REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing) };
    }
    for (const [name, def] of Object.entries(schema)) {
      if (!def.unique || fields[name] === undefined || fields[name] === null) continue;
      const wanted = String(fields[name]).toLowerCase();
      for (const r of this.table(type).values()) {
        if (typeof r[name] === 'string' && (r[name] as string).toLowerCase() === wanted && r.Id !== selfId) {
          return { status: 400, body: sfErr('DUPLICATE_VALUE', `duplicate value found: ${name} duplicates value on record with id: ${String(r.Id)}`, []) };
        }
      }
    }
    return null;
  }

  private create(type: string, body: unknown): Answer {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return { status: 400, body: sfErr('JSON_PARSER_ERROR', 'The request body must be a JSON object') };
    const fields = body as Record<string, unknown>;
    const invalid = this.validate(type, fields, true);
    if (invalid) return invalid;
    const id = this.nextId(type);
    const ts = this.timestamp();
    const rec: SfRecord = { ...this.audit(id, ts) };
    for (const [k, v] of Object.entries(fields)) rec[k] = v as Value;
    if (type === 'Case') {
      this.state.caseNumber += 1;
      rec.CaseNumber = String(this.state.caseNumber).padStart(8, '0');
      rec.Status ??= 'New';
      rec.Origin ??= null;
      rec.OwnerId ??= FAKE_INTEGRATION_USER_ID;
      rec.IsClosed = rec.Status === 'Closed';
    }
    if (type === 'CaseComment') rec.IsPublished ??= false;
    if (type === 'ContentVersion') {
      const data = String(rec.VersionData);
      rec.ContentSize = Math.floor((data.length * 3) / 4) - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);
      rec.VersionData = `/services/data/v60.0/sobjects/ContentVersion/${id}/VersionData`;
      rec.Title ??= String(rec.PathOnClient);
      rec.IsLatest = true;
      rec.ContentDocumentId = this.nextId('ContentDocument');
    }
    this.table(type).set(id, rec);
    return { status: 201, body: { id, success: true, errors: [] }, headers: { Location: `/services/data/v60.0/sobjects/${type}/${id}` } };
  }

  private shape(type: string, rec: SfRecord, fieldList: string | null, version: string): Record<string, unknown> {
    const fields = fieldList ? fieldList.split(',').map((f) => f.trim()).filter(Boolean) : Object.keys(this.schema[type] ?? {});
    const out: Record<string, unknown> = { attributes: { type, url: `/services/data/${version}/sobjects/${type}/${String(rec.Id)}` } };
    for (const f of fields) out[f] = rec[f] ?? null;
    return out;
  }

  private retrieve(type: string, id: string, fields: string | null, version: string): Answer {
    const rec = this.findById(type, id);
    if (!rec) return ID_FORMAT.test(id) ? notFound() : notFound(`Provided external ID field does not exist or is not accessible: ${id}`);
    const bad = fields?.split(',').map((f) => f.trim()).find((f) => f && !this.schema[type]?.[f]);
    if (bad) return { status: 400, body: sfErr('INVALID_FIELD', `No such column '${bad}' on entity '${type}'`) };
    return { status: 200, body: this.shape(type, rec, fields, version) };
  }

  private update(type: string, id: string, body: unknown): Answer {
    const rec = this.findById(type, id);
    if (!rec) return ID_FORMAT.test(id) ? notFound() : notFound(`Provided external ID field does not exist or is not accessible: ${id}`);
    if (!body || typeof body !== 'object' || Array.isArray(body)) return { status: 400, body: sfErr('JSON_PARSER_ERROR', 'The request body must be a JSON object') };
    const fields = body as Record<string, unknown>;
    const invalid = this.validate(type, fields, false, String(rec.Id));
    if (invalid) return invalid;
    for (const [k, v] of Object.entries(fields)) rec[k] = v as Value;
    const ts = this.timestamp();
    Object.assign(rec, { LastModifiedDate: ts, LastModifiedById: FAKE_INTEGRATION_USER_ID, SystemModstamp: ts });
    if (type === 'Case') rec.IsClosed = rec.Status === 'Closed';
    return { status: 204 };
  }

  private matchExternal(type: string, field: string, value: string): SfRecord[] {
    return [...this.table(type).values()].filter((r) => typeof r[field] === 'string' && (r[field] as string).toLowerCase() === value.toLowerCase());
  }

  private byExternalId(type: string, field: string, value: string, fields: string | null, version: string): Answer {
    const def = this.schema[type]?.[field];
    if (!def?.externalId) return notFound(`Provided external ID field does not exist or is not accessible: ${field}`);
    const found = this.matchExternal(type, field, value);
    if (found.length === 0) return notFound();
    if (found.length > 1) return { status: 300, body: found.map((r) => `/services/data/${version}/sobjects/${type}/${String(r.Id)}`) };
    return { status: 200, body: this.shape(type, found[0] as SfRecord, fields, version) };
  }

  /** PATCH …/sobjects/Type/ExtField/value: 201 created; updated: 200 with the UpsertResult (v46.0+) or 204 before. */
  private upsert(type: string, field: string, value: string, body: unknown, version: number, versionPath: string): Answer {
    const def = this.schema[type]?.[field];
    if (!def?.externalId) return notFound(`Provided external ID field does not exist or is not accessible: ${field}`);
    const found = this.matchExternal(type, field, value);
    if (found.length > 1) return { status: 300, body: found.map((r) => `/services/data/${versionPath}/sobjects/${type}/${String(r.Id)}`) };
    const existing = found[0];
    if (existing) {
      const res = this.update(type, String(existing.Id), body);
      if (res.status !== 204) return res;
      return version >= 46 ? { status: 200, body: { id: existing.Id, success: true, errors: [], created: false } } : { status: 204 };
    }
    const fields = { ...((body ?? {}) as Record<string, unknown>), [field]: value };
    const res = this.create(type, fields);
    if (res.status !== 201) return res;
    const created = res.body as { id: string };
    return { status: 201, body: { id: created.id, success: true, errors: [], ...(version >= 46 ? { created: true } : {}) }, headers: res.headers ?? {} };
  }

  // ── SOQL ─────────────────────────────────────────────────────────────────────────────────────────

  /** Resolves a field path on a row: `Owner.Email`, `CreatedBy.Email`, `Parent.EmailChannel_Session_Id__c`. */
  private get(type: string, rec: SfRecord, path: string[]): unknown {
    const [head, ...tail] = path;
    if (head === undefined) return undefined;
    if (tail.length === 0) return rec[head];
    const rel = this.relation(type, head);
    if (!rel) return undefined;
    const id = rec[rel.field];
    if (typeof id !== 'string') return null;
    const target = rel.targets.map((t) => ({ t, r: this.findById(t, id) })).find((x) => x.r);
    if (!target?.r) return null;
    if (rel.polymorphic && tail.length === 1 && tail[0] === 'Type') return target.t === 'Group' ? target.r.Type : target.t;
    return this.get(target.t, target.r, tail);
  }

  private relation(type: string, name: string): { field: string; targets: string[]; polymorphic: boolean } | undefined {
    for (const [field, def] of Object.entries(this.schema[type] ?? {})) {
      if (def.relationshipName?.toLowerCase() === name.toLowerCase()) {
        const targets = def.referenceTo ?? [];
        return { field, targets, polymorphic: targets.length > 1 };
      }
    }
    return undefined;
  }

  private checkPath(type: string, path: string[]): boolean {
    const [head, ...tail] = path;
    if (head === undefined) return false;
    if (tail.length === 0) return Object.keys(this.schema[type] ?? {}).some((f) => f.toLowerCase() === head.toLowerCase());
    const rel = this.relation(type, head);
    if (!rel) return false;
    if (rel.polymorphic) return tail.length === 1 && NAME_FIELDS.has(tail[0] as string);
    return rel.targets.some((t) => this.checkPath(t, tail));
  }

  /** A row as the query answers it: the selected fields, relationships as nested objects. */
  private project(type: string, rec: SfRecord, q: SoqlQuery, version: string): Record<string, unknown> {
    const out: Record<string, unknown> = { attributes: { type, url: `/services/data/${version}/sobjects/${type}/${String(rec.Id)}` } };
    for (const path of q.fields) {
      if (path.length === 1) {
        const name = Object.keys(this.schema[type] ?? {}).find((f) => f.toLowerCase() === (path[0] as string).toLowerCase()) ?? (path[0] as string);
        out[name] = rec[name] ?? null;
        continue;
      }
      const rel = this.relation(type, path[0] as string);
      if (!rel) continue;
      const id = rec[rel.field];
      const target = typeof id === 'string' ? rel.targets.map((t) => ({ t, r: this.findById(t, id) })).find((x) => x.r) : undefined;
      const key = this.schema[type]?.[rel.field]?.relationshipName ?? (path[0] as string);
      if (!target?.r) {
        out[key] = null;
        continue;
      }
      const nested = (out[key] as Record<string, unknown> | undefined) ?? {
        attributes: { type: rel.polymorphic ? 'Name' : target.t, url: `/services/data/${version}/sobjects/${target.t}/${String(target.r.Id)}` },
      };
      nested[path.slice(1).join('.')] = this.get(type, rec, path);
      out[key] = nested;
    }
    return out;
  }

  private query(soql: string | null, version: string, headers: Record<string, string>): Answer {
    if (!soql) return { status: 400, body: sfErr('MALFORMED_QUERY', 'A query string has to be specified') };
    let q: SoqlQuery;
    try {
      q = parseSoql(soql);
    } catch (err) {
      if (err instanceof SoqlError) return { status: 400, body: sfErr(err.errorCode, err.message) };
      throw err;
    }
    if (!this.schema[q.object]) return { status: 400, body: sfErr('INVALID_TYPE', `sObject type '${q.object}' is not supported.`) };
    for (const path of fieldsOf(q)) {
      if (!this.checkPath(q.object, path)) return { status: 400, body: sfErr('INVALID_FIELD', `No such column '${path.join('.')}' on entity '${q.object}'.`) };
    }
    const type = q.object;
    let rows = [...this.table(type).values()].filter((r) => matches(q.where, (p) => this.get(type, r, p)));
    rows = sortRows(rows, q.orderBy, (r, p) => this.get(type, r, p));
    if (q.limit !== null) rows = rows.slice(0, q.limit);
    const out = rows.map((r) => this.project(type, r, q, version));
    const asked = Number(/batchSize=(\d+)/.exec(headers['sforce-query-options'] ?? '')?.[1] ?? 2000);
    const batch = Math.min(2000, Math.max(200, Number.isFinite(asked) ? asked : 2000));
    return { status: 200, body: this.page(out, 0, batch, version, type) };
  }

  private page(all: unknown[], offset: number, batch: number, version: string, object: string): Record<string, unknown> {
    const records = all.slice(offset, offset + batch);
    const next = offset + batch;
    const body: Record<string, unknown> = { totalSize: all.length, done: next >= all.length, records };
    if (next < all.length) {
      this.locatorSeq += 1;
      const locator = `${fakeId('01g', this.locatorSeq)}-${next}`;
      this.locators.set(locator, { rows: all, object: `${object}|${batch}|${version}` });
      body.nextRecordsUrl = `/services/data/${version}/query/${locator}`;
    }
    return body;
  }

  private queryMore(locator: string): Answer {
    const stored = this.locators.get(locator);
    if (!stored) return { status: 400, body: sfErr('INVALID_QUERY_LOCATOR', 'invalid query locator') };
    const [object, batch, version] = stored.object.split('|') as [string, string, string];
    const offset = Number(locator.split('-')[1]);
    return { status: 200, body: this.page(stored.rows, offset, Number(batch), version, object) };
  }

  // ── composite ───────────────────────────────────────────────────────────────────────────────────

  private composite(body: unknown): Answer {
    const input = body as { allOrNone?: unknown; compositeRequest?: unknown } | undefined;
    const subs = input?.compositeRequest;
    if (!Array.isArray(subs) || subs.length === 0) return { status: 400, body: sfErr('JSON_PARSER_ERROR', 'compositeRequest is required') };
    if (subs.length > 25) return { status: 400, body: sfErr('LIMIT_EXCEEDED', 'Maximum number of subrequests allowed is 25') };
    const queries = subs.filter((s) => typeof s?.url === 'string' && /\/query/.test(s.url)).length;
    if (queries > 5) return { status: 400, body: sfErr('LIMIT_EXCEEDED', 'Maximum number of query subrequests allowed is 5') };
    const allOrNone = input?.allOrNone === true;
    const snapshot = allOrNone ? structuredClone(this.state) : null;
    const results: { body: unknown; httpHeaders: Record<string, string>; httpStatusCode: number; referenceId: string }[] = [];
    const byRef = new Map<string, { status: number; body: unknown }>();
    let failed = false;
    for (const raw of subs) {
      const sub = raw as { method?: string; url?: string; referenceId?: string; body?: unknown; httpHeaders?: Record<string, string> };
      const referenceId = String(sub.referenceId ?? '');
      if (failed && allOrNone) {
        results.push({ body: sfErr('PROCESSING_HALTED', 'The transaction was rolled back since another operation in the same transaction failed.'), httpHeaders: {}, httpStatusCode: 400, referenceId });
        continue;
      }
      let answer: Answer;
      try {
        const url = String(resolveRefs(String(sub.url ?? ''), byRef));
        const subBody = sub.body === undefined ? undefined : resolveRefs(sub.body, byRef);
        const u = new URL(url, FAKE_INSTANCE_URL);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(sub.httpHeaders ?? {})) headers[k.toLowerCase()] = v;
        answer = u.pathname.startsWith('/services/data/')
          ? this.route(String(sub.method ?? 'GET'), u.pathname, u.searchParams, subBody, headers, true)
          : notFound();
      } catch (err) {
        if (!(err instanceof RefError)) throw err;
        answer = { status: 400, body: sfErr('PROCESSING_HALTED', err.message) };
      }
      byRef.set(referenceId, { status: answer.status, body: answer.body });
      results.push({ body: answer.body ?? null, httpHeaders: answer.headers ?? {}, httpStatusCode: answer.status, referenceId });
      if (answer.status >= 400) failed = true;
    }
    if (failed && allOrNone && snapshot) {
      this.state = snapshot;
      for (const r of results) {
        if (r.httpStatusCode < 400) {
          r.httpStatusCode = 400;
          r.httpHeaders = {};
          r.body = sfErr('PROCESSING_HALTED', 'The transaction was rolled back since another operation in the same transaction failed.');
        }
      }
    }
    return { status: 200, body: { compositeResponse: results } };
  }
}

class RefError extends Error {}

/** Replaces `@{ref.path}` in strings (url and body) with values of earlier subresponses. */
function resolveRefs(value: unknown, refs: Map<string, { status: number; body: unknown }>): unknown {
  if (typeof value === 'string') {
    return value.replace(/@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}/g, (_all, ref: string, path: string) => {
      const found = refs.get(ref);
      let cur: unknown = found && found.status < 400 ? found.body : undefined;
      for (const step of path.match(/\.[A-Za-z0-9_]+|\[\d+\]/g) ?? []) {
        if (cur === undefined || cur === null) break;
        cur = step.startsWith('[') ? (cur as unknown[])[Number(step.slice(1, -1))] : (cur as Record<string, unknown>)[step.slice(1)];
      }
      if (cur === undefined || cur === null || typeof cur === 'object') {
        throw new RefError(`Invalid reference specified. No value for ${ref}${path} found in ${ref}. Provided referenceId ('${ref}') might be invalid.`);
      }
      return String(cur);
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, refs));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v, refs)]));
  return value;
}

function bearer(header: string | null): string {
  return header?.replace(/^Bearer\s+/i, '') ?? '';
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

export function createSalesforceFake(opts: SalesforceFakeOptions = {}): SalesforceFake {
  return new SalesforceFake(opts);
}

// The Salesforce REST client: the only file importing jsforce (login, session refresh on INVALID_SESSION_ID, API-usage back-off).
import { Connection, OAuth2 } from 'jsforce';
import { ConnectorError } from '../contract.js';
import {
  classifyLoginError,
  classifySalesforceError,
  isSessionExpired,
  parseLimitInfo,
  usageBackoffMs,
  type ApiUsage,
  type SalesforceFailure,
} from './errors.js';
import { API_VERSION, DATA_PATH } from './mapping.js';

/** OAuth 2.0 client credentials (a Connected App with a run-as user) first; SOAP login() as the alternative. */
export type SalesforceAuth =
  | { kind: 'client_credentials'; clientId: string; clientSecret: string }
  | { kind: 'soap'; username: string; password: string; securityToken: string };

export interface SalesforceClientOptions {
  loginUrl: string;
  auth: SalesforceAuth;
  /** Bound on every call (ms). */
  timeoutMs: number;
  now(): number;
  checkHost(host: string, field: string): Promise<void>;
  log: { warn(o: object, m?: string): void };
  /** Hold back once the daily API usage reaches this percentage (Sforce-Limit-Info). */
  usageBackoffPercent: number;
}

export interface SalesforceSession {
  conn: Connection;
  /** The integration (run-as) user: its own writes are not CRM events. */
  userId: string;
  orgId: string;
  instanceUrl: string;
}

export interface SfResponse<T> {
  status: number;
  body: T;
  headers: Record<string, string>;
}

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface QueryResult<R> {
  totalSize: number;
  done: boolean;
  nextRecordsUrl?: string;
  records: R[];
}

export interface CompositeSubrequest {
  method: HttpMethod;
  url: string;
  referenceId: string;
  body?: unknown;
  httpHeaders?: Record<string, string>;
}

export interface CompositeSubresponse {
  body: unknown;
  httpHeaders: Record<string, string>;
  httpStatusCode: number;
  referenceId: string;
}

/** The raw answer jsforce's transport saw for one call (jsforce's own errors drop the status and headers). */
interface RawResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

function parseBody(raw: RawResponse): unknown {
  if (raw.statusCode === 204 || raw.body === '') return undefined;
  if (/^application\/json/i.test(raw.headers['content-type'] ?? '')) {
    try {
      return JSON.parse(raw.body) as unknown;
    } catch {
      return raw.body;
    }
  }
  return raw.body;
}

function errorFields(err: unknown): { name?: string; message?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { message: String(err) };
}

/**
 * One org, one integration user. Logs in lazily (single flight), re-authenticates once when a call answers
 * 401 INVALID_SESSION_ID (a second 401 is `auth`), classifies every failure through errors.ts and refuses
 * calls for a while once Sforce-Limit-Info shows the daily usage above the threshold.
 */
export class SalesforceClient {
  private session: Promise<SalesforceSession> | null = null;
  private blockedUntil = 0;
  /** Last usage Salesforce reported. */
  usage: ApiUsage | null = null;

  constructor(private readonly opts: SalesforceClientOptions) {}

  /** The current session, logging in when there is none. */
  async ensureSession(): Promise<SalesforceSession> {
    if (!this.session) {
      const attempt = this.login();
      this.session = attempt;
      attempt.catch(() => {
        if (this.session === attempt) this.session = null;
      });
    }
    return this.session;
  }

  private async withTimeout<T>(what: string, promise: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectorError('transient', `Salesforce ${what}: no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkHost(url: string): Promise<void> {
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      throw new ConnectorError('permanent', `Salesforce: "${url}" is not a URL`);
    }
    try {
      await this.opts.checkHost(host, 'loginUrl');
    } catch (err) {
      if (err instanceof ConnectorError) throw err;
      throw new ConnectorError('permanent', `Salesforce: ${errorFields(err).message ?? 'host refused'}`);
    }
  }

  private async login(): Promise<SalesforceSession> {
    const { loginUrl, auth } = this.opts;
    await this.checkHost(loginUrl);
    // No oauth2 client in the constructor: jsforce would then install its refresh-token delegate, which has
    // nothing to refresh under client credentials and retries 401s without bound. This class re-authenticates.
    const conn = new Connection({ loginUrl, version: API_VERSION });
    let user: { id: string; organizationId: string };
    try {
      if (auth.kind === 'client_credentials') {
        conn.oauth2 = new OAuth2({ loginUrl, clientId: auth.clientId, clientSecret: auth.clientSecret });
        user = await this.withTimeout('login', conn.authorize({ grant_type: 'client_credentials' }));
      } else {
        // loginBySoap, not login(): login() installs a refresh delegate as well.
        user = await this.withTimeout('login', conn.loginBySoap(auth.username, `${auth.password}${auth.securityToken}`));
      }
    } catch (err) {
      if (err instanceof ConnectorError) throw err;
      throw classifyLoginError(errorFields(err));
    }
    if (!conn.accessToken || !conn.instanceUrl) throw new ConnectorError('auth', 'Salesforce login answered no session');
    // The instance URL comes from the login answer: an admin-entered login host must not redirect us inside.
    await this.checkHost(conn.instanceUrl);
    return { conn, userId: user.id, orgId: user.organizationId, instanceUrl: conn.instanceUrl };
  }

  private noteUsage(headers: Record<string, string>): void {
    const usage = parseLimitInfo(headers['sforce-limit-info']);
    if (!usage) return;
    this.usage = usage;
    const wait = usageBackoffMs(usage, this.opts.usageBackoffPercent);
    if (wait > 0) {
      const until = this.opts.now() + wait;
      if (until > this.blockedUntil) {
        this.blockedUntil = until;
        this.opts.log.warn({ used: usage.used, limit: usage.limit, waitMs: wait }, 'salesforce: daily API usage above the threshold, holding back');
      }
    }
  }

  private async once(session: SalesforceSession, method: HttpMethod, path: string, body: unknown, headers: Record<string, string>): Promise<SfResponse<unknown> | SalesforceFailure> {
    let raw: RawResponse | undefined;
    const base = session.conn._transport;
    // Sees the raw answer (status, headers, body) that jsforce's HttpApi turns into a bare error.
    const transport = {
      httpRequest: (...args: Parameters<typeof base.httpRequest>) => {
        const pending = base.httpRequest(...args);
        pending.then(
          (res) => {
            raw = res;
          },
          () => {},
        );
        return pending;
      },
    };
    const request = {
      method,
      url: path,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    };
    try {
      // No retries inside jsforce: the service's jobs retry with back-off on the ConnectorError's advice.
      await session.conn.request(request, { transport, timeout: this.opts.timeoutMs, retry: { maxRetries: 0 } });
    } catch (err) {
      if (!raw) {
        const f = errorFields(err);
        return { ...(f.name ? { errorName: f.name } : {}), ...(f.message ? { errorMessage: f.message } : {}) };
      }
    }
    if (!raw) return { errorMessage: 'no answer' };
    this.noteUsage(raw.headers);
    return { status: raw.statusCode, body: parseBody(raw), headers: raw.headers };
  }

  /** One REST call (path from the instance root, e.g. `/services/data/v60.0/...`). Throws a ConnectorError. */
  async request<T>(method: HttpMethod, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<SfResponse<T>> {
    const now = this.opts.now();
    if (now < this.blockedUntil) {
      throw new ConnectorError('rate_limited', 'Salesforce: daily API usage above the configured threshold, holding back', this.blockedUntil - now);
    }
    let session = await this.ensureSession();
    for (let attempt = 0; ; attempt++) {
      const res = await this.once(session, method, path, body, headers);
      const failure = res as SalesforceFailure;
      const ok = failure.status !== undefined && failure.status < 300;
      if (ok) return res as SfResponse<T>;
      if (attempt === 0 && isSessionExpired(failure)) {
        // Expired or revoked session: log in again once (unless another call already did) and retry.
        if ((await this.session) === session) this.session = null;
        session = await this.ensureSession();
        continue;
      }
      throw classifySalesforceError(failure, this.opts.now());
    }
  }

  async query<R>(soql: string, headers: Record<string, string> = {}): Promise<QueryResult<R>> {
    return (await this.request<QueryResult<R>>('GET', `${DATA_PATH}/query?q=${encodeURIComponent(soql)}`, undefined, headers)).body;
  }

  /** The next batch of a query, by its `nextRecordsUrl`. */
  async queryMore<R>(nextRecordsUrl: string): Promise<QueryResult<R>> {
    if (!nextRecordsUrl.startsWith(`${DATA_PATH}/query/`)) throw new ConnectorError('permanent', `Salesforce: not a query locator: ${nextRecordsUrl}`);
    return (await this.request<QueryResult<R>>('GET', nextRecordsUrl)).body;
  }

  /** All records of a query, following nextRecordsUrl. */
  async queryAll<R>(soql: string): Promise<R[]> {
    let page = await this.query<R>(soql);
    const out = [...page.records];
    while (!page.done && page.nextRecordsUrl) {
      page = await this.queryMore<R>(page.nextRecordsUrl);
      out.push(...page.records);
    }
    return out;
  }

  /** POST /composite: up to 25 subrequests, one API call. */
  async composite(subrequests: CompositeSubrequest[], allOrNone: boolean): Promise<CompositeSubresponse[]> {
    if (subrequests.length === 0 || subrequests.length > 25) throw new ConnectorError('permanent', `Salesforce composite: ${subrequests.length} subrequests (1…25)`);
    const res = await this.request<{ compositeResponse: CompositeSubresponse[] }>('POST', `${DATA_PATH}/composite`, { allOrNone, compositeRequest: subrequests });
    return res.body.compositeResponse;
  }
}

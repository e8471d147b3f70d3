// A fake of Salesforce's Streaming API endpoint (CometD / Bayeux over HTTP long-polling) as msw handlers, for
// jsforce's streaming client (Faye, which sends with node's https: msw intercepts it) (test support).
//
// Wire format, from Salesforce's Streaming API guide ("How the Client Connects", "Handling Streaming API
// Errors", "Streaming API Error Codes") and the Change Data Capture guide ("Change Event Message Structure"):
// - POST https://<instance>/cometd/<apiVersion> (CometD clients may append the message type: /handshake,
//   /connect, /subscribe, …); the body is a JSON array of Bayeux messages, answered by an array; a request
//   may carry several messages (Faye batches /meta/connect with /meta/subscribe).
// - The access token goes in the Authorization header (`OAuth <token>` from jsforce; `Bearer` also works).
// - /meta/handshake → clientId, supportedConnectionTypes ["long-polling"] (the only transport Salesforce
//   serves), a session cookie the client must send back, `ext.replay: true` (what jsforce's Replay extension
//   looks for). A bad token: `403::Handshake denied`, `ext.sfdc.failureReason: "401::Authentication invalid"`,
//   advice reconnect none.
// - /meta/subscribe → `subscription` echoed; an unknown channel: `400::The channel you requested to subscribe
//   to does not exist {<channel>}`; an optional `ext.replay: { <channel>: <replayId | -1 | -2> }`.
// - /meta/connect is held until an event is waiting or the hold (advice.timeout; 110 s at Salesforce) runs out,
//   then answered `successful: true` with the events in the same answer; a client the server forgot:
//   `403::Unknown client` with advice reconnect handshake; a token revoked meanwhile: `401::Authentication
//   invalid` with advice reconnect none.
// - Events: CDC `{ schema, payload: { ChangeEventHeader: { entityName, recordIds, changeType, changedFields,
//   commitTimestamp, commitUser, … }, …fields }, event: { replayId } }` on /data/<Object>ChangeEvent; PushTopic
//   `{ event: { type, createdDate, replayId }, sobject }` on /topic/<Name>; platform events `{ schema, payload:
//   { …fields, CreatedDate, CreatedById }, event: { replayId } }` on /event/<Name>__e.
// What the guides leave open is marked "fake's choice" below.
import { http, HttpResponse, type RequestHandler } from 'msw';
import { FAKE_INSTANCE_URL } from './fake.js';
import { API_VERSION } from './mapping.js';

/** The session cookie set at handshake (fake's choice of name: CometD's; Salesforce documents only that a cookie is required). */
export const FAKE_BAYEUX_COOKIE = 'BAYEUX_BROWSER';
export const CASE_CHANGE_EVENT_CHANNEL = '/data/CaseChangeEvent';

export interface BayeuxMessage {
  channel: string;
  id?: string;
  clientId?: string;
  successful?: boolean;
  error?: string;
  subscription?: string | string[];
  connectionType?: string;
  supportedConnectionTypes?: string[];
  version?: string;
  minimumVersion?: string;
  advice?: { reconnect?: string; interval?: number; timeout?: number };
  ext?: Record<string, unknown>;
  data?: unknown;
}

export interface StreamingFakeOptions {
  instanceUrl?: string;
  apiVersion?: string;
  /** How long a /meta/connect is held without events (ms), sent as advice.timeout (Salesforce: 110000). */
  holdMs?: number;
  /** Channels that exist besides /data/CaseChangeEvent (PushTopics, platform events the admin created). */
  channels?: string[];
}

type Wake = 'event' | 'timeout' | 'drop' | 'auth' | 'disconnect' | 'release' | 'abort';

interface FakeClient {
  id: string;
  token: string;
  cookie: string;
  subscriptions: Set<string>;
  queue: BayeuxMessage[];
  held: { wake(reason: Wake): void } | null;
}

interface Retained {
  replayId: number;
  message: BayeuxMessage;
}

export interface StreamingRequestLog {
  channel: string;
  clientId?: string;
  subscription?: string;
  token: string;
}

const META = new Set(['/meta/handshake', '/meta/connect', '/meta/subscribe', '/meta/unsubscribe', '/meta/disconnect']);

function tokenOf(header: string | null): string {
  const m = /^(?:OAuth|Bearer)\s+(.+)$/i.exec(header ?? '');
  return m?.[1]?.trim() ?? '';
}

function cookieValue(header: string | null, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function randomId(length: number): string {
  let s = '';
  while (s.length < length) s += Math.random().toString(36).slice(2);
  return s.slice(0, length);
}

export class SalesforceStreamingFake {
  readonly handlers: RequestHandler[];
  readonly instanceUrl: string;
  readonly apiVersion: string;
  holdMs: number;
  private readonly defaultChannels: string[];
  private channels = new Set<string>();
  private clientsById = new Map<string, FakeClient>();
  private revoked = new Set<string>();
  private retained = new Map<string, Retained[]>();
  private replaySeq = 1000;
  private failures = 0;
  private log: StreamingRequestLog[] = [];
  private handshakes = 0;

  constructor(opts: StreamingFakeOptions = {}) {
    this.instanceUrl = opts.instanceUrl ?? FAKE_INSTANCE_URL;
    this.apiVersion = opts.apiVersion ?? API_VERSION;
    this.holdMs = opts.holdMs ?? 2500;
    this.defaultChannels = [CASE_CHANGE_EVENT_CHANNEL, ...(opts.channels ?? [])];
    const endpoint = `${this.instanceUrl}/cometd/${this.apiVersion}`;
    const handle = ({ request, params }: { request: Request; params: Record<string, string | readonly string[] | undefined> }) =>
      this.handle(request, typeof params.type === 'string' ? params.type : undefined);
    this.handlers = [http.post(endpoint, handle), http.post(`${endpoint}/:type`, handle)];
    this.reset();
  }

  /** Back to a fresh org: the default channels, no clients, no retained events, no injections; held connects are answered. */
  reset(): void {
    this.release();
    this.clientsById.clear();
    this.channels = new Set(this.defaultChannels);
    this.revoked.clear();
    this.retained.clear();
    this.failures = 0;
    this.log = [];
    this.handshakes = 0;
  }

  /** A channel the admin created (PushTopic, platform event, generic channel). */
  addChannel(channel: string): void {
    this.channels.add(channel);
  }

  /** Publishes an event on a channel: every client subscribed to it gets it on its (held) /meta/connect. Returns its replayId. */
  publish(channel: string, data: Record<string, unknown>): number {
    this.replaySeq += 1;
    const replayId = this.replaySeq;
    const event = { ...((data.event as Record<string, unknown> | undefined) ?? {}), replayId };
    const message: BayeuxMessage = { channel, data: { ...data, event } };
    const kept = this.retained.get(channel) ?? [];
    kept.push({ replayId, message });
    this.retained.set(channel, kept);
    for (const c of this.clientsById.values()) {
      if (!c.subscriptions.has(channel)) continue;
      c.queue.push(message);
      c.held?.wake('event');
    }
    return replayId;
  }

  /** A Change Data Capture event for Case (an agent changed Status or OwnerId, by default). */
  publishCaseChange(
    recordIds: string[],
    opts: { changeType?: string; changedFields?: string[]; commitUser?: string; fields?: Record<string, unknown> } = {},
  ): number {
    const now = Date.now();
    return this.publish(CASE_CHANGE_EVENT_CHANNEL, {
      schema: 'IeRuaY6cbI_HsV8Rv1Mc5g',
      payload: {
        ChangeEventHeader: {
          entityName: 'Case',
          recordIds,
          changeType: opts.changeType ?? 'UPDATE',
          changedFields: opts.changedFields ?? ['Status', 'LastModifiedDate'],
          changeOrigin: 'com/salesforce/api/rest/60.0',
          transactionKey: randomId(20),
          sequenceNumber: 1,
          commitTimestamp: now,
          commitNumber: now * 1000,
          commitUser: opts.commitUser ?? '0055g0000000AGENT1',
        },
        ...(opts.fields ?? {}),
        LastModifiedDate: new Date(now).toISOString(),
      },
    });
  }

  /** A PushTopic event (`/topic/<name>`): `{ event: { type, createdDate, replayId }, sobject }`. */
  publishPushTopic(topic: string, sobject: Record<string, unknown>, type: 'created' | 'updated' | 'deleted' | 'undeleted' = 'created'): number {
    return this.publish(`/topic/${topic}`, { event: { type, createdDate: new Date().toISOString() }, sobject });
  }

  /** A platform event (`/event/<Name>__e`): `{ schema, payload: { …fields, CreatedDate, CreatedById }, event }`. */
  publishPlatformEvent(channel: string, fields: Record<string, unknown>, createdById = '0055g0000000AGENT1'): number {
    return this.publish(channel, { schema: 'Hr1GXqTTNkGVoLXTyUj0Ww', payload: { ...fields, CreatedDate: new Date().toISOString(), CreatedById: createdById } });
  }

  /** The server forgets every client (session timeout, Hyperforce rebalancing): held connects answer `403::Unknown client`. */
  dropClients(): void {
    const all = [...this.clientsById.values()];
    this.clientsById.clear();
    for (const c of all) c.held?.wake('drop');
  }

  /** Revokes every token seen so far (admin revoked the session): held connects answer `401::Authentication invalid`. */
  expireAuth(): void {
    for (const c of this.clientsById.values()) this.revoked.add(c.token);
    for (const entry of this.log) this.revoked.add(entry.token);
    for (const c of [...this.clientsById.values()]) c.held?.wake('auth');
  }

  /** The next `n` requests fail at the network level (connection reset). */
  failNextRequests(n = 1): void {
    this.failures = n;
  }

  /** Answers every held /meta/connect now (test teardown). */
  release(): void {
    for (const c of this.clientsById.values()) c.held?.wake('release');
  }

  /** Every Bayeux message received, in order. */
  requests(): StreamingRequestLog[] {
    return [...this.log];
  }

  handshakeCount(): number {
    return this.handshakes;
  }

  clients(): { id: string; subscriptions: string[] }[] {
    return [...this.clientsById.values()].map((c) => ({ id: c.id, subscriptions: [...c.subscriptions] }));
  }

  heldConnects(): number {
    return [...this.clientsById.values()].filter((c) => c.held).length;
  }

  // ── the endpoint ───────────────────────────────────────────────────────────────────────────────────
  private async handle(request: Request, type: string | undefined): Promise<Response> {
    if (this.failures > 0) {
      this.failures -= 1;
      return HttpResponse.error();
    }
    let messages: BayeuxMessage[];
    try {
      const body = (await request.json()) as unknown;
      messages = (Array.isArray(body) ? body : [body]) as BayeuxMessage[];
    } catch {
      return HttpResponse.json([{ channel: '/meta/unknown', successful: false, error: '400::Bad request' }], { status: 400 });
    }
    const token = tokenOf(request.headers.get('authorization'));
    const cookie = cookieValue(request.headers.get('cookie'), FAKE_BAYEUX_COOKIE);
    const replies: BayeuxMessage[] = [];
    let setCookie: string | undefined;
    let connect: { message: BayeuxMessage; client: FakeClient } | undefined;

    for (const m of messages) {
      this.log.push({ channel: m.channel, token, ...(m.clientId ? { clientId: m.clientId } : {}), ...(typeof m.subscription === 'string' ? { subscription: m.subscription } : {}) });
      const base = { channel: m.channel, ...(m.id !== undefined ? { id: m.id } : {}) };
      if (type && META.has(m.channel) && m.channel !== `/meta/${type}`) {
        replies.push({ ...base, successful: false, error: `400::Message type ${m.channel} sent to /${type}` });
        continue;
      }
      if (m.channel === '/meta/handshake') {
        this.handshakes += 1;
        if (!token || this.revoked.has(token)) {
          replies.push({
            ...base,
            successful: false,
            error: '403::Handshake denied',
            advice: { reconnect: 'none' },
            ext: { sfdc: { failureReason: token ? '401::Authentication invalid' : '401::Request requires authentication' } },
          });
          continue;
        }
        if (!m.supportedConnectionTypes?.includes('long-polling')) {
          replies.push({ ...base, successful: false, error: `400::Invalid connection type ${String(m.supportedConnectionTypes)}` });
          continue;
        }
        const client: FakeClient = { id: randomId(27), token, cookie: randomId(16), subscriptions: new Set(), queue: [], held: null };
        this.clientsById.set(client.id, client);
        setCookie = `${FAKE_BAYEUX_COOKIE}=${client.cookie}; Path=/cometd; Secure; HttpOnly`;
        replies.push({
          ...base,
          version: '1.0',
          minimumVersion: '1.0',
          clientId: client.id,
          supportedConnectionTypes: ['long-polling'],
          successful: true,
          advice: { interval: 0, timeout: this.holdMs, reconnect: 'retry' },
          ext: { replay: true },
        });
        continue;
      }

      const client = m.clientId ? this.clientsById.get(m.clientId) : undefined;
      if (!client) {
        replies.push({ ...base, ...(m.clientId ? { clientId: m.clientId } : {}), successful: false, error: '403::Unknown client', advice: { interval: 0, reconnect: 'handshake' } });
        continue;
      }
      const ids = { ...base, clientId: client.id };
      if (cookie === undefined) {
        replies.push({ ...ids, successful: false, error: `400::Client ${client.id} has established a session, but no ${FAKE_BAYEUX_COOKIE} cookie present` });
        continue;
      }
      if (this.revoked.has(token) || token !== client.token) {
        this.clientsById.delete(client.id);
        replies.push({ ...ids, successful: false, error: '401::Authentication invalid', advice: { reconnect: 'none', interval: 0 } });
        continue;
      }

      switch (m.channel) {
        case '/meta/subscribe': {
          const channel = typeof m.subscription === 'string' ? m.subscription : '';
          if (!channel) {
            replies.push({ ...ids, successful: false, error: '400::Channel name not specified' });
          } else if (!channel.startsWith('/')) {
            replies.push({ ...ids, subscription: channel, successful: false, error: "400::Channel subscriptions must start with a leading '/'" });
          } else if (!this.channels.has(channel)) {
            replies.push({ ...ids, subscription: channel, successful: false, error: `400::The channel you requested to subscribe to does not exist {${channel}}` });
          } else {
            const replay = (m.ext?.replay as Record<string, unknown> | undefined)?.[channel];
            const kept = this.retained.get(channel) ?? [];
            if (replay !== undefined && replay !== -1 && replay !== -2 && !(typeof replay === 'number' && kept.some((e) => e.replayId === replay))) {
              replies.push({
                ...ids,
                subscription: channel,
                successful: false,
                error: `400::The replayId {${String(replay)}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.`,
              });
              break;
            }
            client.subscriptions.add(channel);
            if (replay === -2) client.queue.push(...kept.map((e) => e.message));
            else if (typeof replay === 'number' && replay >= 0) client.queue.push(...kept.filter((e) => e.replayId > replay).map((e) => e.message));
            replies.push({ ...ids, subscription: channel, successful: true });
          }
          break;
        }
        case '/meta/unsubscribe': {
          const channel = typeof m.subscription === 'string' ? m.subscription : '';
          client.subscriptions.delete(channel);
          replies.push({ ...ids, subscription: channel, successful: true });
          break;
        }
        case '/meta/disconnect':
          this.clientsById.delete(client.id);
          client.held?.wake('disconnect');
          replies.push({ ...ids, successful: true });
          break;
        case '/meta/connect':
          if (m.connectionType !== 'long-polling') {
            replies.push({ ...ids, successful: false, error: `400::Invalid connection type ${String(m.connectionType)}` });
          } else {
            connect = { message: m, client };
          }
          break;
        default:
          // Clients do not publish to Salesforce over CometD (fake's choice of answer).
          replies.push({ ...ids, successful: false, error: '403::Publish denied' });
      }
    }

    if (connect) replies.push(...(await this.longPoll(connect.client, connect.message, request.signal)));
    return HttpResponse.json(replies, setCookie ? { headers: { 'Set-Cookie': setCookie } } : undefined);
  }

  /** Holds a /meta/connect until an event is waiting, the hold runs out, or the client is dropped; answers events + the connect reply. */
  private async longPoll(client: FakeClient, m: BayeuxMessage, signal: AbortSignal): Promise<BayeuxMessage[]> {
    const base = { channel: '/meta/connect', ...(m.id !== undefined ? { id: m.id } : {}), clientId: client.id };
    const advice = { reconnect: 'retry', interval: 0, timeout: this.holdMs };
    // A connect sent together with other messages (advice.timeout 0) is answered at once, as is one with events waiting.
    const immediate = client.queue.length > 0 || m.advice?.timeout === 0;
    let reason: Wake = 'event';
    if (!immediate) {
      // Only one held connect per client (fake's choice: the previous one is answered).
      client.held?.wake('release');
      reason = await new Promise<Wake>((resolve) => {
        const timer = setTimeout(() => done('timeout'), this.holdMs);
        const onAbort = () => done('abort');
        const done = (why: Wake) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          if (client.held === held) client.held = null;
          resolve(why);
        };
        const held = { wake: done };
        client.held = held;
        signal.addEventListener('abort', onAbort);
      });
    }
    switch (reason) {
      case 'drop':
        return [{ ...base, successful: false, error: '403::Unknown client', advice: { interval: 0, reconnect: 'handshake' } }];
      case 'auth':
        this.clientsById.delete(client.id);
        return [{ ...base, successful: false, error: '401::Authentication invalid', advice: { reconnect: 'none', interval: 0 } }];
      case 'disconnect':
        // The session is gone (fake's choice of answer: success, reconnect none).
        return [{ ...base, successful: true, advice: { reconnect: 'none', interval: 0 } }];
      default: {
        const events = client.queue.splice(0);
        return [...events, { ...base, successful: true, advice }];
      }
    }
  }
}

export function createStreamingFake(opts: StreamingFakeOptions = {}): SalesforceStreamingFake {
  return new SalesforceStreamingFake(opts);
}

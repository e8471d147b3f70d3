// Salesforce streaming as a trigger for an immediate poll: jsforce's CometD client (Faye) subscribed to Change
// Data Capture on Case (and optional extra channels); any event schedules one `onChange` (debounced) and the
// service polls. Events carry no data the service uses: the poll's event ids stay the only ids (exactly once).
//
// One Faye client per CometD session. Whatever ends a session (transport error, no answer in time,
// `403::Unknown client`, a failed handshake or subscribe) tears it down and a new one is started after a
// capped, jittered back-off; after a reconnect `onChange` fires once so the poll covers the gap (no replay ids:
// the poll's checkpoint is the replay). Authentication failures (`401::Authentication invalid` on
// /meta/connect, or `403::Handshake denied` with `ext.sfdc.failureReason` 401) log in again through the
// connection source, once per failure streak. `onError` means streaming has stopped for good (polling goes on).
import { ConnectorError } from '../contract.js';

/** Change Data Capture on Case (Setup › Change Data Capture: select Case; needs View All on Case). */
export const CASE_CHANGE_CHANNEL = '/data/CaseChangeEvent';
/**
 * CaseComment has neither Change Data Capture nor PushTopic support: an org that wants agent replies streamed
 * too publishes this platform event from an after-insert trigger on CaseComment (README › Streaming).
 */
export const COMMENT_EVENT_CHANNEL = '/event/EmailChannel_Comment__e';

/** What streaming needs of a jsforce Connection (`conn.streaming.createClient(extensions)`, a Faye client). */
export interface StreamingConnection {
  accessToken?: string | null | undefined;
  streaming: { createClient(extensions: unknown[]): unknown };
  /** jsforce's session refresh (installed by `login()` or an OAuth2 refresh token; client.ts installs none). */
  _refreshDelegate?: { refresh(since: number): Promise<void> } | null | undefined;
}

/** A connection per session; `fresh` after an authentication failure: log in again. */
export type ConnectionSource = (fresh: boolean) => Promise<StreamingConnection>;

export interface StreamingChannel {
  name: string;
  /** A missing optional channel (`400::… does not exist`, no access) is logged once and skipped. */
  optional?: boolean;
}

export interface StreamingLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
  error(o: object, m?: string): void;
}

export interface SubscribeChangesOptions {
  /** Called (debounced) when Salesforce reports a change, and once after each reconnect. Run a poll. */
  onChange: () => void;
  /** Streaming has stopped for good (authentication or a required channel refused); polling still works. */
  onError: (err: Error) => void;
  logger: StreamingLogger;
  /** Default: Case CDC only. */
  channels?: (string | StreamingChannel)[];
  /** Changes committed by this user (the integration user's own writes) trigger nothing: the poll skips them anyway. */
  ignoreUserId?: string;
  /** A burst within this window triggers one `onChange` (ms, default 500). */
  debounceMs?: number;
  /** Bound on each answer (login, handshake, subscribe, disconnect); a long poll gets the server's advice.timeout on top (ms, default 10 s). */
  timeoutMs?: number;
  /** Reconnect back-off: initial delay, doubled per failure up to the cap, jittered (ms, default 500 → 60 000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A session that stayed up this long resets the back-off (ms, default 60 s). */
  healthyMs?: number;
}

export interface ChangeSubscription {
  close(): Promise<void>;
}

/** The optional instance method the connector adds (the contract's ConnectorInstance will name it). */
export interface StreamingInstance {
  subscribeChanges?(onChange: () => void, onError: (err: Error) => void): Promise<ChangeSubscription>;
}

// ── the parts of Faye used (no typings ship for it; jsforce's own code reaches into `_dispatcher` too) ──
interface BayeuxMessage {
  channel: string;
  successful?: boolean;
  error?: string;
  subscription?: string | string[];
  advice?: { reconnect?: string; interval?: number; timeout?: number };
  ext?: { sfdc?: { failureReason?: string } };
}
type Pass = (message: BayeuxMessage | null) => void;
interface FayeExtension {
  incoming(message: BayeuxMessage, callback: Pass): void;
  outgoing(message: BayeuxMessage, callback: Pass): void;
}
interface FayeEnvelope {
  timer?: ReturnType<typeof setTimeout> | null;
  request?: PromiseLike<unknown> | null;
}
interface FayeClient {
  subscribe(channel: string, listener: (data: unknown) => void): unknown;
  disconnect(): PromiseLike<unknown> | undefined;
  on(event: 'transport:down' | 'transport:up', listener: () => void): unknown;
  _dispatcher?: { _envelopes?: Map<string, FayeEnvelope>; close?(): void };
}

interface Session {
  seq: number;
  client: FayeClient | null;
  /** Torn down: its messages no longer reach Faye, its events are ignored. */
  dead: boolean;
  /** While saying goodbye: /meta/disconnect and its answer still pass. */
  goodbye: boolean;
  /** Ends the goodbye early when the transport fails. */
  transportDown: (() => void) | null;
  pending: Set<string>;
  subscribed: Set<string>;
  ready: boolean;
  readyAt: number;
  adviceTimeoutMs: number;
  setupTimer: ReturnType<typeof setTimeout> | null;
  connectTimer: ReturnType<typeof setTimeout> | null;
}

const SALESFORCE_ADVICE_TIMEOUT_MS = 110_000;
const CHANNEL_REFUSED = /^(?:400|404)::|^403::(?:Restricted channel|Cannot create channel|Subscriber does not have access|User not enabled for streaming|User not allowed|No access on channel)/i;

/** The failure reason of a Bayeux answer: `ext.sfdc.failureReason` (handshake) or `error`. */
function reasonOf(m: BayeuxMessage): string {
  return m.ext?.sfdc?.failureReason ?? m.error ?? 'no reason given';
}

function isAuthFailure(m: BayeuxMessage): boolean {
  return /^401::/.test(m.ext?.sfdc?.failureReason ?? '') || /^401::/.test(m.error ?? '');
}

function same15(a: string, b: string): boolean {
  return a.slice(0, 15) === b.slice(0, 15);
}

/** The user who made the change an event reports: CDC `commitUser`, platform event `CreatedById`, PushTopic sobject fields. */
function authorOf(data: unknown): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const d = data as { payload?: unknown; sobject?: unknown };
  const payload = d.payload && typeof d.payload === 'object' ? (d.payload as Record<string, unknown>) : undefined;
  const header = payload?.ChangeEventHeader && typeof payload.ChangeEventHeader === 'object' ? (payload.ChangeEventHeader as Record<string, unknown>) : undefined;
  const sobject = d.sobject && typeof d.sobject === 'object' ? (d.sobject as Record<string, unknown>) : undefined;
  const user = header?.commitUser ?? payload?.CreatedById ?? sobject?.LastModifiedById ?? sobject?.CreatedById;
  return typeof user === 'string' ? user : undefined;
}

/**
 * Subscribes to the change channels and calls `onChange` (debounced) whenever Salesforce reports a change.
 * `conn` is a jsforce Connection (no re-login: an authentication failure stops streaming with `onError`) or a
 * source of connections (`fresh` = log in again after an authentication failure).
 */
export function subscribeChanges(conn: StreamingConnection | ConnectionSource, opts: SubscribeChangesOptions): ChangeSubscription {
  const source: ConnectionSource =
    typeof conn === 'function'
      ? conn
      : async (fresh) => {
          const refresher = conn._refreshDelegate;
          if (fresh && refresher) {
            try {
              await refresher.refresh(authFailedAt);
            } catch (err) {
              throw new ConnectorError('auth', `Salesforce streaming: session refresh failed (${(err as Error).message})`);
            }
          }
          return conn;
        };
  // A bare Connection can log in again only through jsforce's refresh delegate.
  const canRelogin = typeof conn === 'function' || !!conn._refreshDelegate;
  const channels: StreamingChannel[] = (opts.channels ?? [CASE_CHANGE_CHANNEL]).map((c) => (typeof c === 'string' ? { name: c } : c));
  if (channels.length === 0) throw new Error('subscribeChanges: no channel');
  const debounceMs = opts.debounceMs ?? 500;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const initialMs = opts.backoff?.initialMs ?? 500;
  const maxMs = opts.backoff?.maxMs ?? 60_000;
  const healthyMs = opts.healthyMs ?? 60_000;
  const log = opts.logger;

  let closed = false;
  let stopped = false;
  let current: Session | null = null;
  let seq = 0;
  let attempts = 0;
  let authStreak = 0;
  let authFailedAt = 0;
  let everReady = false;
  let debounceTimer: ReturnType<typeof setTimeout> | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  const boundTimers = new Set<ReturnType<typeof setTimeout>>();
  const warnedOptional = new Set<string>();

  /** Settles with the promise, or rejects after `ms`; the timer is dropped on close(). */
  function bounded<T>(what: string, promise: PromiseLike<T>, ms = timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        boundTimers.delete(timer);
        reject(new ConnectorError('transient', `Salesforce streaming ${what}: no answer within ${ms} ms`));
      }, ms);
      boundTimers.add(timer);
      Promise.resolve(promise).then(
        (v) => {
          clearTimeout(timer);
          boundTimers.delete(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          boundTimers.delete(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  function kick(): void {
    if (closed || stopped || debounceTimer) return;
    debounceTimer = setTimeout(() => {
      debounceTimer = null;
      if (closed || stopped) return;
      try {
        opts.onChange();
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'salesforce streaming: onChange threw');
      }
    }, debounceMs);
  }

  function clearSessionTimers(s: Session): void {
    if (s.setupTimer) clearTimeout(s.setupTimer);
    if (s.connectTimer) clearTimeout(s.connectTimer);
    s.setupTimer = s.connectTimer = null;
  }

  /** Stops Faye's own machinery: pending answers' timers and in-flight requests (the long poll) are dropped. */
  function abortInFlight(client: FayeClient): void {
    const dispatcher = client._dispatcher;
    const envelopes = dispatcher?._envelopes;
    if (envelopes) {
      for (const envelope of envelopes.values()) {
        if (envelope.timer) clearTimeout(envelope.timer);
        envelope.timer = null;
        const request = envelope.request;
        envelope.request = null;
        request?.then(
          (req) => {
            const r = req as { destroy?: () => void; abort?: () => void } | null | undefined;
            if (r?.destroy) r.destroy();
            else r?.abort?.();
          },
          () => {},
        );
      }
      envelopes.clear();
    }
    try {
      dispatcher?.close?.();
    } catch {
      // already closed
    }
  }

  /** Tears a session down; with `goodbye`, tells Salesforce first (/meta/disconnect, bounded). */
  async function teardown(s: Session, goodbye: boolean): Promise<void> {
    if (s.dead) return;
    s.dead = true;
    clearSessionTimers(s);
    const client = s.client;
    if (!client) return;
    if (goodbye && s.ready) {
      s.goodbye = true;
      try {
        const bye = client.disconnect();
        const down = new Promise<void>((resolve) => {
          s.transportDown = resolve;
        });
        if (bye) await bounded('disconnect', Promise.race([Promise.resolve(bye), down]), Math.min(timeoutMs, 5_000));
      } catch {
        // gone anyway
      }
      s.goodbye = false;
      s.transportDown = null;
    }
    abortInFlight(client);
  }

  function stop(err: Error): void {
    if (stopped || closed) return;
    stopped = true;
    if (retryTimer) clearTimeout(retryTimer);
    if (debounceTimer) clearTimeout(debounceTimer);
    retryTimer = debounceTimer = null;
    const s = current;
    current = null;
    if (s) void teardown(s, false);
    log.error({ err: err.message }, 'salesforce streaming stopped; changes arrive by polling only');
    try {
      opts.onError(err);
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'salesforce streaming: onError threw');
    }
  }

  function retry(fresh: boolean): void {
    if (closed || stopped || retryTimer) return;
    attempts += 1;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempts - 1, 30));
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void start(fresh);
    }, delay);
  }

  /** A session ended on a transient failure: reconnect after the back-off. */
  function lost(s: Session, why: string): void {
    if (s.dead || s !== current) return;
    log.warn({ reason: why, attempt: attempts + 1 }, 'salesforce streaming: session lost, reconnecting');
    void teardown(s, false);
    retry(false);
  }

  function authFailed(s: Session, why: string): void {
    if (s.dead || s !== current) return;
    void teardown(s, false);
    authStreak += 1;
    authFailedAt = Date.now();
    if (!canRelogin || authStreak > 1) {
      stop(new ConnectorError('auth', `Salesforce streaming: authentication refused (${why})`));
      return;
    }
    log.warn({ reason: why }, 'salesforce streaming: authentication refused, logging in again');
    retry(true);
  }

  function channelRefused(s: Session, channel: string, why: string): void {
    const spec = channels.find((c) => c.name === channel);
    if (!spec?.optional) {
      stop(new ConnectorError('permanent', `Salesforce streaming: cannot subscribe to ${channel} (${why})`));
      return;
    }
    if (!warnedOptional.has(channel)) {
      warnedOptional.add(channel);
      log.warn({ channel, reason: why }, 'salesforce streaming: optional channel refused, skipped');
    }
    s.pending.delete(channel);
    maybeReady(s);
  }

  function maybeReady(s: Session): void {
    if (s.ready || s.dead || s.pending.size > 0) return;
    if (s.subscribed.size === 0) {
      stop(new ConnectorError('permanent', 'Salesforce streaming: no channel could be subscribed'));
      return;
    }
    s.ready = true;
    s.readyAt = Date.now();
    authStreak = 0;
    if (s.setupTimer) clearTimeout(s.setupTimer);
    s.setupTimer = null;
    log.info({ channels: [...s.subscribed], session: s.seq }, 'salesforce streaming: subscribed');
    // After a reconnect the poll covers whatever changed while no session was listening.
    if (everReady) kick();
    everReady = true;
  }

  function incoming(s: Session, m: BayeuxMessage, pass: Pass): void {
    if (s.dead) {
      pass(s.goodbye && m.channel === '/meta/disconnect' ? m : null);
      return;
    }
    switch (m.channel) {
      case '/meta/handshake':
        if (!m.successful) {
          pass(null);
          if (isAuthFailure(m)) authFailed(s, reasonOf(m));
          else lost(s, `handshake refused: ${reasonOf(m)}`);
          return;
        }
        break;
      case '/meta/connect':
        if (s.connectTimer) clearTimeout(s.connectTimer);
        s.connectTimer = null;
        if (typeof m.advice?.timeout === 'number' && m.advice.timeout > 0) s.adviceTimeoutMs = m.advice.timeout;
        if (!m.successful || m.advice?.reconnect === 'none' || m.advice?.reconnect === 'handshake') {
          // Faye would follow the advice on its own schedule; the session is replaced instead.
          pass(null);
          if (isAuthFailure(m)) authFailed(s, reasonOf(m));
          else lost(s, `connect: ${m.successful ? `advice ${m.advice?.reconnect}` : reasonOf(m)}`);
          return;
        }
        if (s.ready && Date.now() - s.readyAt >= healthyMs) attempts = 0;
        break;
      case '/meta/subscribe': {
        const subs = ([] as string[]).concat(m.subscription ?? []);
        if (!m.successful) {
          pass(null);
          if (isAuthFailure(m)) authFailed(s, reasonOf(m));
          else if (CHANNEL_REFUSED.test(m.error ?? '') && subs[0]) channelRefused(s, subs[0], reasonOf(m));
          else lost(s, `subscribe: ${reasonOf(m)}`);
          return;
        }
        for (const c of subs) {
          s.pending.delete(c);
          s.subscribed.add(c);
        }
        pass(m);
        maybeReady(s);
        return;
      }
    }
    pass(m);
  }

  function outgoing(s: Session, m: BayeuxMessage, pass: Pass): void {
    if (s.dead) {
      pass(s.goodbye && m.channel === '/meta/disconnect' ? m : null);
      return;
    }
    if (m.channel === '/meta/connect') {
      // A long poll is held up to the server's advice.timeout: bound it by that plus the call timeout.
      if (s.connectTimer) clearTimeout(s.connectTimer);
      s.connectTimer = setTimeout(() => lost(s, `no answer to /meta/connect within ${s.adviceTimeoutMs + timeoutMs} ms`), s.adviceTimeoutMs + timeoutMs);
    }
    pass(m);
  }

  async function start(fresh: boolean): Promise<void> {
    if (closed || stopped) return;
    let connection: StreamingConnection;
    try {
      connection = await bounded('login', source(fresh));
    } catch (err) {
      if (closed || stopped) return;
      if (err instanceof ConnectorError && (err.kind === 'auth' || err.kind === 'permanent')) {
        stop(err);
        return;
      }
      log.warn({ err: (err as Error).message, attempt: attempts + 1 }, 'salesforce streaming: no session, retrying');
      retry(fresh);
      return;
    }
    if (closed || stopped) return;
    seq += 1;
    const s: Session = {
      seq,
      client: null,
      dead: false,
      goodbye: false,
      transportDown: null,
      pending: new Set(channels.map((c) => c.name)),
      subscribed: new Set(),
      ready: false,
      readyAt: 0,
      adviceTimeoutMs: SALESFORCE_ADVICE_TIMEOUT_MS,
      setupTimer: null,
      connectTimer: null,
    };
    current = s;
    const extension: FayeExtension = {
      incoming: (m, pass) => incoming(s, m, pass),
      outgoing: (m, pass) => outgoing(s, m, pass),
    };
    try {
      s.client = connection.streaming.createClient([extension]) as FayeClient;
      s.client.on('transport:down', () => {
        if (s.transportDown) s.transportDown();
        lost(s, 'transport down (network error or no answer)');
      });
      s.setupTimer = setTimeout(() => lost(s, `handshake/subscribe: no answer within ${timeoutMs} ms`), timeoutMs);
      for (const channel of channels) {
        s.client.subscribe(channel.name, (data: unknown) => {
          if (s.dead) return;
          const author = authorOf(data);
          if (opts.ignoreUserId && author && same15(author, opts.ignoreUserId)) return;
          kick();
        });
      }
    } catch (err) {
      lost(s, `client: ${(err as Error).message}`);
    }
  }

  void start(false);

  return {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (debounceTimer) clearTimeout(debounceTimer);
      if (retryTimer) clearTimeout(retryTimer);
      debounceTimer = retryTimer = null;
      const s = current;
      current = null;
      if (s) await teardown(s, true);
      for (const t of boundTimers) clearTimeout(t);
      boundTimers.clear();
    },
  };
}

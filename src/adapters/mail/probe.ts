// Mail server checks for email accounts (R-ACC-4): IMAP login (imapflow), SMTP auth (nodemailer), INBOX baseline; errors classified into states.
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import nodemailer from 'nodemailer';
import type { AccountState, MailboxBaseline, ProbeResult, ServerEndpoint } from '../../core/account.js';
import type { Logger } from '../../core/ports.js';

export type { MailboxBaseline, ProbeResult };

export interface MailProbeAdapter {
  checkImap(endpoint: ServerEndpoint, username: string, password: string): Promise<ProbeResult>;
  checkSmtp(endpoint: ServerEndpoint, username: string, password: string): Promise<ProbeResult>;
  baseline(endpoint: ServerEndpoint, username: string, password: string): Promise<MailboxBaseline | null>;
}

export interface MailProbeOptions {
  /** Upper bound of one check, connection included (default and maximum 15 s). */
  timeoutMs?: number;
  logger?: Logger;
}

/** Error fields the two libraries and Node's socket layer set. */
interface MailErrorLike {
  message?: unknown;
  code?: unknown;
  originalCode?: unknown;
  responseCode?: unknown;
  response?: unknown;
  responseText?: unknown;
  serverResponseCode?: unknown;
  authenticationFailed?: unknown;
  tlsFailed?: unknown;
  reason?: unknown;
  cause?: unknown;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EDNS', 'EADDRNOTAVAIL']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ETIMEOUT', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'SOCKET_TIMEOUT', 'ESOCKETTIMEDOUT']);
const TLS_CODES = new Set([
  'ETLS',
  'EREQUIRETLS',
  'STARTTLS_INJECTION',
  'ClosedAfterConnectTLS',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);
/** SMTP replies that mean "these credentials were refused" (RFC 4954). */
const SMTP_AUTH_REPLIES = new Set([454, 530, 534, 535, 538]);

/** The most useful human text of an error: the server's own reply when there is one. */
function messageOf(e: MailErrorLike): string {
  const parts = [str(e.responseText) || str(e.message) || 'unknown error'];
  const response = str(e.response);
  if (response && !parts[0]!.includes(response)) parts.push(response);
  const text = parts.join(': ').replace(/[\r\n\0]+/g, ' ').trim();
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

/**
 * Pure: which account state an IMAP/SMTP/socket error means. Authentication first (a 535 is never
 * "unreachable"), then TLS, timeouts, network; anything else is a protocol error. The message keeps the
 * server's own words.
 */
export function classifyMailError(err: unknown): ProbeResult {
  if (typeof err !== 'object' || err === null) return { state: 'protocol_error', error: String(err ?? 'unknown error') };
  const e = err as MailErrorLike;
  const cause = typeof e.cause === 'object' && e.cause !== null ? (e.cause as MailErrorLike) : undefined;
  const codes = [str(e.code), str(e.originalCode), str(cause?.code)].filter(Boolean);
  const message = messageOf(e);
  const lower = `${message} ${str(cause?.message)}`.toLowerCase();
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;

  const authFailed =
    e.authenticationFailed === true ||
    /^AUTHENTICATIONFAILED$|^AUTHORIZATIONFAILED$/i.test(str(e.serverResponseCode)) ||
    (codes.includes('EAUTH') && (responseCode === undefined || SMTP_AUTH_REPLIES.has(responseCode))) ||
    (responseCode !== undefined && (responseCode === 535 || responseCode === 534));
  if (authFailed) return { state: 'auth_failed', error: message };

  const tls =
    e.tlsFailed === true ||
    codes.some((c) => TLS_CODES.has(c) || c.startsWith('ERR_SSL_') || c.startsWith('ERR_TLS_') || c.includes('CERT')) ||
    /\b(?:ssl|tls|certificate|self[- ]signed|wrong version number|handshake)\b/.test(lower);
  if (tls) return { state: 'tls_error', error: message };

  if (codes.some((c) => TIMEOUT_CODES.has(c)) || /\btimed? ?out\b|\btimeout\b/.test(lower)) return { state: 'timeout', error: message };

  if (codes.some((c) => UNREACHABLE_CODES.has(c)) || /\b(?:econnrefused|enotfound|ehostunreach|enetunreach|eai_again)\b/.test(lower)) {
    return { state: 'unreachable', error: message };
  }
  return { state: 'protocol_error', error: message };
}

/** imapflow's `doSTARTTLS`: true = required, undefined = when offered, false = never. Ignored with `secure`. */
export function imapTlsOptions(endpoint: ServerEndpoint): Pick<ImapFlowOptions, 'secure' | 'doSTARTTLS'> {
  if (endpoint.secure) return { secure: true };
  if (endpoint.starttls === 'required') return { secure: false, doSTARTTLS: true };
  if (endpoint.starttls === 'off') return { secure: false, doSTARTTLS: false };
  return { secure: false };
}

/** nodemailer: `requireTLS` when STARTTLS is required, `ignoreTLS` when off; with `secure`, TLS from the first byte. */
export function smtpTlsOptions(endpoint: ServerEndpoint): { secure: boolean; requireTLS?: boolean; ignoreTLS?: boolean } {
  if (endpoint.secure) return { secure: true };
  if (endpoint.starttls === 'required') return { secure: false, requireTLS: true };
  if (endpoint.starttls === 'off') return { secure: false, ignoreTLS: true };
  return { secure: false };
}

class DeadlineError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/** Runs `work`, rejecting after `ms` (and calling `abort` so the socket is not left behind). */
async function withDeadline<T>(ms: number, work: Promise<T>, abort: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort();
      reject(new DeadlineError(ms));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function createMailProbe(opts: MailProbeOptions = {}): MailProbeAdapter {
  const timeoutMs = Math.min(Math.max(opts.timeoutMs ?? 15_000, 100), 15_000);
  const log = opts.logger;

  const imapClient = (endpoint: ServerEndpoint, username: string, password: string, verifyOnly: boolean): ImapFlow => {
    const client = new ImapFlow({
      host: endpoint.host,
      port: endpoint.port,
      ...imapTlsOptions(endpoint),
      auth: { user: username, pass: password },
      logger: false,
      verifyOnly,
      disableAutoIdle: true,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      clientInfo: { name: 'email-channel' },
    });
    // A socket error after connect() settled must not become an unhandled 'error' event.
    client.on('error', (err: unknown) => log?.debug({ host: endpoint.host, err: (err as Error)?.message }, 'imap probe connection error'));
    return client;
  };

  const closeQuietly = (client: ImapFlow) => {
    try {
      client.close();
    } catch {
      // already closed
    }
  };

  return {
    async checkImap(endpoint, username, password) {
      const client = imapClient(endpoint, username, password, true);
      try {
        // verifyOnly: connect() logs in and logs out again.
        await withDeadline(timeoutMs, client.connect(), () => closeQuietly(client));
        return { state: 'connected', error: null };
      } catch (err) {
        const result = classifyMailError(err);
        log?.info({ host: endpoint.host, port: endpoint.port, state: result.state, error: result.error }, 'imap check failed');
        return result;
      } finally {
        closeQuietly(client);
      }
    },

    async checkSmtp(endpoint, username, password) {
      const transport = nodemailer.createTransport({
        host: endpoint.host,
        port: endpoint.port,
        ...smtpTlsOptions(endpoint),
        auth: { user: username, pass: password },
        // Checking the credentials is the point: a server that offers no AUTH is reported, not passed.
        forceAuth: true,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
        dnsTimeout: timeoutMs,
        logger: false,
        debug: false,
      });
      try {
        await withDeadline(timeoutMs, transport.verify(), () => transport.close());
        return { state: 'connected', error: null };
      } catch (err) {
        const result = classifyMailError(err);
        log?.info({ host: endpoint.host, port: endpoint.port, state: result.state, error: result.error }, 'smtp check failed');
        return result;
      } finally {
        transport.close();
      }
    },

    async baseline(endpoint, username, password) {
      const client = imapClient(endpoint, username, password, false);
      try {
        return await withDeadline(
          timeoutMs,
          (async () => {
            await client.connect();
            const box = await client.mailboxOpen('INBOX', { readOnly: true });
            const baseline: MailboxBaseline = { uidValidity: String(box.uidValidity), uidNext: Number(box.uidNext) };
            await client.logout();
            return baseline;
          })(),
          () => closeQuietly(client),
        );
      } catch (err) {
        log?.info({ host: endpoint.host, err: classifyMailError(err).error }, 'could not read the INBOX baseline');
        return null;
      } finally {
        closeQuietly(client);
      }
    },
  };
}

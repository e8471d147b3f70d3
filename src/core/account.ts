// Email accounts (R-ACC-1..4): one support mailbox, read over IMAP and/or written through over SMTP.

export type TlsMode = 'auto' | 'required' | 'off';

export interface ServerEndpoint {
  host: string;
  port: number;
  /** TLS from the first byte (IMAPS 993, SMTPS 465). Otherwise STARTTLS per `starttls`. */
  secure: boolean;
  starttls: TlsMode;
}

export type AccountState =
  | 'pending'
  | 'connected'
  | 'idle'
  | 'auth_failed'
  | 'unreachable'
  | 'tls_error'
  | 'timeout'
  | 'protocol_error'
  | 'disabled';

export interface AccountStatus {
  /** Overall: valid when the last check of every server it uses succeeded. */
  valid: boolean;
  imap: { state: AccountState; error: string | null; checkedAt: string | null } | null;
  smtp: { state: AccountState; error: string | null; checkedAt: string | null };
  /** Progress of `importSince`, when one was asked for. */
  import?: { done: number; total: number; finished: boolean } | null;
}

/** The stored account. `password` is sealed (SecretBox) and never leaves the service. */
export interface Account {
  id: string;
  service: 'generic_imap';
  username: string;
  address: string;
  aliases: string[];
  imap: ServerEndpoint | null;
  smtp: ServerEndpoint;
  auth: { type: 'password'; password: { sealed: string } | null };
  outboundOnly: boolean;
  /** How processed mail is marked in the customer's mailbox: `\\Seen`, or a keyword. Never deleted. */
  markAs: { type: 'seen' } | { type: 'keyword'; keyword: string } | { type: 'none' };
  /** Import mail received since this date (ISO) as `imported` sessions; null = only new mail. */
  importSince: string | null;
  status: AccountStatus;
  createdAt: string;
  updatedAt: string;
  rev: number;
}

/** Outcome of one server check: `connected`, or the failure state with the server's own message. */
export interface ProbeResult {
  state: AccountState;
  error: string | null;
}

/** INBOX position when the account was saved: only mail after it is ingested. */
export interface MailboxBaseline {
  uidValidity: string;
  uidNext: number;
}

/** Checks a mailbox's servers. Implementations never throw for a server's failure and give up within 15 s. */
export interface MailProbe {
  checkImap(endpoint: ServerEndpoint, username: string, password: string): Promise<ProbeResult>;
  checkSmtp(endpoint: ServerEndpoint, username: string, password: string): Promise<ProbeResult>;
  /** Logs in, opens INBOX read-only and reads UIDVALIDITY/UIDNEXT; null when it cannot. */
  baseline?(endpoint: ServerEndpoint, username: string, password: string): Promise<MailboxBaseline | null>;
}

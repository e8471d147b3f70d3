// What the service needs from a CRM record system (R-CON-1), in the service's own terms. The connector
// contract (connectors/contract.ts) re-exports these; the use cases (src/app) depend on them through here.
import type { SessionStatus } from './session/model.js';

/** Stable error kinds; every CRM error is classified into one by a pure function of the connector. */
export type ConnectorErrorKind = 'auth' | 'rate_limited' | 'not_found' | 'conflict' | 'transient' | 'permanent';

export class ConnectorError extends Error {
  constructor(
    readonly kind: ConnectorErrorKind,
    message: string,
    /** For `rate_limited` (and sometimes `transient`): wait this long before retrying (ms). */
    readonly retryAfterMs?: number,
    /** HTTP status of the CRM answer, when there was one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }

  /** Whether a retry (after `retryAfterMs` or a backoff) can succeed. */
  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'transient';
  }
}

export interface Person {
  email: string;
  name?: string;
}

/** A file to attach: the bytes travel with the call (uploads are the connector's business). */
export interface FileRef {
  filename: string;
  contentType: string;
  bytes: Uint8Array;
}

/**
 * Everything the service knows about where a record belongs. `externalId` is the idempotency key:
 * creating twice with the same one (a retry after a timeout, a replay after a crash) yields one record.
 */
export interface CreateRecordInput {
  /** Deterministic: derived from the session id (e.g. `ec:S7K2M9QX4TB`). */
  externalId: string;
  sessionId: string;
  subject: string;
  requester: Person;
  /** First message, as the comment the record starts with (already stripped/sanitized per policy). */
  firstComment: { bodyText: string; bodyHtml?: string; public: boolean; author?: Person; attachments?: FileRef[] } | null;
  status: SessionStatus;
  /** Queue → CRM group/owner/queue (as mapped in the connector's config). */
  queue: { id: string; name: string } | null;
  assignee: { agentId: string; email: string } | null;
  /** Extra custom field values, by CRM field key (session id and status are set by the connector itself). */
  customFields?: Record<string, string | number | boolean | null>;
  /** When the previous record of this session is closed for good: create a follow-up of it. */
  followUpOf?: string;
}

export interface RecordRef {
  /** The CRM's id of the record (ticket id, case id). */
  id: string;
  url?: string;
}

export interface AddCommentInput {
  recordId: string;
  /** Idempotency key of this comment (e.g. `ec:<sessionId>:comment:<messageInternalId>`). */
  externalId: string;
  bodyText: string;
  bodyHtml?: string;
  public: boolean;
  author?: Person;
  attachments?: FileRef[];
}

/** An event coming from the CRM (webhook or poll), already verified, in the service's terms. */
export type CrmEvent =
  | { type: 'status_changed'; recordId: string; status: SessionStatus; at: number; eventId: string }
  | { type: 'assignee_changed'; recordId: string; assigneeEmail: string | null; at: number; eventId: string }
  | { type: 'agent_reply'; recordId: string; bodyText: string; bodyHtml?: string; authorEmail: string; at: number; eventId: string; attachments?: { filename: string; url: string; contentType?: string }[] };

export interface IncomingRequest {
  headers: Record<string, string>;
  /** The raw body, exactly as received (signatures are computed over it). */
  body: string;
  receivedAt: number;
}

export interface CrmAgent {
  crmId: string;
  email: string;
  name: string;
  online?: boolean;
}

/** What a connector instance can do. Optional operations are absent when the CRM has no such thing. */
export interface ConnectorInstance {
  /** Checks the credentials (POST /api/connector/test): resolves, or throws a ConnectorError. */
  test(): Promise<{ ok: true; account?: string }>;
  createRecord(input: CreateRecordInput): Promise<RecordRef>;
  /** Finds a record by the external id given at creation (idempotency after a crash). */
  findByExternalId(externalId: string): Promise<RecordRef | null>;
  addComment(input: AddCommentInput): Promise<{ id: string }>;
  /** Attaches a file to the record (PDF transcript, metadata JSON), idempotent by `externalId`. */
  attachFile(recordId: string, file: FileRef & { externalId: string }): Promise<{ id: string }>;
  setStatus(recordId: string, status: SessionStatus): Promise<void>;
  setAssignee(recordId: string, assignee: { email: string } | null): Promise<void>;
  /** Moves the record to the CRM group/queue mapped from a service queue (transfer). */
  setQueue?(recordId: string, queue: { id: string; name: string }): Promise<void>;
  listAgents?(cursor?: string): Promise<{ agents: CrmAgent[]; nextCursor: string | null }>;
  /** Verifies a webhook (signature, timestamp window) and maps it to events; throws ConnectorError('auth') when unsigned or forged. */
  parseWebhook?(request: IncomingRequest): Promise<CrmEvent[]>;
  /** Polls CRM changes since a checkpoint (CRMs without webhooks). */
  pollEvents?(since: string | null): Promise<{ events: CrmEvent[]; checkpoint: string }>;
  /**
   * Streaming connectors: calls `onChange` soon after the CRM changes (debounced), so the service polls at once
   * instead of at the next interval; `onError` means streaming stopped for good (polling carries on).
   */
  subscribeChanges?(onChange: () => void, onError: (err: Error) => void): Promise<{ close(): Promise<void> }>;
}

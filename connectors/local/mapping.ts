// Pure mappings of the local connector: session status ⇄ local record status, record shapes, error classification.
import { ConnectorError, type CrmEvent, type Person, type SessionStatus } from '../contract.js';

/** The local CRM's own status vocabulary (a ticket's life, as helpdesks name it). */
export const LOCAL_STATUSES = ['new', 'open', 'pending', 'solved', 'closed'] as const;
export type LocalStatus = (typeof LOCAL_STATUSES)[number];

export const localStatusMap: Record<SessionStatus, LocalStatus> = {
  unopened: 'new',
  active: 'open',
  paused: 'pending',
  resolved: 'solved',
  closed: 'closed',
  reopened: 'open',
};

export function isLocalStatus(value: unknown): value is LocalStatus {
  return typeof value === 'string' && (LOCAL_STATUSES as readonly string[]).includes(value);
}

/**
 * A local status change made outside the connector, in session terms. `open` after `solved`/`closed` is a
 * reopening; otherwise the inverse of localStatusMap.
 */
export function toSessionStatus(next: LocalStatus, previous: LocalStatus | null): SessionStatus {
  switch (next) {
    case 'new':
      return 'unopened';
    case 'open':
      return previous === 'solved' || previous === 'closed' ? 'reopened' : 'active';
    case 'pending':
      return 'paused';
    case 'solved':
      return 'resolved';
    case 'closed':
      return 'closed';
  }
}

export interface LocalComment {
  id: string;
  externalId: string;
  body: string;
  html?: string;
  public: boolean;
  author?: Person;
  at: number;
}

export interface LocalFile {
  id: string;
  externalId: string;
  filename: string;
  contentType: string;
  size: number;
  at: number;
}

/** A local record, stored whole under `rec:<id>` (the bytes of its files under `file:<id>:<fileId>`). */
export interface LocalRecord {
  kind: 'record';
  id: string;
  externalId: string;
  sessionId: string;
  subject: string;
  requester: Person;
  status: LocalStatus;
  assigneeEmail: string | null;
  queue: { id: string; name: string } | null;
  comments: LocalComment[];
  files: LocalFile[];
  tags: string[];
  customFields: Record<string, string | number | boolean | null>;
  followUpOf: string | null;
  createdAt: number;
  updatedAt: number;
}

/** An id claimed by createRecord before the record is written (a crash in between is completed on retry). */
export interface LocalReservation {
  kind: 'reservation';
  id: string;
  externalId: string;
  at: number;
}

/** An id whose reservation lost the race for its external id to another writer; never reused. */
export interface LocalVoid {
  kind: 'void';
  id: string;
}

export type LocalRecordSlot = LocalRecord | LocalReservation | LocalVoid;

export function isLocalRecord(value: unknown): value is LocalRecord {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'record';
}

export function isLocalReservation(value: unknown): value is LocalReservation {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'reservation';
}

const EVENT_TYPES: readonly string[] = ['status_changed', 'assignee_changed', 'agent_reply'] satisfies CrmEvent['type'][];

/** A change-log entry as the local connector wrote it. */
export function isCrmEvent(value: unknown): value is CrmEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { type?: unknown; recordId?: unknown; eventId?: unknown; at?: unknown };
  return typeof v.type === 'string' && EVENT_TYPES.includes(v.type) && typeof v.recordId === 'string' && typeof v.eventId === 'string' && typeof v.at === 'number';
}

/** Local record ids are `L-<n>`. */
export const recordId = (n: number): string => `L-${n}`;

/** Every failure of the lent storage is the store being unreachable: retry later. */
export function classifyStorageError(err: unknown, op: string): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConnectorError('transient', `local connector: storage failed during ${op}: ${message}`);
}

// The CRM connector contract (R-CON-1): the only module connectors import. A connector turns sessions
// into CRM records (ticket, case…) and CRM events back into session events. Built-ins: local, zendesk,
// salesforce. An integrator adds one folder, one registry entry and passes the kit (connectors/kit).
import type { z } from 'zod';
import type { SessionStatus } from '../src/core/session/model.js';

export type { SessionStatus };

export {
  ConnectorError,
  type ConnectorErrorKind,
  type Person,
  type FileRef,
  type CreateRecordInput,
  type RecordRef,
  type AddCommentInput,
  type CrmEvent,
  type IncomingRequest,
  type CrmAgent,
  type ConnectorInstance,
} from '../src/core/crm.js';
import type { ConnectorInstance } from '../src/core/crm.js';

export interface ConnectorCapabilities {
  comments: boolean;
  attachments: boolean;
  statusSync: 'both' | 'to_crm' | 'none';
  assignee: boolean;
  agents: boolean;
  presence: boolean;
  webhooks: boolean;
  polling: boolean;
  /** Pushes change notifications (subscribeChanges) that trigger an immediate poll; event ids stay the poll's. */
  streaming: boolean;
  followUps: boolean;
}

/**
 * Namespaced key-value storage the service lends a connector; the local connector keeps its records
 * there. Keys are relative to the connector's namespace; values are JSON-serialisable. Every method may
 * throw when the store is unreachable (classify that as `transient`).
 */
export interface ConnectorStorage {
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
  /** Writes only when the key is absent, atomically; true when this call wrote it. */
  putIfAbsent(key: string, value: unknown): Promise<boolean>;
  /** Values of the keys starting with `prefix`, in key order, at most `limit`. */
  list(prefix: string, limit: number): Promise<unknown[]>;
}

/** What the service hands a connector when it creates an instance. */
export interface ConnectorContext<C> {
  config: C;
  /** Bound on every CRM call (ms). */
  timeoutMs: number;
  /** Refuses hosts that resolve to private addresses (R-REL-4) unless allowed. */
  checkHost(host: string, field: string): Promise<void>;
  log: { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
  now(): number;
  /** Optional fetch to use (tests pass the real one; msw intercepts it). */
  fetch?: typeof fetch;
  /** Namespaced key-value storage the service lends a connector; the local connector keeps its records there. */
  storage?: ConnectorStorage;
}

export interface ConnectorDefinition<S extends z.ZodType = z.ZodType> {
  id: string;
  name: string;
  /** Validates `settings.connector.config` (400 with field paths otherwise). */
  configSchema: S;
  /** Config fields that are secrets: write-only, sealed at rest (`<field>Set` in GET). */
  secretFields: string[];
  capabilities: ConnectorCapabilities;
  /** Session status → CRM status value (documented; configurable where the CRM allows). */
  statusMap: Record<SessionStatus, string>;
  create(ctx: ConnectorContext<z.output<S>>): ConnectorInstance;
}

/** Typed helper: infers the config type from the schema, no casts in the connector. */
export function defineConnector<S extends z.ZodType>(def: ConnectorDefinition<S>): ConnectorDefinition<S> {
  if (!/^[a-z][a-z0-9_-]{1,31}$/.test(def.id)) throw new Error(`connector id "${def.id}" must be lowercase letters, digits, - or _`);
  return def;
}

/** The marker every record carries so the CRM's own requester notifications skip it (the service mails the customer). */
export const RECORD_MARKER = 'email_channel';

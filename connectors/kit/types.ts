// The conformance kit's interface (R-CON-2): what a connector's fake must offer so the shared suite can
// drive it. Every built-in connector runs `runConnectorContract` (connectors/kit/run-contract.ts).
import type { RequestHandler } from 'msw';
import type { ConnectorDefinition, ConnectorStorage, CreateRecordInput, CrmEvent, IncomingRequest } from '../contract.js';

export type InjectedFailure =
  | { status: 429; retryAfterSeconds: number }
  | { status: 500 | 502 | 503 }
  | { status: 401 }
  /** Drops the connection (network error). */
  | { network: true };

/** A faithful fake of the CRM's HTTP API (msw handlers), with controls the kit uses. */
export interface ConnectorFake {
  /** msw handlers for the CRM's public API paths, bodies, status codes, rate-limit headers, pagination, error shapes. */
  handlers: RequestHandler[];
  /** Forget all state (records, comments, files, agents, injected failures). */
  reset(): void;
  /** The next `times` (default 1) API requests fail as the CRM would answer them. */
  injectFailure(failure: InjectedFailure, opts?: { times?: number }): void;
  /** How many records carry this external id (idempotency: must stay 1 after retries). */
  countRecords(externalId: string): number;
  /** Comments on a record (idempotency of comments). */
  comments(recordId: string): { body: string; public: boolean }[];
  /** Files attached to a record. */
  files(recordId: string): { filename: string; size: number }[];
  /**
   * The record's status in the CRM's own vocabulary, and its assignee's email. The optional members are
   * checked by the kit when the fake reports them: `tags` (where RECORD_MARKER shows), `queue` (the CRM
   * group/queue, as the fake names it), `requesterEmail`, `customFields` (by CRM field key).
   */
  record(recordId: string):
    | { status: string; assigneeEmail: string | null; tags?: string[]; queue?: string | null; requesterEmail?: string; customFields?: Record<string, unknown> }
    | undefined;
  /** Seed this many agents (pagination of listAgents). */
  seedAgents(n: number): void;
  /** API requests served so far (for call counting in benchmarks). */
  requestCount(): number;
  /** A correctly signed incoming webhook for this event, and a forged one (for parseWebhook). */
  webhook?(event: CrmEvent, opts?: { forged?: boolean; unsigned?: boolean }): IncomingRequest;
  /** Simulates an agent changing the record in the CRM (for polling connectors). The kit awaits it, so it may return a promise. */
  crmChange?(recordId: string, change: { status?: string; assigneeEmail?: string | null; publicReply?: string }): void;
  /** For a connector with no HTTP API (local): the storage the kit lends the instance as `ctx.storage`; injectFailure makes it throw. */
  storage?: ConnectorStorage;
}

export interface ContractSkip {
  /** The exact test title in the kit. */
  test: string;
  /** Why this connector cannot do it (shown in the test output). */
  reason: string;
}

export interface ContractOptions {
  name: string;
  definition: ConnectorDefinition;
  /** A valid config pointing at the fake (e.g. base URL of the fake API). */
  config: unknown;
  /** A config whose credentials the fake refuses (401). */
  badConfig: unknown;
  /** Builds the fake; a connector with no HTTP API (local) gets one with no handlers and a `storage`. */
  fake: () => ConnectorFake;
  skip?: ContractSkip[];
  /** An agent the fake knows after reset() (assignee in createRecord / setAssignee). Default KIT_AGENT_EMAIL. */
  agentEmail?: string;
  /** Custom field values valid in the fake CRM, passed to createRecord and checked in `record().customFields`. */
  customFields?: CreateRecordInput['customFields'];
  /** A well-formed record id that does not exist in the fake (not_found). Default '999999999'. */
  missingRecordId?: string;
}

/** The agent the kit assigns records to unless ContractOptions.agentEmail says otherwise. */
export const KIT_AGENT_EMAIL = 'agent1@example.com';

// The one documented list of store keys and index names: prefix, value shape, TTL and owner (DESIGN habit 7; pure, so app and adapters share it).
//
// Every key the service writes to the Store is built by a function in this file, and listed in STORE_KEYS.
// To add one: add a builder below, a row to STORE_KEYS (pattern, shape, TTL, owner), and use the builder.
// Keys are logical: the backend adds its own prefix (SQLite row `ec:<key>`, Redis `<keyPrefix>ec::<key>`,
// index `<keyPrefix>ec:idx::<name>`; see document-format.ts and redis-store.ts).
//
// | key / pattern                 | value shape                                              | TTL       | owner                                  |
// |-------------------------------|----------------------------------------------------------|-----------|----------------------------------------|
// | settings                      | Settings (nested object, src/config/settings.ts)         | none      | app/settings-service.ts                |
// | meta:schemaVersion            | number (positive integer)                                | none      | adapters/store/migrations.ts           |
// | meta:migrationLock            | { owner: string, at: number }                            | 5 min     | adapters/store/migrations.ts           |
// | upload:<id>                   | UploadMeta { id, filename, contentType, size, sha256, createdAt } | 7 days | app/uploads-service.ts          |
// | blob:upload:<id>              | blob manifest { size, chunks, contentType? }             | 7 days    | adapters/blob/store-blob-store.ts      |
// | blob:upload:<id>:chunk:<n>    | string (base64 of up to 512 KiB)                         | 7 days    | adapters/blob/store-blob-store.ts      |
// | idem:<scope>:<key>            | idempotency record (owner-defined JSON)                  | per scope | caller of putIfAbsent (http / app)     |
// | lease:mailbox:<accountId>     | MailboxLeaseRecord { owner, token, expiresAt, acquiredAt } | 20 s (renewed every 5 s) | app/mailbox-lease.ts |
// | fence:mailbox:<accountId>     | number (fencing token counter, +1 per lease taken)       | none      | app/mailbox-lease.ts                   |
// | config:settings  (legacy v1)  | { version: 1, data: { "dotted.key": value } }            | none      | removed by migration 2                 |
// | account:<id>                  | Account (src/core/account.ts; password sealed, `rev`)    | none      | app/accounts-service.ts                |
// | account-address:<address>     | string: id of the account that owns the address/alias    | none      | app/accounts-service.ts                |
// | mailbox:<accountId>:checkpoint | MailboxCheckpoint { uidValidity: string, lastUid, + worker fields (import, recovery, …) } | none      | app/accounts-service.ts (baseline, putIfAbsent) + the IMAP worker |
// | agent-load:<agentId>          | AgentLoadDoc { agentId, active, lastAssignedAt, daily: { "<queueId>|<YYYY-MM-DD>": n }, queues, parked, rev } | none | app/assignment-load.ts |
// | assign:members:<queueId>      | { queueRev, syncedAt, rev }: when the queue's assignment indexes were last matched to its members | none | app/assignment-service.ts |
// | assign:reason:<queueId>       | { reason, at }: why the last auto-assignment of the queue found nobody | none | app/assignment-service.ts |
// | agent:<id>                    | Agent (src/core/agent.ts; `rev`)                         | none      | app/agents-service.ts                  |
// | agent-email:<email>           | string: id of the agent that owns the (lowercased) email | none      | app/agents-service.ts                  |
// | team:<id>                     | Team (src/core/agent.ts; `rev`)                          | none      | app/agents-service.ts                  |
// | agent-token:<sha256 hex>      | AgentToken (hash only, never the token)                  | none      | app/agents-service.ts                  |
// | agent-tokens:<agentId>        | AgentTokenList { rev, tokens: [{ id, hash }] } (≤ 20)    | none      | app/agents-service.ts                  |
// | presence:<agentId>            | Presence { online, until, source, updatedAt }            | ttlSeconds (30 s–1 day, default 300 s) | app/agents-service.ts |
// | jobs-pending:<jobId>          | { job, at }: Redis only, a commit's job until BullMQ has it (transactional outbox) | none | adapters/store/redis-store.ts |
// | storage-settings              | StorageDocument (archive provider, bucket, folder, retention; secrets sealed; rev) | none | app/storage-service.ts |
// | archive-status                | { lastSuccessAt, lastErrorAt, lastError } of archive writes | none  | app/archive-service.ts                 |
// | autoreply-rate:<sender>:<n>   | number: auto-replies to the sender in fixed window n      | window (1 h) | app/outbound-service.ts          |
//
// Ordered indexes: `index <name>` with member, score meaning and owner.
// | index accounts:by-created     | member: account id; score: createdAt (epoch ms)          | none      | app/accounts-service.ts                |
// | index assign:load:<queueId>   | member: agent id; score: loadScore(active, lastAssignedAt) (core/assignment/rank.ts) | none | app/assignment-load.ts |
// | index assign:parked:<queueId> | member: agent id set aside (daily limit reached, offline); score: when to look again (epoch ms) | none | app/assignment-load.ts |
// | index assign:waiting:<queueId> | member: session id awaiting auto-assignment; score: when it started waiting (epoch ms) | none | app/assignment-service.ts |
// | index assign:waiting-queues   | member: queue id that has waiting sessions; score: last time one was added (epoch ms) | none | app/assignment-service.ts |
// | index agents:by-created       | member: agent id (active or not); score: createdAt ms    | none      | app/agents-service.ts                  |
// | index agents:active:by-created | member: active agent id; score: createdAt ms            | none      | app/agents-service.ts                  |
// | index teams:by-created        | member: team id; score: createdAt ms                     | none      | app/agents-service.ts                  |
// | index messages:received       | member: message internal id; score: stored-at ms (retention sweep, removed once purged) | none | core/session/store-layout.ts |

/** A documented key family. */
export interface StoreKeyDoc {
  pattern: string;
  shape: string;
  ttl: string;
  owner: string;
}

export const STORE_KEYS: readonly StoreKeyDoc[] = [
  { pattern: 'settings', shape: 'Settings (nested object)', ttl: 'none', owner: 'app/settings-service.ts' },
  { pattern: 'meta:schemaVersion', shape: 'number', ttl: 'none', owner: 'adapters/store/migrations.ts' },
  { pattern: 'meta:migrationLock', shape: '{ owner, at }', ttl: '5 min', owner: 'adapters/store/migrations.ts' },
  { pattern: 'upload:<id>', shape: 'UploadMeta', ttl: '7 days', owner: 'app/uploads-service.ts' },
  { pattern: 'blob:upload:<id>', shape: '{ size, chunks, contentType? }', ttl: '7 days', owner: 'adapters/blob/store-blob-store.ts' },
  { pattern: 'blob:upload:<id>:chunk:<n>', shape: 'base64 string', ttl: '7 days', owner: 'adapters/blob/store-blob-store.ts' },
  { pattern: 'idem:<scope>:<key>', shape: 'idempotency record', ttl: 'per scope', owner: 'caller of putIfAbsent' },
  { pattern: 'lease:mailbox:<accountId>', shape: '{ owner, token, expiresAt, acquiredAt }', ttl: '20 s, renewed every 5 s', owner: 'app/mailbox-lease.ts' },
  { pattern: 'fence:mailbox:<accountId>', shape: 'number (fencing token counter)', ttl: 'none', owner: 'app/mailbox-lease.ts' },
  { pattern: 'config:settings', shape: '{ version: 1, data: flat dotted keys } (legacy)', ttl: 'none', owner: 'migration 2 (removes it)' },
  { pattern: 'account:<id>', shape: 'Account (password sealed, rev)', ttl: 'none', owner: 'app/accounts-service.ts' },
  { pattern: 'account-address:<address>', shape: 'string (owning account id)', ttl: 'none', owner: 'app/accounts-service.ts' },
  { pattern: 'mailbox:<accountId>:checkpoint', shape: 'MailboxCheckpoint { uidValidity, lastUid, lastInternalDate?, baselineAt?, baselineUid?, import?, recovery?, updatedAt? }', ttl: 'none', owner: 'app/accounts-service.ts (baseline) + IMAP worker' },
  { pattern: 'index accounts:by-created', shape: 'member account id, score createdAt ms', ttl: 'none', owner: 'app/accounts-service.ts' },
  { pattern: 'agent-load:<agentId>', shape: 'AgentLoadDoc { agentId, active, lastAssignedAt, daily, queues, parked, rev }', ttl: 'none', owner: 'app/assignment-load.ts' },
  { pattern: 'assign:members:<queueId>', shape: '{ queueRev, syncedAt, rev }', ttl: 'none', owner: 'app/assignment-service.ts' },
  { pattern: 'assign:reason:<queueId>', shape: '{ reason, at }', ttl: 'none', owner: 'app/assignment-service.ts' },
  { pattern: 'index assign:load:<queueId>', shape: 'member agent id, score loadScore(active, lastAssignedAt)', ttl: 'none', owner: 'app/assignment-load.ts' },
  { pattern: 'index assign:parked:<queueId>', shape: 'member agent id, score recheck time ms', ttl: 'none', owner: 'app/assignment-load.ts' },
  { pattern: 'index assign:waiting:<queueId>', shape: 'member session id, score waiting since ms', ttl: 'none', owner: 'app/assignment-service.ts' },
  { pattern: 'index assign:waiting-queues', shape: 'member queue id, score last add ms', ttl: 'none', owner: 'app/assignment-service.ts' },
  { pattern: 'agent:<id>', shape: 'Agent (rev)', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'agent-email:<email>', shape: 'string (owning agent id)', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'team:<id>', shape: 'Team (rev)', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'agent-token:<sha256 hex>', shape: 'AgentToken (hash only)', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'agent-tokens:<agentId>', shape: 'AgentTokenList { rev, tokens: [{ id, hash }] }', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'presence:<agentId>', shape: 'Presence { online, until, source, updatedAt }', ttl: 'ttlSeconds (30 s–1 day, default 300 s)', owner: 'app/agents-service.ts' },
  { pattern: 'index agents:by-created', shape: 'member agent id, score createdAt ms', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'index agents:active:by-created', shape: 'member active agent id, score createdAt ms', ttl: 'none', owner: 'app/agents-service.ts' },
  { pattern: 'index teams:by-created', shape: 'member team id, score createdAt ms', ttl: 'none', owner: 'app/agents-service.ts' },
  // Sessions and messages (src/core/session/store-layout.ts; owner app/ingest-message.ts, app/sessions-service.ts)
  { pattern: 'session:<sessionId>', shape: 'StoredSession (Session + rev)', ttl: 'none', owner: 'app/ingest-message.ts, app/sessions-service.ts' },
  { pattern: 'smsg:<messageInternalId>', shape: 'StoredMessage (headers, text, sanitized html, attachment metadata, rawKey; outbound: kind, agentId, bcc, delivery)', ttl: 'none', owner: 'app/ingest-message.ts, app/outbound-service.ts (out_*)' },
  { pattern: 'msgid:<Message-ID | content:<sha256>>[#<hash16>]', shape: '{ sessionId, messageInternalId, contentHash, outbound?, rev }', ttl: 'none', owner: 'app/ingest-message.ts (dedupe + threading), app/outbound-service.ts (our Message-IDs)' },
  { pattern: 'jobs-pending:<jobId>', shape: '{ job: JobSpec, at } (Redis only: a commit\'s job until BullMQ has it)', ttl: 'none (cleared after the hand-over)', owner: 'adapters/store/redis-store.ts' },
  { pattern: 'index jobs:pending', shape: 'member job id, score commit time ms (Redis only; swept every 30 s)', ttl: 'none', owner: 'adapters/store/redis-store.ts' },
  { pattern: 'storage-settings', shape: 'StorageDocument (provider, bucket, folder, retentionDays, s3/gcs with sealed secrets, rev, updatedAt)', ttl: 'none', owner: 'app/storage-service.ts' },
  { pattern: 'archive-batch-lock', shape: 'string: owner of the running archive batch (one at a time)', ttl: '2 min', owner: 'app/archive-service.ts' },
  { pattern: 'index archive:pending', shape: 'member message internal id, score stored-at ms (waiting for its archive copy)', ttl: 'none', owner: 'core/archive.ts archiveWrites, app/archive-service.ts' },
  { pattern: 'archive-status', shape: 'ArchiveStatus { lastSuccessAt, lastErrorAt, lastError }', ttl: 'none', owner: 'app/archive-service.ts' },
  { pattern: 'index messages:received', shape: 'member message internal id, score stored-at ms (retention sweep; removed once purged)', ttl: 'none', owner: 'core/session/store-layout.ts retentionIndexOp' },
  { pattern: 'autoreply-counted:<inboundMessageId>', shape: 'string: the rate counter this inbound mail was counted in (a replayed auto-reply job counts once)', ttl: 'the window (1 h)', owner: 'app/outbound-service.ts' },
  { pattern: 'autoreply-rate:<sender>:<window>', shape: 'number (auto-replies sent to this sender in the window)', ttl: 'the window (1 h)', owner: 'app/outbound-service.ts (core/policies/loop-guard.ts rateKey)' },
  { pattern: 'blob:raw:<messageInternalId | quarantineId>', shape: 'blob manifest + chunks (original .eml bytes)', ttl: 'none', owner: 'app/ingest-message.ts' },
  { pattern: 'quarantine:<id>', shape: 'QuarantineEntry', ttl: 'none', owner: 'app/ingest-message.ts' },
  { pattern: 'quarantine-src:<accountId>:<uidValidity>:<uid>', shape: '{ id, rev }', ttl: 'none', owner: 'app/ingest-message.ts (quarantine once)' },
  { pattern: 'index sessions:updated | sessions:queue:<q> | sessions:status:<s> | sessions:assignee:<a> | sessions:unassigned | sessions:customer:<addr>', shape: 'member sessionId, score updatedAt', ttl: 'none', owner: 'core/session/store-layout.ts' },
  { pattern: 'index session-messages:<sessionId>', shape: 'member messageInternalId, score arrival order', ttl: 'none', owner: 'app/ingest-message.ts' },
  { pattern: 'index timers:<pausedToClosed|resolvedToClosed|activeToPaused>', shape: 'member sessionId, score when the timer clock started', ttl: 'none', owner: 'core/session/store-layout.ts' },
  { pattern: 'index quarantine:created', shape: 'member quarantineId, score time', ttl: 'none', owner: 'app/ingest-message.ts' },
  { pattern: 'queue:<id>', shape: 'Queue', ttl: 'none', owner: 'app/queues-service.ts' },
  { pattern: 'account-queue:<accountId>', shape: '{ queueId } (an account belongs to at most one queue)', ttl: 'none', owner: 'app/queues-service.ts' },
  { pattern: 'index queues:created', shape: 'member queueId, score createdAt', ttl: 'none', owner: 'app/queues-service.ts' },
  // CRM (app/crm-sync.ts, app/settings-service.ts, entry/crm.ts)
  { pattern: 'connector-config:<connectorId>', shape: 'sealed config of a connector the settings switched away from', ttl: 'none', owner: 'app/settings-service.ts' },
  { pattern: 'crm-record:<connectorId>:<recordId>', shape: '{ sessionId }', ttl: 'none', owner: 'app/crm-sync.ts (CRM events → session)' },
  { pattern: 'crm-session:<connectorId>:<sessionId>', shape: '{ recordId }', ttl: 'none', owner: 'app/crm-sync.ts' },
  { pattern: 'crm-event:<connectorId>:<eventId>', shape: '{ at } (each CRM event applied once)', ttl: '7 days', owner: 'app/crm-sync.ts' },
  { pattern: 'crm-status:<connectorId>:<sessionId>', shape: '{ value } (CRM status last written; skips writes that change nothing)', ttl: 'none', owner: 'app/crm-sync.ts' },
  { pattern: 'crm-poll:<connectorId>', shape: '{ checkpoint }', ttl: 'none', owner: 'app/crm-sync.ts' },
  { pattern: 'connector:<connectorId>:<key> and index connector-keys:<connectorId>', shape: 'the connector’s own records (local connector)', ttl: 'none', owner: 'entry/crm.ts (ConnectorStorage)' },
];

function part(value: string, what: string, allowColon = true): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`store key ${what} must be a non-empty string`);
  if (!allowColon && value.includes(':')) throw new TypeError(`store key ${what} must not contain ':' (got ${JSON.stringify(value)})`);
  return value;
}

/** `settings`: the global settings document. */
export const SETTINGS_KEY = 'settings';
/** `meta:schemaVersion`: schema version of the stored data. */
export const SCHEMA_VERSION_KEY = 'meta:schemaVersion';
/** `meta:migrationLock`: held while one instance runs migrations. */
export const MIGRATION_LOCK_KEY = 'meta:migrationLock';
/** `config:settings`: where v1 kept the settings (flat); migration 2 moves it to `settings`. */
export const LEGACY_V1_SETTINGS_KEY = 'config:settings';

export const settingsKey = (): string => SETTINGS_KEY;
export const schemaVersionKey = (): string => SCHEMA_VERSION_KEY;
export const migrationLockKey = (): string => MIGRATION_LOCK_KEY;

/** `upload:<id>`: upload metadata. */
export const uploadKey = (id: string): string => `upload:${part(id, 'upload id', false)}`;
/** `blob:upload:<id>`: manifest of an upload's bytes (chunks are `<this>:chunk:<n>`). */
export const uploadBlobKey = (id: string): string => `blob:upload:${part(id, 'upload id', false)}`;
/** `blob:upload:<id>:chunk:<n>`: one chunk of an upload's bytes. */
export const blobChunkKey = (blobKey: string, n: number): string => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`chunk number must be a non-negative integer, got ${n}`);
  return `${part(blobKey, 'blob key')}:chunk:${n}`;
};
/** `idem:<scope>:<key>`: an idempotency record; `scope` names the operation (no ':'), `key` is the client's key. */
export const idempotencyKey = (scope: string, key: string): string => `idem:${part(scope, 'idempotency scope', false)}:${part(key, 'idempotency key')}`;

/** `account:<id>`: one email account (R-ACC). */
export const accountKey = (id: string): string => `account:${part(id, 'account id', false)}`;
/** `account-address:<address>`: which account owns an address or alias (lowercased); claimed with a `check` op. */
export const accountAddressKey = (address: string): string => `account-address:${part(address, 'address')}`;
/** Ordered index of accounts by creation time (member: id, score: createdAt ms). */
export const ACCOUNTS_BY_CREATED_INDEX = 'accounts:by-created';

/** `mailbox:<accountId>:checkpoint`: the INBOX checkpoint; the baseline taken when the account is saved seeds it. */
export const mailboxCheckpointKey = (accountId: string): string => `mailbox:${part(accountId, 'account id', false)}:checkpoint`;

// ---- mailboxes (inbound: src/adapters/imap/mailbox-worker.ts, src/app/mailbox-lease.ts) ----

/** Progress of an `importSince` import: UIDs at or below `upToUid` received since `since`, delivered as `imported`. */
export interface MailboxImportProgress {
  /** Start of the import (epoch ms; the IMAP SEARCH SINCE works per day). */
  since: number;
  /** Highest UID the import covers (the baseline); newer mail is ingested as new mail. */
  upToUid: number;
  /** Last UID the import delivered; it resumes after it. */
  cursorUid: number;
  /** Messages delivered so far, and how many the first search found (null before it ran). */
  done: number;
  total: number | null;
  finished: boolean;
  /** After a UIDVALIDITY change the baseline UID is meaningless: only mail with INTERNALDATE before this (epoch ms). */
  beforeMs?: number | null;
}

/** A re-listing after a UIDVALIDITY change: UIDs up to `upToUid` whose INTERNALDATE is at or after `sinceMs` are redelivered. */
export interface MailboxRecovery {
  fromUidValidity: string;
  sinceMs: number;
  upToUid: number;
  cursorUid: number;
  startedAt: number;
}

/**
 * `mailbox:<accountId>:checkpoint`: where the IMAP worker resumes in INBOX: UIDs up to `lastUid` under `uidValidity`
 * are done (or predate the account). The accounts service seeds `{ uidValidity, lastUid }` as the baseline when the
 * account is saved; the worker fills in the rest.
 */
export interface MailboxCheckpoint {
  uidValidity: string;
  /** Highest UID delivered (at the baseline: UIDNEXT-1 when the account was saved). */
  lastUid: number;
  /** INTERNALDATE (epoch ms) of the last delivered new message; the UIDVALIDITY recovery re-lists from it. */
  lastInternalDate?: number | null;
  /** When the baseline was taken (epoch ms); the worker fills it in when missing. */
  baselineAt?: number;
  /** `lastUid` at the baseline: mail at or below it predates the account (read by the import only). */
  baselineUid?: number;
  import?: MailboxImportProgress | null;
  recovery?: MailboxRecovery | null;
  /** When the worker last saw UIDVALIDITY change (epoch ms); from then on an import selects by INTERNALDATE < baselineAt. */
  uidValidityChangedAt?: number;
  updatedAt?: number;
}

/** `lease:mailbox:<accountId>`: which instance reads the mailbox (R-REL-2). */
export const mailboxLeaseKey = (accountId: string): string => `lease:mailbox:${part(accountId, 'account id', false)}`;
/** `fence:mailbox:<accountId>`: counter handing out the lease's fencing tokens. */
export const mailboxFenceKey = (accountId: string): string => `fence:mailbox:${part(accountId, 'account id', false)}`;

// ---- agents, teams, agent tokens, presence (app/agents-service.ts) ----

/** `agent:<id>`: one agent (soft-deleted agents stay, `active: false`). */
export const agentKey = (id: string): string => `agent:${part(id, 'agent id', false)}`;
/** `agent-email:<email>`: which agent owns an email (lowercased); claimed with a `check` op. */
export const agentEmailKey = (email: string): string => `agent-email:${part(email, 'agent email')}`;
/** `team:<id>`: one team. */
export const teamKey = (id: string): string => `team:${part(id, 'team id', false)}`;
/** `agent-token:<hash>`: an agent token by the hex SHA-256 of the token (the token itself is never stored). */
export const agentTokenKey = (hash: string): string => `agent-token:${part(hash, 'token hash', false)}`;
/** `agent-tokens:<agentId>`: the agent's token ids and hashes (for listing and revoking). */
export const agentTokenListKey = (agentId: string): string => `agent-tokens:${part(agentId, 'agent id', false)}`;
/** `presence:<agentId>`: the agent's presence; expires by itself (store TTL). */
export const presenceKey = (agentId: string): string => `presence:${part(agentId, 'agent id', false)}`;
/** Ordered index of every agent, active or not, by creation time. */
export const AGENTS_BY_CREATED_INDEX = 'agents:by-created';
/** Ordered index of active agents by creation time (lists hide inactive agents by default). */
export const ACTIVE_AGENTS_BY_CREATED_INDEX = 'agents:active:by-created';
/** Ordered index of teams by creation time. */
export const TEAMS_BY_CREATED_INDEX = 'teams:by-created';

// ---- auto-assignment (app/assignment-load.ts, app/assignment-service.ts; R-ASG-1..5) ----

/** `agent-load:<agentId>`: an agent's active-session count, last assignment, daily counts and index placement. */
export const agentLoadKey = (agentId: string): string => `agent-load:${part(agentId, 'agent id', false)}`;
/** `assign:members:<queueId>`: when the queue's assignment indexes were last matched to its members. */
export const assignMembersKey = (queueId: string): string => `assign:members:${part(queueId, 'queue id', false)}`;
/** `assign:reason:<queueId>`: why the last auto-assignment of the queue found nobody. */
export const assignReasonKey = (queueId: string): string => `assign:reason:${part(queueId, 'queue id', false)}`;
/** Ordered index of a queue's assignable agents by load (member: agent id, score: loadScore). */
export const assignLoadIndex = (queueId: string): string => `assign:load:${part(queueId, 'queue id', false)}`;
/** Ordered index of a queue's agents set aside until a time (member: agent id, score: recheck time ms). */
export const assignParkedIndex = (queueId: string): string => `assign:parked:${part(queueId, 'queue id', false)}`;
/** Ordered index of a queue's sessions awaiting auto-assignment (member: session id, score: waiting since ms). */
export const assignWaitingIndex = (queueId: string): string => `assign:waiting:${part(queueId, 'queue id', false)}`;
/** Ordered index of the queues that have waiting sessions (member: queue id). */
export const ASSIGN_WAITING_QUEUES_INDEX = 'assign:waiting-queues';

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
// | config:settings  (legacy v1)  | { version: 1, data: { "dotted.key": value } }            | none      | removed by migration 2                 |
//
// Ordered indexes (none yet): add rows here as `index <name>` with member, score meaning and owner.

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
  { pattern: 'config:settings', shape: '{ version: 1, data: flat dotted keys } (legacy)', ttl: 'none', owner: 'migration 2 (removes it)' },
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

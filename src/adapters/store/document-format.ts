// The one on-disk/on-wire format of a stored document, shared by the Keyv path and the atomic (SQL / Lua) paths.
//
// A document is stored as the JSON text `{"value":<value>}`. Keyv's own envelope is `{ value, expires }`,
// but expiry is owned by the backend (the SQLite `expires_at` column judged by the store's clock; Redis `PX`),
// so `expires` is deliberately not written: there is exactly one authority for TTL, and the atomic paths
// (update, incr, commit, Lua scripts) can compare and write rows without knowing the wall clock Keyv uses.

import type { DeserializedData } from 'keyv';

/** Keyv namespace of documents. SQLite row key: `ec:<key>`; Redis key: `<keyPrefix>ec::<key>`. */
export const DOCUMENT_NAMESPACE = 'ec';

/** Encodes a value as a stored document. Throws TypeError for values JSON cannot represent. */
export function encodeDocument(value: unknown): string {
  if (value === undefined) throw new TypeError('store values must not be undefined (use delete to remove a key)');
  const text = JSON.stringify({ value });
  if (text === '{}') throw new TypeError(`store value of type ${typeof value} is not JSON-serialisable`);
  return text;
}

/** Decodes a stored document; `undefined` when the text is absent. */
export function decodeDocument<T>(text: string | undefined | null): T | undefined {
  if (text === undefined || text === null) return undefined;
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || !('value' in parsed)) return undefined;
  return (parsed as { value: T }).value;
}

/** Keyv `serialize` option: writes the document format above (the `expires` field Keyv passes is dropped). */
export function keyvSerialize(data: { value?: unknown; expires?: number | undefined }): string {
  return encodeDocument(data.value);
}

/** Keyv `deserialize` option: Keyv then reads `.value` (and finds no `expires`, so it never judges expiry itself). */
export function keyvDeserialize<Value>(text: string): DeserializedData<Value> | undefined {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  return parsed as DeserializedData<Value>;
}

// Cursor paging shared by every list route (SPEC §11b): `{ items, nextCursor }`, newest first.
import type { IndexEntry } from './ports.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/** Opaque cursor for an index position. */
export function encodeCursor(entry: IndexEntry): string {
  return toBase64Url(JSON.stringify([entry.score, entry.member]));
}

/** Decodes a cursor; `undefined` when it is not one of ours (the route answers 400 on `cursor`). */
export function decodeCursor(cursor: string): IndexEntry | undefined {
  if (cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  try {
    const parsed: unknown = JSON.parse(fromBase64Url(cursor));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'number' &&
      Number.isFinite(parsed[0]) &&
      typeof parsed[1] === 'string'
    ) {
      return { score: parsed[0], member: parsed[1] };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Builds a page from `limit + 1` entries read from an index: the extra one tells there is more. */
export function pageFromEntries<T>(entries: IndexEntry[], limit: number, toItem: (e: IndexEntry) => T | undefined): Page<T> {
  const more = entries.length > limit;
  const slice = more ? entries.slice(0, limit) : entries;
  const items: T[] = [];
  for (const e of slice) {
    const item = toItem(e);
    if (item !== undefined) items.push(item);
  }
  const last = slice[slice.length - 1];
  return { items, nextCursor: more && last ? encodeCursor(last) : null };
}

// Small helpers shared by the job runners: silent logger (re-exported from core), bounded awaits, opaque list cursors.
import { silentLogger } from '../../core/ports.js';
import type { Logger } from '../../core/ports.js';


export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Resolves like `promise`, or rejects with TimeoutError after `ms`. The timer never keeps the process alive. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Position in a newest-first listing: strictly after (updatedAt, id) in (updatedAt desc, id desc) order. */
export interface ListCursor {
  updatedAt: number;
  id: string;
}

export function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.updatedAt, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): ListCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && Number.isFinite(parsed[0]) && typeof parsed[1] === 'string') {
      return { updatedAt: parsed[0] as number, id: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw new RangeError('invalid job list cursor');
}

/** Newest first: updatedAt desc, then id desc. */
export function compareNewestFirst(a: ListCursor, b: ListCursor): number {
  if (a.updatedAt !== b.updatedAt) return b.updatedAt - a.updatedAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** True when `x` comes strictly after the cursor position in newest-first order. */
export function isAfterCursor(x: ListCursor, cursor: ListCursor): boolean {
  return compareNewestFirst(cursor, x) < 0;
}

export const MAX_LIST_LIMIT = 500;

export function clampLimit(limit: number): number {
  return Math.min(Math.max(1, Math.floor(Number.isFinite(limit) ? limit : 1)), MAX_LIST_LIMIT);
}

export { silentLogger };

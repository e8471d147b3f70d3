// Argument checks shared by both store backends, so both reject the same bad input the same way.
import type { IndexRangeOptions, WriteOp } from '../../core/ports.js';
import { encodeDocument } from './document-format.js';

export function checkKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError(`store ${what} must be a non-empty string`);
}

/** Returns the TTL as whole milliseconds (rounded up), or undefined when none was asked for. */
export function checkTtl(ttlMs: number | undefined): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive finite number of milliseconds, got ${String(ttlMs)}`);
  }
  return Math.ceil(ttlMs);
}

export function checkScore(score: number, what = 'score'): void {
  if (typeof score !== 'number' || Number.isNaN(score)) throw new RangeError(`index ${what} must be a number, got ${String(score)}`);
}

export function checkIncrement(by: number): void {
  if (!Number.isSafeInteger(by)) throw new RangeError(`incr amount must be a safe integer, got ${String(by)}`);
}

/** `update`'s fn runs inside the atomic section, so it must return the value itself, not a promise of it. */
export function checkUpdateResult(next: unknown): void {
  if (typeof next === 'object' && next !== null && typeof (next as { then?: unknown }).then === 'function') {
    throw new TypeError('update: fn must return the new value synchronously, not a promise');
  }
}

export interface CheckedRange {
  min: number;
  max: number;
  reverse: boolean;
  limit: number;
  after: { member: string; score: number } | undefined;
}

export function checkRange(opts: IndexRangeOptions): CheckedRange {
  const min = opts.min ?? -Infinity;
  const max = opts.max ?? Infinity;
  checkScore(min, 'min');
  checkScore(max, 'max');
  if (!Number.isSafeInteger(opts.limit) || opts.limit < 0) {
    throw new RangeError(`index range limit must be a non-negative integer, got ${String(opts.limit)}`);
  }
  if (opts.after !== undefined) {
    checkKey(opts.after.member, 'cursor member');
    checkScore(opts.after.score, 'cursor score');
  }
  return { min, max, reverse: opts.reverse === true, limit: opts.limit, after: opts.after };
}

/** A write op validated and with its document already encoded (so a bad value fails before anything is written). */
export type PreparedOp =
  | { op: 'put'; key: string; text: string; ttlMs: number | undefined }
  | { op: 'del'; key: string }
  | { op: 'index'; index: string; member: string; score: number }
  | { op: 'unindex'; index: string; member: string }
  | { op: 'check'; key: string; rev: number | null };

/** `rev` of a `check` op: null (the key must be absent) or a finite integer. */
export function checkRev(rev: number | null): number | null {
  if (rev === null) return null;
  if (typeof rev !== 'number' || !Number.isInteger(rev)) {
    throw new RangeError(`commit check rev must be null or a finite integer, got ${typeof rev === 'number' ? String(rev) : typeof rev}`);
  }
  return rev;
}

/** Does a stored document value satisfy a `check` op's `rev`? (Absent documents are judged by the caller.) */
export function documentHasRev(value: unknown, rev: number): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const stored = (value as { rev?: unknown }).rev;
  return typeof stored === 'number' && stored === rev;
}

export function prepareOps(ops: WriteOp[]): PreparedOp[] {
  return ops.map((op): PreparedOp => {
    switch (op.op) {
      case 'put':
        checkKey(op.key);
        return { op: 'put', key: op.key, text: encodeDocument(op.value), ttlMs: checkTtl(op.ttlMs) };
      case 'del':
        checkKey(op.key);
        return { op: 'del', key: op.key };
      case 'index':
        checkKey(op.index, 'index name');
        checkKey(op.member, 'index member');
        checkScore(op.score);
        return { op: 'index', index: op.index, member: op.member, score: op.score };
      case 'unindex':
        checkKey(op.index, 'index name');
        checkKey(op.member, 'index member');
        return { op: 'unindex', index: op.index, member: op.member };
      case 'check':
        checkKey(op.key);
        return { op: 'check', key: op.key, rev: checkRev(op.rev) };
      default: {
        const unknownOp: never = op;
        throw new TypeError(`unknown write op ${JSON.stringify(unknownOp)}`);
      }
    }
  });
}

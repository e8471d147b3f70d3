// Unit tests for the small pure helpers of src/core: ids, cursors, merge, constant-time compare.
import { describe, expect, it } from 'vitest';
import { constantTimeEqual } from './constant-time.js';
import { ENTITY_ID_PATTERN, SESSION_ID_PATTERN, isSafeId, newId, newSessionId } from './ids.js';
import { deepMerge } from './merge.js';
import { decodeCursor, encodeCursor, pageFromEntries } from './paging.js';

describe('ids [SPEC §11b]', () => {
  it('session ids are S + 10 base32 characters, safe in a subject token', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newSessionId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) {
      expect(id).toMatch(SESSION_ID_PATTERN);
      expect(`Re: Printer broken [#${id}]`).toContain(`[#${id}]`);
    }
  });
  it('entity ids carry their prefix and 16 lowercase base32 characters', () => {
    const id = newId('upl');
    expect(id).toMatch(ENTITY_ID_PATTERN);
    expect(id.startsWith('upl_')).toBe(true);
    expect(isSafeId(id)).toBe(true);
    expect(isSafeId('../etc')).toBe(false);
    expect(isSafeId('a:b')).toBe(false);
  });
  it('uses the injected random source', () => {
    expect(newSessionId((b) => b.fill(0))).toBe('S0000000000');
    expect(newSessionId((b) => b.fill(31))).toBe('SZZZZZZZZZZ');
  });
});

describe('cursors', () => {
  it('round-trip and are opaque url-safe strings', () => {
    const c = encodeCursor({ score: 1764201600123, member: 'S7K2M9QX4TB/é' });
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(c)).toEqual({ score: 1764201600123, member: 'S7K2M9QX4TB/é' });
  });
  it('reject anything that is not ours', () => {
    for (const bad of ['', 'abc', '!!!', encodeCursor({ score: 1, member: 'x' }) + '*', 'x'.repeat(600), btoa('{"a":1}')]) {
      expect(decodeCursor(bad)).toBeUndefined();
    }
  });
  it('pages: limit+1 entries give a next cursor at the last item', () => {
    const entries = [3, 2, 1].map((n) => ({ score: n, member: `m${n}` }));
    const page = pageFromEntries(entries, 2, (e) => e.member);
    expect(page.items).toEqual(['m3', 'm2']);
    expect(decodeCursor(page.nextCursor ?? '')).toEqual({ score: 2, member: 'm2' });
    expect(pageFromEntries(entries, 3, (e) => e.member).nextCursor).toBeNull();
  });
});

describe('deepMerge', () => {
  it('merges objects, replaces arrays and scalars, ignores undefined', () => {
    const base = { a: { b: 1, c: [1, 2] }, d: 'x' };
    expect(deepMerge(base, { a: { c: [3] }, d: undefined, e: true })).toEqual({ a: { b: 1, c: [3] }, d: 'x', e: true });
    expect(base.a.c).toEqual([1, 2]);
  });
});

describe('constantTimeEqual', () => {
  it('compares bytes', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(constantTimeEqual(enc('abc'), enc('abc'))).toBe(true);
    expect(constantTimeEqual(enc('abc'), enc('abd'))).toBe(false);
    expect(constantTimeEqual(enc('abc'), enc('abcd'))).toBe(false);
    expect(constantTimeEqual(enc(''), enc(''))).toBe(true);
  });
});

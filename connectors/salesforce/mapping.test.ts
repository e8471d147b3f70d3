// Pure mapping: status both ways, field limits, markers, SOQL literals, poll cursors.
import { describe, expect, it } from 'vitest';
import type { CreateRecordInput } from '../contract.js';
import {
  advanceCursor,
  afterCursor,
  alreadySeen,
  caseFields,
  commentBody,
  crmStatusToSession,
  cutBytes,
  decodeCheckpoint,
  DEFAULT_STATUS_MAP,
  encodeCheckpoint,
  firstEmailMessage,
  hasCommentMarker,
  resolveStatusMap,
  soqlDateTime,
  soqlString,
  toBase64,
  type StreamCursor,
} from './mapping.js';

describe('status mapping', () => {
  const map = DEFAULT_STATUS_MAP;
  it('defaults use only the default Case Status picklist values (New, Working, Escalated, Closed)', () => {
    expect(new Set(Object.values(map))).toEqual(new Set(['New', 'Working', 'Closed']));
  });

  it.each([
    ['Closed', 'active', 'resolved'],
    ['Closed', 'resolved', null],
    ['Closed', 'closed', null],
    ['Working', 'resolved', 'reopened'],
    ['Escalated', 'closed', 'reopened'],
    ['Working', 'unopened', 'active'],
    ['Working', 'paused', null], // paused maps to Working by default: no change
    ['Escalated', 'active', null],
    ['Escalated', 'paused', 'active'],
    ['New', 'active', null],
    ['Closed', null, 'resolved'],
  ] as const)('agent sets %s while the session is %s → %s', (crm, current, expected) => {
    expect(crmStatusToSession(crm, current, map)).toBe(expected);
  });

  it('with an "On Hold" value configured, paused maps both ways', () => {
    const onHold = resolveStatusMap({ paused: 'On Hold' });
    expect(onHold.paused).toBe('On Hold');
    expect(crmStatusToSession('On Hold', 'active', onHold)).toBe('paused');
    expect(crmStatusToSession('Working', 'paused', onHold)).toBe('active');
    expect(crmStatusToSession('On Hold', 'paused', onHold)).toBeNull();
  });

  it('with distinct resolved/closed values, each maps to its own status', () => {
    const m = resolveStatusMap({ resolved: 'Resolved' });
    expect(crmStatusToSession('Resolved', 'active', m)).toBe('resolved');
    expect(crmStatusToSession('Closed', 'resolved', m)).toBe('closed');
  });
});

const base: CreateRecordInput = {
  externalId: 'ec:S7K2M9QX4TB',
  sessionId: 'S7K2M9QX4TB',
  subject: 'S'.repeat(300),
  requester: { email: 'casey@example.org', name: 'N'.repeat(100) },
  firstComment: { bodyText: 'Hello', public: true },
  status: 'unopened',
  queue: null,
  assignee: null,
  customFields: { Product__c: 'Widgets', Subject: 'overridden by the connector' },
};

describe('record fields', () => {
  it('caseFields cuts to the field sizes and sets our fields last (custom fields cannot override them)', () => {
    const f = caseFields(base, DEFAULT_STATUS_MAP, { ownerId: '00G5g0000000001AAA' });
    expect((f.Subject as string).length).toBe(255);
    expect((f.SuppliedName as string).length).toBe(80);
    expect(f).toMatchObject({ Origin: 'Email', Status: 'New', OwnerId: '00G5g0000000001AAA', Product__c: 'Widgets', EmailChannel_Session_Id__c: 'ec:S7K2M9QX4TB', EmailChannel_Status__c: 'unopened', Description: 'Hello' });
    expect(f.Subject).not.toBe('overridden by the connector');
  });

  it('firstEmailMessage: none for an internal first note', () => {
    expect(firstEmailMessage({ ...base, firstComment: { bodyText: 'x', public: false } }, '@{c.id}', 0)).toBeNull();
    expect(firstEmailMessage({ ...base, firstComment: null }, '@{c.id}', 0)).toBeNull();
    expect(firstEmailMessage(base, '@{c.id}', 0)).toMatchObject({ ParentId: '@{c.id}', Incoming: true, Status: '0', MessageDate: '1970-01-01T00:00:00.000Z' });
  });

  it('commentBody fits 4,000 UTF-8 bytes with the marker at the end', () => {
    const body = commentBody('😀'.repeat(3000), 'ec:S:comment:1');
    expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(4000);
    expect(hasCommentMarker(body, 'ec:S:comment:1')).toBe(true);
    expect(hasCommentMarker(body, 'ec:S:comment:2')).toBe(false);
    expect(body).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(commentBody('short', 'k')).toBe('short\n\n[k]');
    expect(cutBytes('abc', 10)).toBe('abc');
  });

  it('toBase64 matches Buffer', () => {
    const bytes = new Uint8Array(70_000).map((_, i) => i % 256);
    expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
  });
});

describe('SOQL literals', () => {
  it('escapes quotes and backslashes; dateTimes to the second in UTC', () => {
    expect(soqlString("O'Brien \\ x")).toBe("'O\\'Brien \\\\ x'");
    expect(soqlDateTime(Date.parse('2026-03-02T09:00:00.999Z'))).toBe('2026-03-02T09:00:00Z');
  });
});

describe('poll cursor', () => {
  const T = Date.parse('2026-03-02T09:00:00Z');
  const start: StreamCursor = { t: T, seen: {} };

  it('advances to the last second and remembers the rows seen at it', () => {
    const next = advanceCursor(start, [
      { id: 'a', t: T, sig: '1' },
      { id: 'b', t: T + 1000, sig: '1' },
      { id: 'c', t: T + 1000, sig: '2' },
    ], false);
    expect(next).toEqual({ t: T + 1000, seen: { b: '1', c: '2' } });
    expect(alreadySeen(next, { id: 'b', t: T + 1000, sig: '1' })).toBe(true);
    expect(alreadySeen(next, { id: 'b', t: T + 1000, sig: 'changed' })).toBe(false);
    expect(afterCursor('LastModifiedDate', next)).toBe('LastModifiedDate >= 2026-03-02T09:00:01Z');
  });

  it('a full batch within one second pages by Id until the stream moves on', () => {
    const rows = Array.from({ length: 3 }, (_, i) => ({ id: `id${i}`, t: T, sig: 's' }));
    const paged = advanceCursor(start, rows, true);
    expect(paged.after).toBe('id2');
    expect(afterCursor('F', paged)).toBe("(F > 2026-03-02T09:00:00Z OR (F = 2026-03-02T09:00:00Z AND Id > 'id2'))");
    const rest = advanceCursor(paged, [{ id: 'id3', t: T, sig: 's' }], false);
    expect(rest.after).toBe('id3');
    const moved = advanceCursor(rest, [{ id: 'z', t: T + 1000, sig: 's' }], false);
    expect(moved).toEqual({ t: T + 1000, seen: { z: 's' } });
    expect(advanceCursor(start, [], false)).toBe(start);
  });

  it('round-trips; unreadable checkpoints restart from the fallback', () => {
    const cp = { v: 2 as const, cases: { t: T, seen: { a: '1' } }, comments: { t: T, seen: {} } };
    expect(decodeCheckpoint(encodeCheckpoint(cp), 0)).toEqual(cp);
    const fresh = { v: 2, cases: { t: T, seen: {} }, comments: { t: T, seen: {} } };
    expect(decodeCheckpoint(null, T + 500)).toEqual(fresh);
    expect(decodeCheckpoint('{bad', T)).toEqual(fresh);
    expect(decodeCheckpoint(JSON.stringify({ v: 2, cases: { t: 'x', seen: {} }, comments: {} }), T)).toEqual(fresh);
    expect(decodeCheckpoint(JSON.stringify({ v: 1, cases: { t: T, id: '' }, comments: { t: T, id: '' } }), T)).toEqual(fresh);
  });
});

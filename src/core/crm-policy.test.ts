// Record policies [R-CRM-1..6]: which CRM jobs each session change causes, under each setting.
import { describe, expect, it } from 'vitest';
import { crmJobsFor, crmStatusIsNews, type CrmPolicy } from './crm-policy.js';
import type { Session } from './session/model.js';
import { newInboundSession } from './session/transition.js';

const T = Date.UTC(2026, 10, 2);
const policy = (over: Partial<CrmPolicy> = {}): CrmPolicy => ({
  inbound: true,
  outbound: true,
  comments: { enabled: true, frequency: 'session_end' },
  pdf: { enabled: true, frequency: 'session_end' },
  metadataFile: false,
  ...over,
});
const fresh = (): Session => newInboundSession({ id: 'S1234567890', queueId: 'q', subject: 's', customer: { address: 'a@x' }, messageId: 'm', imported: false, now: T }).session;
const purposes = (jobs: { purpose: string }[]) => jobs.map((j) => j.purpose);

describe('crmJobsFor', () => {
  it('creates a record for a new inbound session, unless inbound records are off [R-CRM-1]', () => {
    expect(purposes(crmJobsFor({ prev: null, next: fresh() }, policy(), 'zendesk', T))).toEqual(['crm.create_record']);
    expect(crmJobsFor({ prev: null, next: fresh() }, policy({ inbound: false }), 'zendesk', T)).toEqual([]);
    expect(purposes(crmJobsFor({ prev: null, next: fresh(), startedBy: 'agent' }, policy({ inbound: false }), 'zendesk', T))).toEqual(['crm.create_record']);
    expect(crmJobsFor({ prev: null, next: fresh(), startedBy: 'agent' }, policy({ outbound: false }), 'zendesk', T)).toEqual([]);
  });
  it('at session end (default): one thread comment and one PDF when the session closes [R-CRM-2, R-CRM-3]', () => {
    const prev = { ...fresh(), status: 'active' as const };
    const next = { ...prev, status: 'closed' as const, interactions: [...prev.interactions, { type: 'closed' as const, at: T, actor: 'x' }] };
    const jobs = crmJobsFor({ prev, next }, policy({ metadataFile: true }), 'zendesk', T);
    expect(purposes(jobs)).toEqual(['crm.comment_thread', 'crm.attach_pdf', 'crm.attach_metadata', 'crm.sync_status']);
    expect(jobs[0]?.id).toBe('crm:zendesk:S1234567890:comment:end:1');
  });
  it('after each reply: a thread comment and a PDF per agent reply and auto-reply, not per customer mail [R-CRM-2, R-CRM-6]', () => {
    const p = policy({ comments: { enabled: true, frequency: 'each_reply' }, pdf: { enabled: true, frequency: 'each_reply' } });
    const s = fresh();
    expect(purposes(crmJobsFor({ prev: s, next: s, message: { internalId: 'm2', direction: 'outbound', kind: 'agent_reply' } }, p, 'z', T))).toEqual(['crm.comment_thread', 'crm.attach_pdf']);
    expect(purposes(crmJobsFor({ prev: s, next: s, message: { internalId: 'm3', direction: 'outbound', kind: 'auto_reply' } }, p, 'z', T))).toEqual(['crm.comment_thread', 'crm.attach_pdf']);
    expect(crmJobsFor({ prev: s, next: s, message: { internalId: 'm4', direction: 'inbound', kind: 'customer' } }, p, 'z', T)).toEqual([]);
  });
  it('with comments off, the CRM still gets a comment without body text [R-CRM-2]', () => {
    const p = policy({ comments: { enabled: false, frequency: 'each_reply' }, pdf: { enabled: false, frequency: 'each_reply' } });
    const s = fresh();
    expect(purposes(crmJobsFor({ prev: s, next: s, message: { internalId: 'm2', direction: 'outbound', kind: 'agent_reply' } }, p, 'z', T))).toEqual(['crm.comment_metadata']);
  });
  it('syncs status, assignee and queue changes after a short delay so bursts coalesce [R-CRM-5, R-QUE-4]', () => {
    const prev = fresh();
    const next = { ...prev, status: 'active' as const, assigneeId: 'a1', queueId: 'q2', updatedAt: T + 1 };
    const jobs = crmJobsFor({ prev, next }, policy(), 'z', T);
    expect(purposes(jobs)).toEqual(['crm.sync_status', 'crm.sync_assignee', 'crm.sync_queue']);
    expect(jobs.every((j) => j.runAt === T + 5000)).toBe(true);
  });
  it('gives a second end-of-session log when a session is closed again after reopening', () => {
    const prev = { ...fresh(), status: 'reopened' as const, interactions: [{ type: 'closed' as const, at: T, actor: 'x' }] };
    const next = { ...prev, status: 'closed' as const, interactions: [...prev.interactions, { type: 'closed' as const, at: T + 1, actor: 'x' }] };
    expect(crmJobsFor({ prev, next }, policy(), 'z', T)[0]?.id).toBe('crm:z:S1234567890:comment:end:2');
  });
});

describe('crmStatusIsNews', () => {
  const map = { unopened: 'open', active: 'open', reopened: 'open', paused: 'pending', resolved: 'solved', closed: 'solved' } as const;
  it('ignores echoes of our own writes in the CRM vocabulary', () => {
    expect(crmStatusIsNews('unopened', 'active', map)).toBe(false);
    expect(crmStatusIsNews('closed', 'resolved', map)).toBe(false);
    expect(crmStatusIsNews('active', 'resolved', map)).toBe(true);
    expect(crmStatusIsNews('resolved', 'reopened', map)).toBe(true);
  });
});

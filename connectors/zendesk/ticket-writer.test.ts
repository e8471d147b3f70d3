// Unit tests of the per-ticket writer: how writes merge into one update, and the 30-per-10-minutes budget.
import { describe, expect, it } from 'vitest';
import type { TicketPatch } from './mapping.js';
import { TICKET_UPDATE_LIMIT, TicketWriter, takeBatch } from './ticket-writer.js';

const comment = (externalId: string) => ({ body: externalId, public: true, externalId });

describe('takeBatch', () => {
  it('merges fields last-write-wins and takes at most one comment per update', () => {
    const writes: { patch: TicketPatch }[] = [
      { patch: { comment: comment('c1') } },
      { patch: { status: 'pending', customFields: [{ id: 1, value: 'paused' }] } },
      { patch: { assigneeId: 7, status: 'open', customFields: [{ id: 1, value: 'active' }] } },
      { patch: { comment: comment('c2') } },
      { patch: { groupId: 3 } },
    ];
    expect(takeBatch(writes)).toEqual({
      count: 3,
      patch: { comment: comment('c1'), status: 'open', assigneeId: 7, customFields: [{ id: 1, value: 'active' }] },
    });
    expect(takeBatch(writes.slice(3))).toEqual({ count: 2, patch: { comment: comment('c2'), groupId: 3 } });
    expect(takeBatch([{ patch: { assigneeId: 7 } }, { patch: { assigneeId: null } }]).patch).toEqual({ assigneeId: null });
  });
});

describe('TicketWriter', () => {
  it('sends writes made together as one update, in order, and answers each', async () => {
    const sent: TicketPatch[] = [];
    const w = new TicketWriter({ send: async (_id, p) => (sent.push(p), { commentId: String(sent.length) }), now: () => 0, windowMs: 5 });
    const results = await Promise.all([w.write('1', { status: 'open' }), w.write('1', { comment: comment('a') }), w.write('1', { comment: comment('b') }), w.write('2', { status: 'solved' })]);
    expect(sent).toEqual([{ status: 'open', comment: comment('a') }, { comment: comment('b') }, { status: 'solved' }]);
    expect(results.map((r) => r.commentId)).toEqual(['1', '1', '2', '3']);
  });

  it('refuses the 31st update to a ticket within 10 minutes with rate_limited, without sending it', async () => {
    let clock = 1_000_000;
    let calls = 0;
    const w = new TicketWriter({ send: async () => (calls++, {}), now: () => clock, windowMs: 0 });
    for (let i = 0; i < TICKET_UPDATE_LIMIT.updates; i++) await w.write('9', { status: i % 2 ? 'open' : 'pending' });
    await expect(w.write('9', { status: 'solved' })).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: TICKET_UPDATE_LIMIT.windowMs });
    expect(calls).toBe(30);
    clock += TICKET_UPDATE_LIMIT.windowMs + 1;
    await w.write('9', { status: 'solved' });
    expect(calls).toBe(31);
  });

  it('after a conflict (closed ticket) the queued writes of that ticket fail too', async () => {
    const { ZendeskConnectorError } = await import('./errors.js');
    const w = new TicketWriter({ send: async () => { throw new ZendeskConnectorError('conflict', 'closed', { followUpNeeded: true }); }, now: () => 0, windowMs: 5 });
    const out = await Promise.allSettled([w.write('5', { comment: comment('x') }), w.write('5', { comment: comment('y') })]);
    expect(out.map((o) => o.status)).toEqual(['rejected', 'rejected']);
  });
});

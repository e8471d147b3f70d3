// Template tags [R-ARP-5, R-SIG-2]: unknown tags refused at save time, values escaped, dates in the queue's zone.
import { describe, expect, it } from 'vitest';
import { AUTO_REPLY_TAGS, autoReplyValues, firstName, renderTags, scanTags } from './tags.js';

describe('scanTags', () => {
  it('lists known tags and reports unknown and malformed ones', () => {
    const r = scanTags('Hello @{consumer}, @{agent} @{nope} and @{consumer} again, broken @{queue', AUTO_REPLY_TAGS);
    expect(r.used).toEqual(['consumer', 'agent']);
    expect(r.unknown.map((u) => u.tag)).toEqual(['nope', 'queue']);
  });
  it('accepts a template without tags', () => expect(scanTags('<p>Thanks!</p>', AUTO_REPLY_TAGS)).toEqual({ used: [], unknown: [] }));
});

describe('renderTags', () => {
  it('escapes values in HTML and leaves no raw tag behind', () => {
    const out = renderTags('<p>Hi @{consumer} — ticket @{ticket_id}</p>', { consumer: '<script>x</script>', ticket_id: null }, { html: true });
    expect(out).toBe('<p>Hi &lt;script&gt;x&lt;/script&gt; — ticket </p>');
    expect(renderTags('Hi @{consumer}', { consumer: 'A&B' }, { html: false })).toBe('Hi A&B');
  });
});

describe('autoReplyValues', () => {
  const hours = {
    timeZone: 'Europe/Paris',
    weekly: { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']], wed: [['09:00', '17:00']], thu: [['09:00', '17:00']], fri: [['09:00', '17:00']], sat: [], sun: [] },
    holidays: ['2026-12-28'],
  } as const;
  it('writes date and time in the queue time zone and skips weekends and holidays for the next working date', () => {
    // Friday 2026-12-25 23:30 UTC = Saturday 00:30 in Paris; next working day: Tuesday 29 (Monday 28 is a holiday).
    const v = autoReplyValues({
      consumerFirstName: 'Ann',
      agentFirstName: null,
      queueName: 'Support',
      companyName: 'Acme',
      ticketId: '42',
      now: Date.UTC(2026, 11, 25, 23, 30),
      hours: JSON.parse(JSON.stringify(hours)),
      language: 'en',
    });
    expect(v.date).toBe('December 26, 2026');
    expect(v.time).toBe('12:30 AM');
    expect(v.next_working_date).toBe('Tuesday, December 29, 2026');
    expect(v.ticket_id).toBe('42');
    expect(v.agent).toBe('');
  });
  it('follows the queue language', () => {
    const v = autoReplyValues({ consumerFirstName: null, agentFirstName: null, queueName: 'Q', companyName: 'C', ticketId: null, now: Date.UTC(2026, 0, 5, 10), hours: null, language: 'fr' });
    expect(v.date).toBe('5 janvier 2026');
  });
});

describe('firstName', () => {
  it.each([
    ['Ann Customer', 'Ann'],
    ['"Doe, John"', 'John'],
    ['ann@example.com', null],
    ['', null],
    [undefined, null],
  ])('%s → %s', (input, expected) => expect(firstName(input)).toBe(expected));
});

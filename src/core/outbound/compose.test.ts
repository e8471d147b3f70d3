// Outbound subjects and headers [R-GLB-2, R-GLB-3, R-ARP-4, R-AGT-3, R-REL-4].
import { describe, expect, it } from 'vitest';
import { autoReplySubject, headerUnsafe, replySubject, threadingHeaders } from './compose.js';

const base = { sessionId: 'S7K2M9QX4TB', sessionSubject: 'Printer broken', firstAgentReply: true };

describe('replySubject', () => {
  it('adds the session token on the first agent reply only [R-GLB-2]', () => {
    const settings = { addSessionId: true, agentsCanEdit: false };
    expect(replySubject({ ...base, requested: undefined, settings })).toEqual({ ok: true, subject: 'Re: Printer broken [#S7K2M9QX4TB]', edited: false });
    expect(replySubject({ ...base, firstAgentReply: false, requested: undefined, settings })).toEqual({ ok: true, subject: 'Re: Printer broken', edited: false });
  });
  it('lets agents edit the subject only when allowed [R-GLB-3]', () => {
    expect(replySubject({ ...base, requested: 'New title', settings: { addSessionId: false, agentsCanEdit: true } })).toEqual({ ok: true, subject: 'New title', edited: true });
    const refused = replySubject({ ...base, requested: 'New title', settings: { addSessionId: false, agentsCanEdit: false } });
    expect(refused.ok).toBe(false);
    expect(replySubject({ ...base, requested: 'Re: Printer broken', settings: { addSessionId: false, agentsCanEdit: false } }).ok).toBe(true);
  });
  it('refuses line breaks in a requested subject', () => {
    expect(replySubject({ ...base, requested: 'x\r\nBcc: evil@example.com', settings: { addSessionId: false, agentsCanEdit: true } }).ok).toBe(false);
  });
  it('does not stack Re: prefixes', () => {
    expect(replySubject({ ...base, sessionSubject: 'RE: Invoice', requested: undefined, settings: { addSessionId: false, agentsCanEdit: false } })).toMatchObject({ subject: 'RE: Invoice' });
  });
});

describe('auto-reply subject and threading headers', () => {
  it('is always RE: + the original subject [R-ARP-4]', () => {
    expect(autoReplySubject('Printer broken')).toBe('RE: Printer broken');
    expect(autoReplySubject('Re: Printer broken')).toBe('RE: Re: Printer broken');
  });
  it('threads on the message replied to and keeps References bounded', () => {
    expect(threadingHeaders(['a@x', 'b@x', 'c@x'], 'b@x')).toEqual({ inReplyTo: 'b@x', references: ['a@x', 'b@x', 'c@x'] });
    const many = Array.from({ length: 50 }, (_, i) => `m${i}@x`);
    const h = threadingHeaders(many, null, 20);
    expect(h.inReplyTo).toBe('m49@x');
    expect(h.references).toHaveLength(20);
    expect(h.references[0]).toBe('m0@x');
    expect(h.references.at(-1)).toBe('m49@x');
  });
  it('flags header injection', () => {
    expect(headerUnsafe('a\nb')).toBe(true);
    expect(headerUnsafe('a\0b')).toBe(true);
    expect(headerUnsafe('Ann Customer')).toBe(false);
  });
});

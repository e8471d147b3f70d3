// Threading [R-SES-2]: In-Reply-To, every References id, our Message-IDs, subject token, subject window.
import { describe, expect, it } from 'vitest';
import { decideThread, makeMessageId, normalizeMessageId, normalizeSubject, sessionIdFromMessageId, splitMessageIds, subjectToken, threadKeys, withSubjectToken } from './match.js';

const base = { messageId: '<new@client>', inReplyTo: [] as string[], references: [] as string[], subject: 'Printer broken', from: 'Ann@Example.com' };
const none = { sessionByMessageId: new Map<string, string>(), existingSessions: new Set<string>() };

describe('threading', () => {
  it('matches In-Reply-To first', () => {
    const keys = threadKeys({ ...base, inReplyTo: ['a@x'], references: ['b@x'] });
    expect(decideThread(keys, { ...none, sessionByMessageId: new Map([['a@x', 'S1111111111'], ['b@x', 'S2222222222']]) })).toEqual({ sessionId: 'S1111111111', via: 'in_reply_to' });
  });
  it('matches any id of References when In-Reply-To is unknown (Outlook), newest first', () => {
    const keys = threadKeys({ ...base, inReplyTo: ['unknown@outlook'], references: ['old@x', 'mid@x', 'unknown@outlook'] });
    const found = { ...none, sessionByMessageId: new Map([['old@x', 'S1111111111'], ['mid@x', 'S2222222222']]) };
    expect(decideThread(keys, found)).toEqual({ sessionId: 'S2222222222', via: 'references' });
  });
  it('recognizes our own Message-IDs even when the id was never stored (edited subject)', () => {
    const ours = makeMessageId('S7K2M9QX4TB', 'mail.example.com', 'abc123');
    expect(ours).toBe('<s.S7K2M9QX4TB.abc123@mail.example.com>');
    const keys = threadKeys({ ...base, subject: 'Something else entirely', inReplyTo: [normalizeMessageId(ours) ?? ''] });
    expect(decideThread(keys, { ...none, existingSessions: new Set(['S7K2M9QX4TB']) })).toEqual({ sessionId: 'S7K2M9QX4TB', via: 'our_message_id' });
    expect(decideThread(keys, none)).toBeNull();
  });
  it('falls back to the subject token, then the subject window, then a new session', () => {
    const keys = threadKeys({ ...base, subject: 'RE: Printer broken [#S7K2M9QX4TB]' });
    expect(decideThread(keys, { ...none, existingSessions: new Set(['S7K2M9QX4TB']) })).toEqual({ sessionId: 'S7K2M9QX4TB', via: 'subject_token' });
    expect(decideThread(keys, { ...none, subjectWindowMatch: 'S9999999999' })).toEqual({ sessionId: 'S9999999999', via: 'subject_window' });
    expect(decideThread(keys, none)).toBeNull();
  });
  it('ignores a token for a session that does not exist', () => {
    expect(decideThread(threadKeys({ ...base, subject: '[#SZZZZZZZZZZ] hi' }), none)).toBeNull();
  });
  it('never matches a mail to itself', () => {
    const keys = threadKeys({ ...base, messageId: '<self@x>', inReplyTo: ['self@x'] });
    expect(keys.messageIds).toEqual([]);
  });
});

describe('helpers', () => {
  it('split and normalize message ids from messy headers', () => {
    expect(splitMessageIds('<a@x> <b@y>\r\n\t<c@z>')).toEqual(['a@x', 'b@y', 'c@z']);
    expect(splitMessageIds('a@x, b@y')).toEqual(['a@x', 'b@y']);
    expect(splitMessageIds(['<a@x>', '<a@x>'])).toEqual(['a@x']);
    expect(splitMessageIds(undefined)).toEqual([]);
    expect(normalizeMessageId('  <<x@y>> ')).toBe('x@y');
    expect(normalizeMessageId('<>')).toBeNull();
  });
  it('normalizes subjects across languages and our token', () => {
    expect(normalizeSubject('RE: Fwd: AW: WG:  Printer   broken [#S7K2M9QX4TB]')).toBe('printer broken');
    expect(normalizeSubject('SV: Réf : Tr: Imprimante')).toBe('imprimante');
    expect(normalizeSubject('Re[2]: Hello')).toBe('hello');
    expect(normalizeSubject('Return policy')).toBe('return policy');
  });
  it('adds the subject token once', () => {
    expect(withSubjectToken('Re: Printer', 'S7K2M9QX4TB')).toBe('Re: Printer [#S7K2M9QX4TB]');
    expect(withSubjectToken('Re: Printer [#S7K2M9QX4TB]', 'S7K2M9QX4TB')).toBe('Re: Printer [#S7K2M9QX4TB]');
    expect(subjectToken('x [#S7K2M9QX4TB] y')).toBe('S7K2M9QX4TB');
    expect(sessionIdFromMessageId('s.S7K2M9QX4TB.r4nd@h')).toBe('S7K2M9QX4TB');
    expect(sessionIdFromMessageId('random@h')).toBeNull();
  });
});

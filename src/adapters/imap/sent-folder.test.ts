// Unit tests for choosing the Sent folder from a LIST answer (the IMAP append itself is tested in src/adapters/smtp/sender.test.ts).
import { describe, expect, it } from 'vitest';
import { pickSentFolder } from './sent-folder.js';

const box = (path: string, flags: string[] = [], specialUse?: string, specialUseSource?: 'user' | 'extension' | 'name') => ({
  path,
  flags: new Set(flags),
  ...(specialUse ? { specialUse } : {}),
  ...(specialUseSource ? { specialUseSource } : {}),
});

describe('pickSentFolder', () => {
  it('prefers the server-flagged \\Sent folder', () => {
    expect(pickSentFolder([box('INBOX'), box('Sent'), box('Gesendet', ['\\Sent'], '\\Sent', 'extension')])).toBe('Gesendet');
  });
  it('falls back to common names, case-insensitively', () => {
    expect(pickSentFolder([box('INBOX'), box('Sent Items')])).toBe('Sent Items');
    expect(pickSentFolder([box('INBOX'), box('INBOX.Sent')])).toBe('INBOX.Sent');
    expect(pickSentFolder([box('INBOX'), box('sent messages')])).toBe('sent messages');
    expect(pickSentFolder([box('INBOX'), box('Sent', ['\\Noselect']), box('Sent Items')])).toBe('Sent Items');
  });
  it('uses a name-based guess last, and null when there is none', () => {
    expect(pickSentFolder([box('INBOX'), box('Elementos enviados', [], '\\Sent', 'name')])).toBe('Elementos enviados');
    expect(pickSentFolder([box('INBOX'), box('Drafts', ['\\Drafts'])])).toBeNull();
  });
});

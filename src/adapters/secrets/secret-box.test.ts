// Secrets at rest [R-REL-4, R-ACC-2]: AES-256-GCM, random IV, wrong key and tampering detected.
import { describe, expect, it } from 'vitest';
import { AesGcmSecretBox, generateSecretKey, parseSecretKey } from './secret-box.js';
import { mergeSecrets, openSecret, redactSecrets } from '../../app/secret-fields.js';

const key = parseSecretKey(generateSecretKey());

describe('AesGcmSecretBox', () => {
  it('seals and opens, never storing the plaintext, with a fresh IV each time', async () => {
    const box = new AesGcmSecretBox(key);
    const a = await box.seal('hunter2 — pässwörd');
    const b = await box.seal('hunter2 — pässwörd');
    expect(a).not.toContain('hunter2');
    expect(a).not.toBe(b);
    expect(await box.open(a)).toBe('hunter2 — pässwörd');
  });
  it('refuses another key with a clear message, and tampered text', async () => {
    const sealed = await new AesGcmSecretBox(key).seal('secret');
    const other = new AesGcmSecretBox(parseSecretKey(generateSecretKey()));
    await expect(other.open(sealed)).rejects.toThrow(/another key/);
    const parts = sealed.split(':');
    const ct = Buffer.from(parts[3] ?? '', 'base64');
    ct[0] = (ct[0] ?? 0) ^ 1;
    await expect(new AesGcmSecretBox(key).open([parts[0], parts[1], parts[2], ct.toString('base64')].join(':'))).rejects.toThrow();
  });
  it('accepts hex or base64 keys of 32 bytes only', () => {
    expect(parseSecretKey('ab'.repeat(32))).toHaveLength(32);
    expect(parseSecretKey(Buffer.alloc(32, 7).toString('base64'))).toHaveLength(32);
    expect(() => parseSecretKey('short')).toThrow(/SECRET_KEY/);
    expect(() => parseSecretKey('ab'.repeat(16))).toThrow(/SECRET_KEY/);
  });
});

describe('write-only secret fields [SPEC §11b]', () => {
  const box = new AesGcmSecretBox(key);
  it('seal on write, keep when omitted, clear on null, and show only <field>Set', async () => {
    const first = await mergeSecrets(undefined, { host: 'imap.example.com', password: 'p1' }, ['password'], box);
    expect(JSON.stringify(first)).not.toContain('p1');
    expect(await openSecret(first, 'password', box)).toBe('p1');
    expect(redactSecrets(first, ['password'])).toEqual({ host: 'imap.example.com', passwordSet: true });

    const kept = await mergeSecrets(first, { host: 'imap2.example.com' }, ['password'], box);
    expect(await openSecret(kept, 'password', box)).toBe('p1');

    const replaced = await mergeSecrets(kept, { host: 'imap2.example.com', password: 'p2' }, ['password'], box);
    expect(await openSecret(replaced, 'password', box)).toBe('p2');

    const cleared = await mergeSecrets(replaced, { host: 'x', password: null }, ['password'], box);
    expect(redactSecrets(cleared, ['password'])).toEqual({ host: 'x', passwordSet: false });
  });
  it('handles nested paths', async () => {
    const doc = await mergeSecrets(undefined, { s3: { accessKeyId: 'AK', secretAccessKey: 'SK' } }, ['s3.secretAccessKey'], box);
    expect(redactSecrets(doc, ['s3.secretAccessKey'])).toEqual({ s3: { accessKeyId: 'AK', secretAccessKeySet: true } });
  });
});

// Attachment rules [R-ARP-2]: allowed types by extension and magic bytes, counts, combined sizes.
import { describe, expect, it } from 'vitest';
import { checkAttachments, classifyFile, MAX_COMBINED_BYTES } from './attachments.js';

const bytes = (...xs: (number | string)[]) => new Uint8Array(xs.flatMap((x) => (typeof x === 'string' ? Array.from(x, (c) => c.charCodeAt(0)) : [x])));
const PNG = bytes(0x89, 'PNG', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0);
const JPG = bytes(0xff, 0xd8, 0xff, 0xe0);
const PDF = bytes('%PDF-1.7\n');
const EXE = bytes('MZ', 0x90, 0);

describe('classifyFile', () => {
  it.each([
    ['photo.JPG', JPG],
    ['photo.jpeg', JPG],
    ['logo.png', PNG],
    ['anim.gif', bytes('GIF89a')],
    ['scan.tiff', bytes(0x49, 0x49, 0x2a, 0)],
    ['img.webp', bytes('RIFF', 0, 0, 0, 0, 'WEBP')],
    ['clip.mp4', bytes(0, 0, 0, 0x18, 'ftypmp42')],
    ['clip.mov', bytes(0, 0, 0, 0x14, 'ftypqt  ')],
    ['clip.avi', bytes('RIFF', 0, 0, 0, 0, 'AVI ')],
    ['clip.webm', bytes(0x1a, 0x45, 0xdf, 0xa3)],
    ['song.mp3', bytes('ID3', 4)],
    ['memo.wav', bytes('RIFF', 0, 0, 0, 0, 'WAVE')],
    ['invoice.pdf', PDF],
    ['old.doc', bytes(0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1)],
    ['new.xlsx', bytes('PK', 3, 4)],
    ['data.csv', bytes('a,b\n1,2\n')],
    ['notes.txt', bytes('hello')],
  ])('allows %s', (name, head) => expect(classifyFile(name, head).ok).toBe(true));

  it('refuses types outside the list, and content that does not match its extension', () => {
    expect(classifyFile('setup.exe', EXE)).toEqual({ ok: false, reason: 'type_not_allowed' });
    expect(classifyFile('archive.zip', bytes('PK', 3, 4))).toEqual({ ok: false, reason: 'type_not_allowed' });
    expect(classifyFile('invoice.pdf', EXE)).toEqual({ ok: false, reason: 'content_mismatch' });
    expect(classifyFile('notes.txt', bytes('MZ', 0, 0))).toEqual({ ok: false, reason: 'content_mismatch' });
    expect(classifyFile('noextension', PDF)).toEqual({ ok: false, reason: 'type_not_allowed' });
  });
});

describe('checkAttachments', () => {
  it('accepts up to 10 files and 10 inline images within 25 MB each', () => {
    const files = Array.from({ length: 10 }, (_, i) => ({ filename: `f${i}.pdf`, size: 2_000_000, head: PDF, inline: false }));
    const images = Array.from({ length: 10 }, (_, i) => ({ filename: `i${i}.png`, size: 2_000_000, head: PNG, inline: true }));
    expect(checkAttachments([...files, ...images])).toEqual([]);
  });
  it('names the file and the rule for each refusal', () => {
    const refusals = checkAttachments([
      { filename: 'virus.exe', size: 10, head: EXE, inline: false },
      { filename: 'fake.pdf', size: 10, head: EXE, inline: false },
      { filename: 'doc.pdf', size: 10, head: PDF, inline: true },
    ]);
    expect(refusals.map((r) => [r.filename, r.rule])).toEqual([
      ['virus.exe', 'type_not_allowed'],
      ['fake.pdf', 'content_mismatch'],
      ['doc.pdf', 'inline_not_image'],
    ]);
    expect(refusals[0]?.message).toContain('virus.exe');
  });
  it('refuses an 11th file, an 11th inline image, and combined sizes over 25 MB', () => {
    const eleven = Array.from({ length: 11 }, (_, i) => ({ filename: `f${i}.txt`, size: 1, head: bytes('x'), inline: false }));
    expect(checkAttachments(eleven).map((r) => r.rule)).toEqual(['too_many_files']);
    const inline = Array.from({ length: 11 }, (_, i) => ({ filename: `i${i}.jpg`, size: 1, head: JPG, inline: true }));
    expect(checkAttachments(inline).map((r) => r.rule)).toEqual(['too_many_inline_images']);
    const big = [
      { filename: 'a.pdf', size: MAX_COMBINED_BYTES / 2 + 1, head: PDF, inline: false },
      { filename: 'b.pdf', size: MAX_COMBINED_BYTES / 2 + 1, head: PDF, inline: false },
    ];
    expect(checkAttachments(big).map((r) => r.rule)).toEqual(['files_too_large']);
  });
});

// Reads the attached files of a stored raw message (for the CRM record's first comment), bounded in count and bytes.
import { simpleParser } from 'mailparser';
import type { FileRef } from '../../core/crm.js';

export async function readAttachments(raw: Uint8Array, opts: { maxFiles?: number; maxBytes?: number } = {}): Promise<FileRef[]> {
  const maxFiles = opts.maxFiles ?? 10;
  let budget = opts.maxBytes ?? 25 * 1024 * 1024;
  const parsed = await simpleParser(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const out: FileRef[] = [];
  for (const a of parsed.attachments) {
    // Inline images belong to the body (the PDF shows them); attached files travel to the CRM.
    if (a.contentDisposition === 'inline' || a.related) continue;
    if (out.length >= maxFiles || a.content.byteLength > budget) break;
    budget -= a.content.byteLength;
    out.push({
      filename: (a.filename ?? 'attachment').replace(/[\u0000-\u001f\u007f/\\]/g, '').slice(0, 255) || 'attachment',
      contentType: (a.contentType ?? 'application/octet-stream').toLowerCase(),
      bytes: new Uint8Array(a.content.buffer, a.content.byteOffset, a.content.byteLength),
    });
  }
  return out;
}

// Reads the inline images (Content-ID → bytes) of a stored raw message, for `cid:` images in PDF transcripts.
import { simpleParser } from 'mailparser';

export interface InlineImage {
  contentId: string;
  contentType: string;
  data: Uint8Array;
}

/** Raster images that carry a Content-ID; anything else (SVG included: it can reference URLs) is left out. */
export async function readInlineImages(raw: Uint8Array): Promise<InlineImage[]> {
  const parsed = await simpleParser(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const out: InlineImage[] = [];
  for (const a of parsed.attachments) {
    const cid = (a.cid ?? a.contentId ?? '').replace(/^<|>$/g, '').trim();
    if (!cid || !/^image\/(?:png|jpeg|jpg|gif|webp|bmp)$/i.test(a.contentType)) continue;
    out.push({ contentId: cid, contentType: a.contentType.toLowerCase(), data: new Uint8Array(a.content.buffer, a.content.byteOffset, a.content.byteLength) });
  }
  return out;
}

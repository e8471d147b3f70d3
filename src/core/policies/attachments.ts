// Attachment rules (R-ARP-2, R-SIG-4, R-AGT-2): at most 10 inline images and 10 files, 25 MB combined
// each, allowed types only — by extension AND by the content's magic bytes. Refusals name the file and rule.

export const MAX_FILES = 10;
export const MAX_INLINE_IMAGES = 10;
export const MAX_COMBINED_BYTES = 25 * 1024 * 1024;

type Kind = 'image' | 'video' | 'audio' | 'document';

interface TypeRule {
  kind: Kind;
  extensions: string[];
  contentType: string;
  /** Does the content look like this type? (text types: no NUL bytes in the first 8 KiB) */
  sniff: (b: Uint8Array) => boolean;
}

const starts = (b: Uint8Array, sig: number[], at = 0) => sig.every((v, i) => b[at + i] === v);
const ascii = (b: Uint8Array, text: string, at = 0) => starts(b, Array.from(text, (c) => c.charCodeAt(0)), at);
const OLE = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]; // legacy Office (DOC, XLS, PPT)
const ZIP = [0x50, 0x4b, 0x03, 0x04]; // OOXML (DOCX, XLSX, PPTX)
const isText = (b: Uint8Array) => !b.subarray(0, 8192).includes(0);
const riff = (b: Uint8Array, type: string) => ascii(b, 'RIFF') && ascii(b, type, 8);
const isoBmff = (b: Uint8Array) => ascii(b, 'ftyp', 4);

/** The allowed types of R-ARP-2 (RAW covers the common camera formats, which are TIFF-based or own signatures). */
export const TYPE_RULES: TypeRule[] = [
  { kind: 'image', extensions: ['jpg', 'jpeg'], contentType: 'image/jpeg', sniff: (b) => starts(b, [0xff, 0xd8, 0xff]) },
  { kind: 'image', extensions: ['png'], contentType: 'image/png', sniff: (b) => starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { kind: 'image', extensions: ['gif'], contentType: 'image/gif', sniff: (b) => ascii(b, 'GIF87a') || ascii(b, 'GIF89a') },
  { kind: 'image', extensions: ['tif', 'tiff'], contentType: 'image/tiff', sniff: (b) => starts(b, [0x49, 0x49, 0x2a, 0x00]) || starts(b, [0x4d, 0x4d, 0x00, 0x2a]) },
  {
    kind: 'image',
    extensions: ['raw', 'cr2', 'nef', 'arw', 'dng', 'orf', 'rw2', 'raf'],
    contentType: 'image/x-raw',
    sniff: (b) => starts(b, [0x49, 0x49, 0x2a, 0x00]) || starts(b, [0x4d, 0x4d, 0x00, 0x2a]) || ascii(b, 'FUJIFILMCCD-RAW') || starts(b, [0x49, 0x49, 0x55, 0x00]) || ascii(b, 'IIRO'),
  },
  { kind: 'image', extensions: ['webp'], contentType: 'image/webp', sniff: (b) => riff(b, 'WEBP') },
  { kind: 'video', extensions: ['mp4', 'm4v'], contentType: 'video/mp4', sniff: isoBmff },
  { kind: 'video', extensions: ['mov'], contentType: 'video/quicktime', sniff: (b) => isoBmff(b) || ascii(b, 'moov', 4) || ascii(b, 'mdat', 4) || ascii(b, 'wide', 4) },
  { kind: 'video', extensions: ['avi'], contentType: 'video/x-msvideo', sniff: (b) => riff(b, 'AVI ') },
  { kind: 'video', extensions: ['wmv'], contentType: 'video/x-ms-wmv', sniff: (b) => starts(b, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11]) },
  { kind: 'video', extensions: ['webm'], contentType: 'video/webm', sniff: (b) => starts(b, [0x1a, 0x45, 0xdf, 0xa3]) },
  { kind: 'audio', extensions: ['mp3'], contentType: 'audio/mpeg', sniff: (b) => ascii(b, 'ID3') || (b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0) },
  { kind: 'audio', extensions: ['wav'], contentType: 'audio/wav', sniff: (b) => riff(b, 'WAVE') },
  { kind: 'document', extensions: ['pdf'], contentType: 'application/pdf', sniff: (b) => ascii(b, '%PDF-') },
  { kind: 'document', extensions: ['doc'], contentType: 'application/msword', sniff: (b) => starts(b, OLE) },
  { kind: 'document', extensions: ['docx'], contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', sniff: (b) => starts(b, ZIP) },
  { kind: 'document', extensions: ['xls'], contentType: 'application/vnd.ms-excel', sniff: (b) => starts(b, OLE) },
  { kind: 'document', extensions: ['xlsx'], contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', sniff: (b) => starts(b, ZIP) },
  { kind: 'document', extensions: ['ppt'], contentType: 'application/vnd.ms-powerpoint', sniff: (b) => starts(b, OLE) },
  { kind: 'document', extensions: ['pptx'], contentType: 'application/vnd.openxmlformats-officedocument.presentationml.presentation', sniff: (b) => starts(b, ZIP) },
  { kind: 'document', extensions: ['csv'], contentType: 'text/csv', sniff: isText },
  { kind: 'document', extensions: ['txt'], contentType: 'text/plain', sniff: isText },
];

export interface CandidateFile {
  filename: string;
  size: number;
  /** The first bytes of the content (at least 64; 8 KiB for text checks). */
  head: Uint8Array;
  /** Inline image (CID) in the body, or an attached file. */
  inline: boolean;
}

export interface AttachmentRefusal {
  /** Index of the file in the list, or -1 for a rule on the whole set. */
  index: number;
  filename: string;
  rule: 'type_not_allowed' | 'content_mismatch' | 'too_many_files' | 'too_many_inline_images' | 'files_too_large' | 'inline_images_too_large' | 'inline_not_image';
  message: string;
}

export function extensionOf(filename: string): string {
  const m = /\.([A-Za-z0-9]{1,8})$/.exec(filename.trim());
  return m?.[1]?.toLowerCase() ?? '';
}

/** The rule a file satisfies, by extension and content; or why not. */
export function classifyFile(filename: string, head: Uint8Array): { ok: true; rule: TypeRule } | { ok: false; reason: 'type_not_allowed' | 'content_mismatch' } {
  const ext = extensionOf(filename);
  const byExt = TYPE_RULES.filter((r) => r.extensions.includes(ext));
  if (byExt.length === 0) return { ok: false, reason: 'type_not_allowed' };
  const match = byExt.find((r) => r.sniff(head));
  return match ? { ok: true, rule: match } : { ok: false, reason: 'content_mismatch' };
}

const mb = (n: number) => `${Math.round((n / 1024 / 1024) * 10) / 10} MB`;

/** All refusals for a set of files (empty = allowed). */
export function checkAttachments(files: CandidateFile[]): AttachmentRefusal[] {
  const out: AttachmentRefusal[] = [];
  const allowedList = 'JPEG, JPG, PNG, GIF, TIFF, RAW, WebP, MP4, MOV, AVI, WMV, WebM, MP3, WAV, PDF, DOC, XLS, PPT, CSV, TXT';
  files.forEach((f, index) => {
    const c = classifyFile(f.filename, f.head);
    if (!c.ok) {
      out.push({
        index,
        filename: f.filename,
        rule: c.reason,
        message:
          c.reason === 'type_not_allowed'
            ? `${f.filename}: this file type is not allowed (allowed: ${allowedList})`
            : `${f.filename}: the content is not a .${extensionOf(f.filename)} file`,
      });
    } else if (f.inline && c.rule.kind !== 'image') {
      out.push({ index, filename: f.filename, rule: 'inline_not_image', message: `${f.filename}: only images can be inline` });
    }
  });
  const inline = files.filter((f) => f.inline);
  const attached = files.filter((f) => !f.inline);
  if (attached.length > MAX_FILES) out.push({ index: -1, filename: '', rule: 'too_many_files', message: `${attached.length} files attached; at most ${MAX_FILES}` });
  if (inline.length > MAX_INLINE_IMAGES) out.push({ index: -1, filename: '', rule: 'too_many_inline_images', message: `${inline.length} inline images; at most ${MAX_INLINE_IMAGES}` });
  const attachedBytes = attached.reduce((s, f) => s + f.size, 0);
  const inlineBytes = inline.reduce((s, f) => s + f.size, 0);
  if (attachedBytes > MAX_COMBINED_BYTES) out.push({ index: -1, filename: '', rule: 'files_too_large', message: `attached files total ${mb(attachedBytes)}; at most ${mb(MAX_COMBINED_BYTES)} combined` });
  if (inlineBytes > MAX_COMBINED_BYTES) out.push({ index: -1, filename: '', rule: 'inline_images_too_large', message: `inline images total ${mb(inlineBytes)}; at most ${mb(MAX_COMBINED_BYTES)} combined` });
  return out;
}

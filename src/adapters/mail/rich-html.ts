// Rich text for signatures and auto-reply templates (R-SIG-1..4, R-ARP-1/2): sanitizing, embedding
// data: images as CID attachments with limits, and the plain-text alternative.
import { createHash } from 'node:crypto';
import { convert } from 'html-to-text';
import sanitizeHtml from 'sanitize-html';

export interface InlineImage {
  /** Content-ID without brackets: `<hash>@<cidDomain>`; the HTML refers to it as `cid:<cid>`. */
  cid: string;
  filename: string;
  contentType: string;
  content: Uint8Array;
}

export interface InlineImageOptions {
  /** Largest decoded size of one image, in bytes. */
  maxImageBytes: number;
  /** Most distinct images (identical images count once). */
  maxImages: number;
  /** Largest combined decoded size of the distinct images, in bytes. */
  maxTotalBytes: number;
  /** Right-hand side of the generated Content-IDs, e.g. the sending domain. */
  cidDomain: string;
  /** How error messages name one image (default `an inline image`; e.g. `a signature image`). */
  imageLabel?: string;
}

export type InlineImagesResult = { html: string; images: InlineImage[] } | { error: { index: number; message: string } };

const IMAGE_TYPES = {
  'image/png': { label: 'PNG', ext: 'png' },
  'image/jpeg': { label: 'JPEG', ext: 'jpg' },
  'image/gif': { label: 'GIF', ext: 'gif' },
  'image/webp': { label: 'WebP', ext: 'webp' },
} as const;
type ImageType = keyof typeof IMAGE_TYPES;

/** The data: URLs an image may carry: base64 PNG, JPEG, GIF or WebP. */
const ALLOWED_DATA_URL = /^data:image\/(?:png|jpe?g|gif|webp);base64,[A-Za-z0-9+/=\s]*$/i;
const LINK_SCHEMES = /^(?:https?:|mailto:)/i;
const CID_SRC = /^cid:[^\s"'<>]+$/i;

const COLOR = [
  /^#[0-9a-f]{3,8}$/i,
  /^rgba?\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*(?:,\s*(?:0|1|0?\.\d{1,4}|\d{1,3}%))?\s*\)$/i,
  /^hsla?\(\s*\d{1,3}(?:deg)?\s*,\s*\d{1,3}%\s*,\s*\d{1,3}%\s*(?:,\s*(?:0|1|0?\.\d{1,4}|\d{1,3}%))?\s*\)$/i,
  /^[a-z]{3,20}$/i,
];

const ALLOWED_STYLES: Record<string, RegExp[]> = {
  color: COLOR,
  'background-color': COLOR,
  'font-weight': [/^(?:normal|bold|bolder|lighter|[1-9]00)$/i],
  'font-style': [/^(?:normal|italic|oblique)$/i],
  'text-decoration': [/^(?:none|underline|overline|line-through)(?:\s+(?:underline|overline|line-through))*$/i],
  'text-align': [/^(?:left|right|center|justify|start|end)$/i],
  'font-size': [/^(?:\d{1,3}(?:\.\d{1,2})?(?:px|pt|em|rem|%)|xx-small|x-small|small|medium|large|x-large|xx-large|smaller|larger)$/i],
};

const ALLOWED_TAGS = [
  'b', 'strong', 'i', 'em', 'u', 's', 'strike', 'del',
  'p', 'br', 'div', 'span', 'a',
  'ul', 'ol', 'li',
  'h1', 'h2', 'h3', 'h4',
  'blockquote',
  'table', 'thead', 'tbody', 'tr', 'td', 'th',
  'img',
];

/** Tags whose content is dropped with them (not kept as text). */
const NON_TEXT_TAGS = ['script', 'style', 'textarea', 'option', 'xmp', 'noscript', 'iframe', 'object', 'embed', 'template', 'title', 'head', 'svg', 'math', 'select'];

/** Decides the `src` of each `<img>` (called for every one, in document order): the new value, or null to drop it. */
type ImageHook = (src: string) => string | null;

function options(imageHook?: ImageHook): sanitizeHtml.IOptions {
  return {
    allowedTags: ALLOWED_TAGS,
    allowedAttributes: {
      '*': ['style'],
      a: ['href', 'rel'],
      img: ['src', 'alt', 'width', 'height'],
      td: ['colspan', 'rowspan'],
      th: ['colspan', 'rowspan'],
    },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['cid', 'data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src'],
    allowProtocolRelative: false,
    allowedStyles: { '*': ALLOWED_STYLES },
    disallowedTagsMode: 'discard',
    nonTextTags: NON_TEXT_TAGS,
    transformTags: {
      a: (tagName, attribs) => {
        const out: sanitizeHtml.Attributes = {};
        const href = (attribs['href'] ?? '').trim();
        if (LINK_SCHEMES.test(href)) {
          out['href'] = href;
          out['rel'] = 'noopener';
        }
        if (attribs['style']) out['style'] = attribs['style'];
        return { tagName, attribs: out };
      },
      img: (tagName, attribs) => {
        const src = (attribs['src'] ?? '').trim();
        const kept = imageHook ? imageHook(src) : allowedImageSrc(src);
        // Same attribute order, src replaced in place (or left out: the image is then dropped).
        const out: sanitizeHtml.Attributes = {};
        for (const [name, value] of Object.entries(attribs)) {
          if (name !== 'src') out[name] = value;
          else if (kept) out[name] = kept;
        }
        return { tagName, attribs: out };
      },
    },
    // An image whose source was refused goes away entirely.
    exclusiveFilter: (frame) => frame.tag === 'img' && !frame.attribs['src'],
  };
}

/** cid: references and base64 PNG/JPEG/GIF/WebP data: URLs; remote or relative sources are refused. */
function allowedImageSrc(src: string): string | null {
  if (CID_SRC.test(src)) return src;
  if (ALLOWED_DATA_URL.test(src)) return src.replace(/\s+/g, '');
  return null;
}

/**
 * Sanitizes signature / auto-reply HTML: basic formatting, lists, headings, quotes, tables, links
 * (http, https, mailto; rel="noopener") and images (cid: or base64 PNG/JPEG/GIF/WebP data: URLs),
 * with a few harmless inline styles. Scripts, styles, frames and event handlers are removed.
 */
export function sanitizeRichHtml(html: string): string {
  return sanitizeHtml(String(html ?? ''), options());
}

/**
 * Replaces every `<img src="data:image/…;base64,…">` by `cid:<sha256>@<cidDomain>` and returns the
 * decoded images to attach. The HTML is sanitized on the way (same rules as sanitizeRichHtml, so
 * remote images are dropped and cid: ones kept). Identical images share one CID. Refuses, naming
 * the image (1-based, in document order among all `<img>` elements): a type other than PNG/JPEG/GIF/WebP, invalid base64, bytes that are not of
 * the declared type, one image over maxImageBytes, more than maxImages distinct images, or
 * distinct images totalling more than maxTotalBytes.
 */
export function inlineDataImages(html: string, opts: InlineImageOptions): InlineImagesResult {
  const domain = safeDomain(opts.cidDomain);
  const label = opts.imageLabel ?? 'an inline image';
  const byHash = new Map<string, InlineImage>();
  let total = 0;
  let index = 0;
  let error: { index: number; message: string } | null = null;

  const hook: ImageHook = (src) => {
    index++;
    if (error) return null;
    if (!/^data:/i.test(src)) return allowedImageSrc(src);
    const fail = (message: string): null => {
      error = { index, message: `image ${index} ${message}` };
      return null;
    };
    const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/is.exec(src);
    if (!m) return fail('is not a valid data: URL');
    const declared = normalizeType(m[1] ?? '');
    if (!declared) return fail(`has type ${(m[1] || 'unknown').toLowerCase()}; only PNG, JPEG, GIF or WebP images can be embedded`);
    if (!/;base64$/i.test(m[2] ?? '')) return fail('is not base64-encoded');
    const b64 = (m[3] ?? '').replace(/\s+/g, '');
    if (b64.length === 0 || b64.length % 4 === 1 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return fail('is not valid base64 data');
    // Refuse an oversized image before decoding it.
    const estimated = Math.floor((b64.replace(/=+$/, '').length * 3) / 4);
    if (estimated > opts.maxImageBytes) return fail(`is ${formatSize(estimated)}; ${label} may be at most ${formatLimit(opts.maxImageBytes)}`);
    const content = new Uint8Array(Buffer.from(b64, 'base64'));
    const actual = sniffImageType(content);
    if (!actual) return fail(`is not a valid ${IMAGE_TYPES[declared].label} image`);
    if (actual !== declared) return fail(`is declared as ${IMAGE_TYPES[declared].label} but its content is ${IMAGE_TYPES[actual].label}`);

    const hash = createHash('sha256').update(content).digest('hex');
    const existing = byHash.get(hash);
    if (existing) return `cid:${existing.cid}`;
    if (byHash.size + 1 > opts.maxImages) return fail(`is one too many: at most ${opts.maxImages} inline images are allowed`);
    if (total + content.length > opts.maxTotalBytes) {
      return fail(`brings the inline images to ${formatSize(total + content.length)}; together they may be at most ${formatLimit(opts.maxTotalBytes)}`);
    }
    total += content.length;
    const cid = `${hash.slice(0, 32)}@${domain}`;
    byHash.set(hash, { cid, filename: `image-${hash.slice(0, 12)}.${IMAGE_TYPES[actual].ext}`, contentType: actual, content });
    return `cid:${cid}`;
  };

  const out = sanitizeHtml(String(html ?? ''), options(hook));
  if (error) return { error };
  // Only images that made it into the output (not ones inside content dropped by the sanitizer).
  const images = [...byHash.values()].filter((img) => out.includes(`cid:${img.cid}`));
  return { html: out, images };
}

/** Plain-text alternative: links as `text [url]`, images dropped, wrapped at 78 columns. */
export function htmlToText(html: string): string {
  const text = convert(String(html ?? ''), {
    wordwrap: 78,
    // Table cells side by side on one line per row (signatures use layout tables: logo | details).
    formatters: {
      cell: (elem, walk, builder) => {
        walk(elem.children, builder);
        builder.addInline(' ');
      },
    },
    selectors: [
      { selector: 'a', options: { linkBrackets: ['[', ']'], hideLinkHrefIfSameAsText: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'script', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
      { selector: 'h4', options: { uppercase: false } },
      { selector: 'table', format: 'block' },
      { selector: 'tr', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
      { selector: 'td', format: 'cell' },
      { selector: 'th', format: 'cell' },
    ],
  });
  return text
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function normalizeType(raw: string): ImageType | null {
  const t = raw.trim().toLowerCase();
  if (t === 'image/jpg' || t === 'image/pjpeg') return 'image/jpeg';
  return t in IMAGE_TYPES ? (t as ImageType) : null;
}

/** The image type from the first bytes (magic numbers), or null. */
export function sniffImageType(b: Uint8Array): ImageType | null {
  const at = (i: number): number => b[i] ?? -1;
  if (b.length >= 8 && at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47 && at(4) === 0x0d && at(5) === 0x0a && at(6) === 0x1a && at(7) === 0x0a) return 'image/png';
  if (b.length >= 3 && at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return 'image/jpeg';
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'image/gif';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  return null;
}

function safeDomain(domain: string): string {
  const d = String(domain ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '')
    .replace(/^[.-]+|[.-]+$/g, '');
  return d || 'inline.invalid';
}

function formatSize(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.ceil(bytes / 1024)} KB`;
  return `${(Math.ceil((bytes / (1024 * 1024)) * 10) / 10).toFixed(1).replace(/\.0$/, '')} MB`;
}

function formatLimit(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.floor(bytes / 1024)} KB`;
  return `${(Math.floor((bytes / (1024 * 1024)) * 10) / 10).toFixed(1).replace(/\.0$/, '')} MB`;
}

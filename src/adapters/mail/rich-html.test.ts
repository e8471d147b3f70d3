// Tests for signature / auto-reply rich text: sanitizing, data: images → CID attachments, text alternative.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { htmlToText, inlineDataImages, sanitizeRichHtml, sniffImageType } from './rich-html.js';

// A real 1×1 PNG, and buffers that start with the other formats' magic numbers.
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d3f1a40000000049454e44ae426082',
  'hex',
);
const jpeg = (size = 64): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(Math.max(0, size - 4), 7)]);
const GIF = Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(20, 1)]);
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([30, 0, 0, 0]), Buffer.from('WEBPVP8 '), Buffer.alloc(20, 2)]);
const dataUrl = (type: string, bytes: Buffer): string => `data:${type};base64,${bytes.toString('base64')}`;

const LIMITS = { maxImageBytes: 512 * 1024, maxImages: 10, maxTotalBytes: 25 * 1024 * 1024, cidDomain: 'mail.example.com' };

function ok(result: ReturnType<typeof inlineDataImages>) {
  if ('error' in result) throw new Error(`unexpected error: ${result.error.message}`);
  return result;
}
function err(result: ReturnType<typeof inlineDataImages>) {
  if (!('error' in result)) throw new Error('expected an error');
  return result.error;
}

describe('sanitizeRichHtml', () => {
  it('removes scripts, styles, frames, event handlers and dangerous URLs', () => {
    const out = sanitizeRichHtml(
      `<div onclick="steal()">Hi<script>alert(1)</script><style>body{display:none}</style>` +
        `<iframe src="https://evil.example">frame text</iframe><object data="x">obj</object>` +
        `<a href="javascript:alert(1)">js</a><a href=" JaVaScRiPt:alert(1)">js2</a><a href="data:text/html,<b>x</b>">d</a>` +
        `<a href="/relative">rel</a><a href="//evil.example/x">proto</a><img src="x" onerror="alert(1)">` +
        `<img src="https://tracker.example/pixel.gif"><img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">` +
        `<img src="data:text/html;base64,PGI+">` +
        `<form action="https://evil.example"><input value="x"></form><svg><script>1</script></svg><!-- hidden --></div>`,
    );
    expect(out).not.toMatch(/script|alert|<style|display:none|iframe|frame text|object|onclick|onerror|javascript|<form|<input|<svg|hidden|tracker|svg\+xml|text\/html|relative|evil/i);
    expect(out).toContain('Hi');
    expect(out).not.toContain('<img');
    // Links without an acceptable href keep only their text.
    expect(out).toContain('<a>js</a>');
  });

  it('keeps the allowed formatting, links (with rel="noopener") and images', () => {
    const png = dataUrl('image/png', PNG);
    const html =
      '<p><b>b</b><strong>st</strong><i>i</i><em>em</em><u>u</u><s>s</s><strike>k</strike><del>d</del><br></p>' +
      '<div><span>sp</span></div><ul><li>one</li></ul><ol><li>two</li></ol>' +
      '<h1>h1</h1><h2>h2</h2><h3>h3</h3><h4>h4</h4><h5>h5</h5><blockquote>q</blockquote>' +
      '<table><thead><tr><th>H</th></tr></thead><tbody><tr><td colspan="2">C</td></tr></tbody></table>' +
      '<a href="https://example.com/a?b=1" target="_blank">web</a><a href="http://example.com">http</a><a href="mailto:jane@example.com">mail</a>' +
      `<img src="cid:logo@mail.example.com" alt="Logo" width="120" height="40" title="t"><img src="${png}" alt="px">`;
    const out = sanitizeRichHtml(html);
    for (const tag of ['b', 'strong', 'i', 'em', 'u', 's', 'strike', 'del', 'p', 'div', 'span', 'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'blockquote', 'table', 'thead', 'tbody', 'tr', 'th', 'td']) {
      expect(out, tag).toContain(`<${tag}`);
    }
    expect(out).toContain('<br />');
    expect(out).not.toContain('<h5');
    expect(out).toContain('h5'); // text kept
    expect(out).toContain('<a href="https://example.com/a?b=1" rel="noopener">web</a>');
    expect(out).toContain('<a href="http://example.com" rel="noopener">http</a>');
    expect(out).toContain('<a href="mailto:jane@example.com" rel="noopener">mail</a>');
    expect(out).not.toContain('target=');
    expect(out).toContain('<img src="cid:logo@mail.example.com" alt="Logo" width="120" height="40" />');
    expect(out).toContain(`<img src="${png}" alt="px" />`);
    expect(out).toContain('<td colspan="2">');
  });

  it('keeps the allowed styles and drops the others', () => {
    const out = sanitizeRichHtml(
      '<p style="color: #ff0000; background-color: rgb(1, 2, 3); font-weight: bold; font-style: italic; ' +
        'text-decoration: underline; text-align: center; font-size: 14px; position: fixed; ' +
        'background-image: url(https://t.example/x); font-family: Arial; width: expression(alert(1)); color: red">x</p>' +
        '<span style="font-size: 9999999px; color: url(x); font-weight: 950">y</span>',
    );
    expect(out).toContain('color:#ff0000');
    expect(out).toContain('background-color:rgb(1, 2, 3)');
    expect(out).toContain('font-weight:bold');
    expect(out).toContain('font-style:italic');
    expect(out).toContain('text-decoration:underline');
    expect(out).toContain('text-align:center');
    expect(out).toContain('font-size:14px');
    expect(out).not.toMatch(/position|background-image|font-family|expression|url\(|9999999|950/);
    expect(out).toContain('<span>y</span>');
  });
});

describe('inlineDataImages', () => {
  it('replaces data: images by cid: references and returns the decoded bytes', () => {
    const html = `<p>Hello</p><img src="${dataUrl('image/png', PNG)}" alt="logo"><img src="${dataUrl('image/jpeg', jpeg())}">`;
    const r = ok(inlineDataImages(html, LIMITS));
    expect(r.images).toHaveLength(2);
    const [png, jpg] = r.images;
    const sha = createHash('sha256').update(PNG).digest('hex');
    expect(png).toMatchObject({ cid: `${sha.slice(0, 32)}@mail.example.com`, contentType: 'image/png', filename: `image-${sha.slice(0, 12)}.png` });
    expect(Buffer.from(png!.content).equals(PNG)).toBe(true);
    expect(jpg!.contentType).toBe('image/jpeg');
    expect(Buffer.from(jpg!.content).equals(jpeg())).toBe(true);
    expect(r.html).toContain(`<img src="cid:${png!.cid}" alt="logo" />`);
    expect(r.html).toContain(`<img src="cid:${jpg!.cid}" />`);
    expect(r.html).not.toContain('data:');
    // Deterministic.
    expect(ok(inlineDataImages(html, LIMITS))).toEqual(r);
  });

  it('shares one CID between identical images and accepts GIF and WebP', () => {
    const png = dataUrl('image/png', PNG);
    const html = `<img src="${png}"><p>x</p><img src="${png.replace('base64,', 'base64,\n')}"><img src="${dataUrl('image/gif', GIF)}"><img src="${dataUrl('image/webp', WEBP)}">`;
    const r = ok(inlineDataImages(html, { ...LIMITS, maxImages: 3 }));
    expect(r.images.map((i) => i.contentType)).toEqual(['image/png', 'image/gif', 'image/webp']);
    const cid = r.images[0]!.cid;
    expect(r.html.split(`cid:${cid}`)).toHaveLength(3);
  });

  it('keeps cid: images, drops remote ones, and leaves HTML without images alone', () => {
    const r = ok(inlineDataImages('<img src="cid:old@x.example"><img src="https://t.example/p.gif"><b>hi</b>', LIMITS));
    expect(r.images).toEqual([]);
    expect(r.html).toBe('<img src="cid:old@x.example" /><b>hi</b>');
  });

  it('refuses an image over the per-image limit, naming it', () => {
    const html = `<img src="${dataUrl('image/png', PNG)}"><img src="${dataUrl('image/jpeg', jpeg(812 * 1024))}">`;
    expect(err(inlineDataImages(html, { ...LIMITS, imageLabel: 'a signature image' }))).toEqual({
      index: 2,
      message: 'image 2 is 812 KB; a signature image may be at most 512 KB',
    });
  });

  it('refuses too many images and too many bytes in total', () => {
    const three = [jpeg(100), jpeg(200), jpeg(300)].map((b) => `<img src="${dataUrl('image/jpeg', b)}">`).join('');
    expect(err(inlineDataImages(three, { ...LIMITS, maxImages: 2 }))).toEqual({
      index: 3,
      message: 'image 3 is one too many: at most 2 inline images are allowed',
    });
    const big = [jpeg(400 * 1024), jpeg(400 * 1024 + 1), jpeg(400 * 1024 + 2)].map((b) => `<img src="${dataUrl('image/jpeg', b)}">`).join('');
    const e = err(inlineDataImages(big, { ...LIMITS, maxTotalBytes: 1024 * 1024 }));
    expect(e.index).toBe(3);
    expect(e.message).toBe('image 3 brings the inline images to 1.2 MB; together they may be at most 1 MB');
  });

  it('refuses bad base64, other types and bytes that do not match the declared type', () => {
    const one = (src: string) => err(inlineDataImages(`<p>x</p><img src="${src}">`, LIMITS));
    expect(one('data:image/png;base64,@@@not base64@@@')).toEqual({ index: 1, message: 'image 1 is not valid base64 data' });
    expect(one('data:image/png;base64,')).toEqual({ index: 1, message: 'image 1 is not valid base64 data' });
    expect(one('data:image/png,rawbytes').message).toBe('image 1 is not base64-encoded');
    expect(one(dataUrl('image/svg+xml', Buffer.from('<svg/>'))).message).toBe(
      'image 1 has type image/svg+xml; only PNG, JPEG, GIF or WebP images can be embedded',
    );
    expect(one(dataUrl('image/png', jpeg())).message).toBe('image 1 is declared as PNG but its content is JPEG');
    expect(one(dataUrl('image/gif', Buffer.from('definitely not an image'))).message).toBe('image 1 is not a valid GIF image');
    // The index counts every <img>, as the author sees them.
    const e = err(inlineDataImages(`<img src="cid:a@b"><img src="https://x.example/y.png"><img src="${dataUrl('image/webp', PNG)}">`, LIMITS));
    expect(e).toEqual({ index: 3, message: 'image 3 is declared as WebP but its content is PNG' });
  });

  it('sniffs the four formats by their magic numbers', () => {
    expect(sniffImageType(PNG)).toBe('image/png');
    expect(sniffImageType(jpeg())).toBe('image/jpeg');
    expect(sniffImageType(GIF)).toBe('image/gif');
    expect(sniffImageType(WEBP)).toBe('image/webp');
    expect(sniffImageType(new Uint8Array([1, 2, 3]))).toBeNull();
    expect(sniffImageType(new Uint8Array())).toBeNull();
  });

  it('sanitizes the HTML it returns and keeps the CID domain safe', () => {
    const r = ok(inlineDataImages(`<img src="${dataUrl('image/png', PNG)}" onerror="x()"><script>alert(1)</script>`, { ...LIMITS, cidDomain: 'Mail.Example.com>\r\nBcc: x' }));
    expect(r.html).not.toMatch(/onerror|script|alert/);
    expect(r.images[0]!.cid).toMatch(/^[0-9a-f]{32}@mail\.example\.combccx$/);
  });
});

describe('htmlToText', () => {
  it('renders links as text [url], drops images and wraps at 78 columns', () => {
    const html =
      '<h2>Support team</h2><p>Hello <b>Jane</b>, see <a href="https://example.com/help">our help center</a> ' +
      'or write to <a href="mailto:help@example.com">help@example.com</a>.</p>' +
      '<p><img src="cid:logo@x" alt="Logo"><img src="data:image/png;base64,AAAA"></p><p></p><p></p><br><br><br>' +
      `<p>${'word '.repeat(60)}</p><ul><li>first</li><li>second</li></ul>` +
      '<table><tr><td><img src="cid:logo@x"></td><td><b>Jane Doe</b><br>Support lead</td></tr><tr><th>Phone</th><td>+33 1 23 45 67 89</td></tr></table>' +
      '<script>alert(1)</script><style>p{color:red}</style>';
    const text = htmlToText(html);
    expect(text).toContain('Support team');
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('see our help center [https://example.com/help]');
    expect(flat).toContain('write to help@example.com.');
    expect(text).not.toMatch(/Logo|cid:|data:|alert|color:red/);
    expect(text).not.toMatch(/\n{3,}/);
    expect(text).toBe(text.trim());
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(text).toContain(' * first\n * second');
    expect(text).toContain('Jane Doe\nSupport lead');
    expect(text).toContain('Phone +33 1 23 45 67 89');
  });

  it('gives an empty string for empty input', () => {
    expect(htmlToText('')).toBe('');
    expect(htmlToText('<p></p>')).toBe('');
  });
});

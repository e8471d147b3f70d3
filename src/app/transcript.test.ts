// transcriptHtml (pure): escaping, message order, inline images, attachment list; SessionTranscripts with fakes.
import { describe, expect, it } from 'vitest';
import { escapeHtml, SessionTranscripts, transcriptHtml, type PdfRenderer, type TranscriptSession } from './transcript.js';
import type { SessionDetail } from './sessions-service.js';

type Msg = TranscriptSession['messages'][number];

const msg = (over: Partial<Msg>): Msg => ({
  id: 'msg_1',
  direction: 'inbound',
  messageId: 'm1@example.com',
  from: { address: 'ann@example.com', name: 'Ann' },
  to: [{ address: 'help@shop.example' }],
  cc: [],
  subject: 'Printer broken',
  date: '2025-01-10T09:00:00.000Z',
  receivedAt: '2025-01-10T09:00:05.000Z',
  arrivedAt: null,
  text: 'plain text',
  html: null,
  attachments: [],
  size: 100,
  accountId: 'acc_1',
  flags: [],
  ...over,
});

const session = (messages: Msg[], over: Partial<TranscriptSession> = {}): TranscriptSession => ({
  id: 'S7K2M9QX4TB',
  subject: 'Printer broken',
  customer: { address: 'ann@example.com', name: 'Ann' },
  queueId: 'q_support',
  status: 'active',
  createdAt: '2025-01-10T09:00:05.000Z',
  updatedAt: '2025-01-10T10:00:00.000Z',
  lastActivityAt: '2025-01-10T10:00:00.000Z',
  ticketId: null,
  messages,
  ...over,
});

const opts = { companyName: 'Shop & Co', generatedAt: Date.UTC(2025, 0, 11, 8, 30) };
const GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==';

describe('transcriptHtml', () => {
  it('is one self-contained document: inline CSS, no script, a CSP that forbids fetching anything', () => {
    const html = transcriptHtml(session([msg({})]), opts);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"`);
    expect(html).not.toMatch(/<script|<link|https?:\/\//i);
    expect(html).toContain('Shop &amp; Co');
  });

  it('shows the session header: id, subject, customer, queue (with its name), status, dates', () => {
    const html = transcriptHtml(session([msg({})]), { ...opts, queueName: 'Support' });
    for (const text of ['S7K2M9QX4TB', 'Printer broken', 'Ann &lt;ann@example.com&gt;', 'Support (q_support)', 'active', '10 Jan 2025, 09:00 UTC', '10 Jan 2025, 10:00 UTC']) {
      expect(html).toContain(text);
    }
    expect(html).toContain('Generated 11 Jan 2025, 08:30 UTC');
  });

  it('formats dates in the given time zone, and falls back to UTC for an unknown zone', () => {
    expect(transcriptHtml(session([msg({})]), { ...opts, timeZone: 'Europe/Paris' })).toContain('10 Jan 2025, 10:00 CET');
    expect(transcriptHtml(session([msg({})]), { ...opts, timeZone: 'Mars/Olympus' })).toContain('10 Jan 2025, 09:00 UTC');
  });

  it('escapes everything that is not sanitized HTML: names, addresses, subjects, text bodies, file names', () => {
    const evil = '<img src=x onerror=alert(1)>"\'&';
    const html = transcriptHtml(
      session(
        [
          msg({
            from: { address: 'a@x.example', name: evil },
            to: [{ address: 'b@x.example', name: evil }],
            cc: [{ address: 'c@x.example', name: evil }],
            subject: evil,
            text: `${evil}\nline two`,
            attachments: [{ filename: evil, contentType: 'text/html', size: 10, inline: false, sha256: 'x' }],
          }),
        ],
        { subject: evil, customer: { address: 'a@x.example', name: evil } },
      ),
      { ...opts, companyName: evil },
    );
    expect(html).not.toContain(evil);
    expect(html).not.toMatch(/<img src=x/);
    expect(html.split(escapeHtml(evil)).length - 1).toBeGreaterThanOrEqual(8);
    expect(html).toContain(`<pre class="text">${escapeHtml(evil)}\nline two</pre>`);
  });

  it('keeps {{ … }} literally, in HTML bodies and in text bodies', () => {
    const html = transcriptHtml(session([msg({ html: '<p>Hello {{name}} {{{raw}}}</p>' }), msg({ id: 'msg_2', text: 'Dear {{customer.name}}' })]), opts);
    expect(html).toContain('<p>Hello {{name}} {{{raw}}}</p>');
    expect(html).toContain('Dear {{customer.name}}');
  });

  it('puts the sanitized HTML body in as it is, and the text only when there is no HTML', () => {
    const html = transcriptHtml(session([msg({ html: '<p><b>bold</b> <a href="https://shop.example/x" rel="noopener">link</a></p>', text: 'TEXT-VERSION' })]), opts);
    expect(html).toContain('<p><b>bold</b> <a href="https://shop.example/x" rel="noopener">link</a></p>');
    expect(html).not.toContain('TEXT-VERSION');
    expect(transcriptHtml(session([msg({ html: '   ', text: 'TEXT-VERSION' })]), opts)).toContain('TEXT-VERSION');
  });

  it('keeps the thread order and labels direction, from, to, cc, date, subject of each message', () => {
    const html = transcriptHtml(
      session([
        msg({ id: 'a', text: 'FIRST' }),
        msg({ id: 'b', direction: 'outbound', from: { address: 'help@shop.example', name: 'Shop' }, to: [{ address: 'ann@example.com' }], cc: [{ address: 'boss@example.com', name: 'Boss' }], subject: 'Re: Printer broken', date: null, receivedAt: '2025-01-10T09:30:00.000Z', text: 'SECOND' }),
        msg({ id: 'c', text: 'THIRD' }),
      ]),
      opts,
    );
    expect(html.indexOf('FIRST')).toBeLessThan(html.indexOf('SECOND'));
    expect(html.indexOf('SECOND')).toBeLessThan(html.indexOf('THIRD'));
    const second = html.slice(html.lastIndexOf('<article', html.indexOf('id="m2"')), html.indexOf('id="m3"'));
    expect(second).toContain('class="message outbound"');
    expect(second).toContain('2. Sent');
    expect(second).toContain('<th>From</th><td>Shop &lt;help@shop.example&gt;</td>');
    expect(second).toContain('<th>To</th><td>ann@example.com</td>');
    expect(second).toContain('<th>Cc</th><td>Boss &lt;boss@example.com&gt;</td>');
    expect(second).toContain('<th>Date</th><td>10 Jan 2025, 09:30 UTC</td>'); // no Date header: when it was stored
    expect(second).toContain('<th>Subject</th><td>Re: Printer broken</td>');
    expect(html).toContain('1. Received');
    expect(html).not.toContain('<th>Cc</th><td></td>');
  });

  it('lists attachments with names, types and sizes', () => {
    const html = transcriptHtml(
      session([
        msg({
          attachments: [
            { filename: 'invoice.pdf', contentType: 'application/pdf', size: 48_213, inline: false, sha256: 'x' },
            { filename: 'logo.png', contentType: 'image/png', size: 512, inline: true, contentId: 'logo@x', sha256: 'y' },
            { filename: 'big.zip', contentType: 'application/zip', size: 3 * 1024 * 1024, inline: false, sha256: 'z' },
          ],
        }),
      ]),
      opts,
    );
    expect(html).toContain('Attachments (3)');
    expect(html).toContain('<li>invoice.pdf — application/pdf, 47.1 KB</li>');
    expect(html).toContain('<li>logo.png — image/png, 512 B (inline)</li>');
    expect(html).toContain('<li>big.zip — application/zip, 3.0 MB</li>');
  });

  it('shows cid images from the data URLs supplied, a placeholder otherwise, and never a remote image', () => {
    const body = '<p>Logo <img src="cid:logo@shop" alt="Our logo"> missing <img src="cid:gone@shop" alt="a &lt;b&gt;"> remote <img src="https://t.example/p.gif"> data <img src="' + GIF + '"> svg <img src="data:image/svg+xml;base64,PHN2Zz4="></p>';
    const html = transcriptHtml(session([msg({ id: 'msg_1', html: body })]), { ...opts, inlineImages: { msg_1: { 'logo@shop': GIF, 'gone@shop': 'https://evil.example/x.png' } } });
    expect(html).toContain(`<img src="${GIF}" alt="Our logo" class="inline-image">`);
    expect(html).toContain('<span class="image-placeholder">[inline image: a &lt;b&gt;]</span>');
    expect(html).toContain('<span class="image-placeholder">[image not loaded]</span>');
    expect(html).toContain(`data <img src="${GIF}">`);
    expect(html).not.toMatch(/cid:|t\.example|evil\.example|svg\+xml/);
  });
});

describe('SessionTranscripts', () => {
  it('renders the detail with the company name and queue name, and resolves cid images from the raw message', async () => {
    const detail = { ...session([msg({ id: 'msg_1', html: '<p><img src="cid:logo@shop"></p>' })]), participants: [], statusChangedAt: '', interactions: [], assigneeId: null, messageCount: 1, imported: false, linkedFrom: null } as SessionDetail;
    const rendered: string[] = [];
    const renderer: PdfRenderer = { render: async (h) => (rendered.push(h), new TextEncoder().encode('%PDF-1.4')), close: async () => undefined };
    const store = { get: async (key: string) => (key === 'smsg:msg_1' ? { rawKey: 'blob:raw:msg_1' } : undefined) } as never;
    const blobs = { get: async (key: string) => (key === 'blob:raw:msg_1' ? new Uint8Array([1]) : undefined) } as never;
    const logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => logger };
    const service = new SessionTranscripts({
      sessions: { detail: async () => detail },
      renderer,
      clock: { now: () => Date.UTC(2025, 0, 11) },
      logger,
      companyName: async () => 'Shop',
      queueName: async () => 'Support',
      store,
      blobs,
      inlineImages: async () => [{ contentId: 'logo@shop', contentType: 'image/gif', data: new Uint8Array([71, 73, 70]) }],
    });
    const pdf = await service.pdf('S7K2M9QX4TB');
    expect(new TextDecoder().decode(pdf)).toBe('%PDF-1.4');
    expect(rendered[0]).toContain('Support (q_support)');
    expect(rendered[0]).toContain('<img src="data:image/gif;base64,R0lG" alt="" class="inline-image">');
  });
});

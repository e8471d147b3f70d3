// Real headless Chromium: valid PDFs, nothing fetched from customer mail, a bounded pool, restart after a crash.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transcriptHtml, type TranscriptSession } from '../../app/transcript.js';
import { createChromiumPdfRenderer, type ChromiumPdfRenderer } from './chromium-pdf.js';

interface HitServer {
  port: number;
  hits: string[];
  close(): Promise<void>;
}

/** A local HTTP server that records every request it gets (there should be none). */
async function startHitServer(): Promise<HitServer> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hit');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Customer HTML that tries to reach `port` every way an email can (already past a sanitizer or not). */
function hostileHtml(port: number): string {
  const base = `http://127.0.0.1:${port}`;
  return [
    `<link rel="stylesheet" href="${base}/style.css">`,
    `<p style="background:url(${base}/bg)">Hello {{name}}, your order {{{order}}} is \\{{late}}.</p>`,
    `<img src="${base}/pixel.gif" width="1" height="1">`,
    `<div style="background-image:url('${base}/bg2')">styled</div>`,
    `<iframe src="${base}/frame"></iframe>`,
    `<img src="cid:logo@shop">`,
  ].join('\n');
}

const PIXEL_GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw==';

/** A 10-message thread alternating customer and agent; message 1 carries `html` (by default ordinary mail). */
function tenMessageThread(firstHtml?: string): TranscriptSession {
  const at = (i: number) => new Date(Date.UTC(2025, 0, 10, 9, i * 7)).toISOString();
  const customer = { address: 'ann@example.com', name: 'Ann Customer' };
  const agent = { address: 'help@shop.example', name: 'Shop Support' };
  const messages: TranscriptSession['messages'] = Array.from({ length: 10 }, (_, i) => {
    const inbound = i % 2 === 0;
    const html =
      i === 0 && firstHtml !== undefined
        ? firstHtml
        : `<p>Message ${i + 1}. ${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(6)}</p><blockquote><p>Earlier text quoted.</p></blockquote><table border="1"><tr><td>Order</td><td>#${1000 + i}</td></tr></table><img src="${PIXEL_GIF}" alt="dot">`;
    return {
      id: `msg_${i + 1}`,
      direction: inbound ? 'inbound' : 'outbound',
      messageId: `m${i + 1}@example.com`,
      from: inbound ? customer : agent,
      to: [inbound ? agent : customer],
      cc: i === 2 ? [{ address: 'boss@example.com' }] : [],
      subject: i === 0 ? 'Printer broken' : 'Re: Printer broken',
      date: at(i),
      receivedAt: at(i),
      arrivedAt: at(i),
      text: `Message ${i + 1} as text`,
      html: i % 5 === 4 ? null : html,
      attachments: i === 1 ? [{ filename: 'invoice.pdf', contentType: 'application/pdf', size: 48_213, inline: false, sha256: 'x' }] : [],
      size: 4000,
      accountId: 'acc_1',
      flags: [],
    };
  });
  return {
    id: 'S7K2M9QX4TB',
    subject: 'Printer broken',
    customer,
    queueId: 'q_support',
    status: 'active',
    createdAt: at(0),
    updatedAt: at(9),
    lastActivityAt: at(9),
    ticketId: null,
    messages,
  };
}

/** Checks the bytes are a complete PDF and returns its page count. */
function pdfPages(bytes: Uint8Array): number {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.startsWith('%PDF-')) throw new Error('no %PDF- header');
  if (!text.trimEnd().endsWith('%%EOF')) throw new Error('no %%EOF trailer');
  return (text.match(/\/Type\s*\/Page(?![a-z])/g) ?? []).length;
}

/** Chromium processes started by this test process (playwright spawns the browser as a direct child). */
function browserPids(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,comm='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, stat, comm]) => Number(ppid) === process.pid && !stat?.startsWith('Z') && /chrom/i.test(comm ?? ''))
    .map(([pid]) => Number(pid));
}

const opts = { companyName: 'Shop & Co', generatedAt: Date.UTC(2025, 0, 11, 8, 0) };
let server: HitServer;
let renderer: ChromiumPdfRenderer;

beforeAll(async () => {
  server = await startHitServer();
  renderer = createChromiumPdfRenderer({ pages: 2, timeoutMs: 20_000 });
});
afterAll(async () => {
  await renderer?.close();
  await server?.close();
  expect(browserPids()).toEqual([]);
});

describe('createChromiumPdfRenderer', () => {
  it('renders a 10-message thread with hostile customer HTML to a valid PDF and fetches nothing', async () => {
    const html = transcriptHtml(tenMessageThread(hostileHtml(server.port)), opts);
    expect(html).toContain('{{name}}');
    const pdf = await renderer.render(html);
    expect(pdfPages(pdf)).toBeGreaterThanOrEqual(1);
    expect(server.hits).toEqual([]);
  });

  it('blocks every request even for raw HTML that no sanitizer or CSP touched', async () => {
    const raw = `<!DOCTYPE html><html><head>${hostileHtml(server.port)}<style>@import url(http://127.0.0.1:${server.port}/import.css); @font-face { font-family: x; src: url(http://127.0.0.1:${server.port}/font.woff); } body { font-family: x; }</style></head><body><p>{{name}}</p><object data="http://127.0.0.1:${server.port}/obj"></object><video poster="http://127.0.0.1:${server.port}/poster"></video><script>fetch('http://127.0.0.1:${server.port}/js')</script><meta http-equiv="refresh" content="0;url=http://127.0.0.1:${server.port}/refresh"></body></html>`;
    const before = renderer.stats().blockedRequests;
    const pdf = await renderer.render(raw);
    expect(pdfPages(pdf)).toBeGreaterThanOrEqual(1);
    expect(server.hits).toEqual([]);
    expect(renderer.stats().blockedRequests).toBeGreaterThan(before);
  });

  it('runs 10 renders at once through a pool of 2 on one browser', async () => {
    const html = transcriptHtml(tenMessageThread(), opts);
    const { launches, contexts } = renderer.stats();
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, renderer.stats().running)), 5);
    const pdfs = await Promise.all(Array.from({ length: 10 }, () => renderer.render(html)));
    clearInterval(watch);
    for (const pdf of pdfs) expect(pdfPages(pdf)).toBeGreaterThanOrEqual(1);
    expect(peak).toBeLessThanOrEqual(2);
    expect(renderer.stats().launches).toBe(launches);
    // Pages are reused: at most one new context per pool slot for the 10 renders.
    expect(renderer.stats().contexts - contexts).toBeLessThanOrEqual(2);
    expect(browserPids()).toHaveLength(1);
  });

  it('starts the browser again on the next render after it was killed', async () => {
    const html = transcriptHtml(tenMessageThread(), opts);
    await renderer.render(html);
    const [pid] = browserPids();
    expect(pid).toBeDefined();
    const launches = renderer.stats().launches;
    process.kill(pid as number, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const pdf = await renderer.render(html);
    expect(pdfPages(pdf)).toBeGreaterThanOrEqual(1);
    expect(renderer.stats().launches).toBe(launches + 1);
    expect(browserPids()).not.toContain(pid);
  });

  it('answers 503 (dependency_unavailable) when the browser cannot start, and tries again on the next render', async () => {
    const own = createChromiumPdfRenderer({ executablePath: '/nonexistent/chromium' });
    try {
      await expect(own.render('<p>x</p>')).rejects.toMatchObject({ code: 'dependency_unavailable', message: expect.stringMatching(/could not start/) });
      await expect(own.render('<p>x</p>')).rejects.toMatchObject({ code: 'dependency_unavailable' });
      expect(own.stats().launches).toBe(2);
    } finally {
      await own.close();
    }
  });

  it('closes the browser after being idle and starts it again on the next render', async () => {
    const own = createChromiumPdfRenderer({ pages: 1, idleCloseMs: 300 });
    try {
      const before = browserPids();
      await own.render('<p>one</p>');
      expect(browserPids().length).toBe(before.length + 1);
      await new Promise((r) => setTimeout(r, 1500));
      expect(browserPids()).toEqual(before);
      await own.render('<p>two</p>');
      expect(own.stats()).toMatchObject({ launches: 2, renders: 2 });
    } finally {
      await own.close();
    }
  });

  it('finishes the running render on close(), refuses the waiting ones and later ones', async () => {
    const own = createChromiumPdfRenderer({ pages: 1 });
    await own.render('<p>one</p>');
    const running = own.render('<p>two</p>').then((b) => b.byteLength, (e: Error) => e.message);
    while (own.stats().running === 0) await new Promise((r) => setTimeout(r, 1));
    const waiting = own.render('<p>three</p>').then((b) => b.byteLength, (e: Error) => e.message);
    await own.close();
    expect(await running).toBeGreaterThan(0);
    expect(await waiting).toMatch(/closing/);
    await expect(own.render('<p>four</p>')).rejects.toThrow(/closed/);
  });
});

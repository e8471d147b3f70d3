// The html-pdf-node wrapper (benchmark baseline): Handlebars sees no `{{`, Debian chromium runs it, nothing is fetched.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHtmlPdfNodeRenderer, neutralizeForHtmlPdfNode } from './html-pdf-node.js';

const require = createRequire(import.meta.url);
const hb = require('handlebars') as { compile(t: string, o: object): (ctx: unknown) => string };
const inlineCss = require('inline-css') as (html: string, o: object) => Promise<string>;

/** What html-pdf-node does to the content before the browser sees it (index.js: inlineCss, then Handlebars strict). */
async function throughHtmlPdfNodePipeline(html: string): Promise<string> {
  const data = await inlineCss(html, { url: '/' });
  return hb.compile(data, { strict: true })(data);
}

const hits: string[] = [];
const server = createServer((req, res) => {
  hits.push(req.url ?? '');
  res.end('hit');
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('neutralizeForHtmlPdfNode', () => {
  it('without it, a customer writing {{name}} breaks the PDF (Handlebars strict mode)', async () => {
    await expect(throughHtmlPdfNodePipeline('<p>Hello {{name}}</p>')).rejects.toThrow(/name/);
  });

  it('keeps every brace literal through inline-css and Handlebars', async () => {
    const html = '<p>Hello {{name}}, {{{raw}}} \\{{escaped}} {{#each x}}{{/each}} {{> partial}}</p><p style="color:red">x</p>';
    const out = await throughHtmlPdfNodePipeline(neutralizeForHtmlPdfNode(html));
    const shown = out.replace(/&#123;/g, '{');
    expect(shown).toContain('Hello {{name}}, {{{raw}}} \\{{escaped}} {{#each x}}{{/each}} {{> partial}}');
  });

  it('drops <link> tags, which inline-css would fetch from Node itself', () => {
    expect(neutralizeForHtmlPdfNode(`<link rel="stylesheet" href="http://127.0.0.1:1/x.css"><style>@import url(http://x/y.css);</style>`)).toBe('<style></style>');
  });
});

describe('createHtmlPdfNodeRenderer', () => {
  it('renders with Debian chromium, JavaScript off, every request refused, and leaves no browser', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const renderer = createHtmlPdfNodeRenderer({ pages: 1, timeoutMs: 30_000 });
    try {
      const html = `<!DOCTYPE html><html><body><p>Hello {{name}}</p><img src="http://127.0.0.1:${port}/pixel.gif"><div style="background:url(http://127.0.0.1:${port}/bg)">x</div><link rel="stylesheet" href="http://127.0.0.1:${port}/style.css"></body></html>`;
      const pdf = await renderer.render(html);
      expect(Buffer.from(pdf).subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(hits).toEqual([]);
      expect(renderer.stats()).toMatchObject({ launches: 1, renders: 1 });
      expect(renderer.stats().blockedRequests).toBeGreaterThan(0);
      // The package's own console.log on every call: a residual the wrapper does not remove.
      expect(log).toHaveBeenCalledWith('Compiling the template with handlebars');
    } finally {
      await renderer.close();
      log.mockRestore();
    }
    const children = execFileSync('ps', ['-eo', 'ppid=,stat=,comm='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([ppid, stat, comm]) => Number(ppid) === process.pid && !stat?.startsWith('Z') && /chrom/i.test(comm ?? ''));
    expect(children).toEqual([]);
  }, 60_000);
});

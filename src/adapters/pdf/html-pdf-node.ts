// PdfRenderer over html-pdf-node 1.0.8 (puppeteer 10), wrapped as safely as the package allows; measured, not shipped.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import PQueue from 'p-queue';
import { AppError } from '../../core/errors.js';
import { CHROMIUM_ARGS } from './chromium-pdf.js';

/* The few puppeteer 10 / html-pdf-node shapes this wrapper touches (the packages ship no types). */
interface PRequest {
  url(): string;
  continue(): Promise<void>;
  abort(reason?: string): Promise<void>;
}
interface PPage {
  setJavaScriptEnabled(enabled: boolean): Promise<void>;
  setRequestInterception(on: boolean): Promise<void>;
  on(event: 'request', handler: (req: PRequest) => void): void;
}
interface PBrowser {
  newPage(): Promise<PPage>;
  close(): Promise<void>;
}
interface Puppeteer {
  launch(options?: Record<string, unknown>): Promise<PBrowser>;
}
interface HtmlPdfNode {
  generatePdf(file: { content: string }, options: Record<string, unknown>): Promise<Buffer>;
}

export interface HtmlPdfNodeOptions {
  executablePath?: string;
  /** Renders at once (each launches its own browser: that is how html-pdf-node works). */
  pages?: number;
  timeoutMs?: number;
}

export interface HtmlPdfNodeRenderer {
  render(html: string): Promise<Uint8Array>;
  close(): Promise<void>;
  stats(): { launches: number; renders: number; blockedRequests: number };
}

/** What one render launched, found through the async context of the call that launched it. */
interface RenderCall {
  executablePath: string;
  browsers: PBrowser[];
  /** Set once the render gave up (timeout): a browser that finishes launching afterwards is closed at once. */
  done: boolean;
  counters: { launches: number; blockedRequests: number };
}

const calls = new AsyncLocalStorage<RenderCall>();
const require = createRequire(import.meta.url);
let patched = false;

/**
 * html-pdf-node calls `puppeteer.launch({ args })` with no way to pass `executablePath` and no hook on its page.
 * The wrapper replaces `launch` on the one shared puppeteer instance (the package requires the same module): the
 * browser is Debian's chromium with the same flags as the shipped path, and every page it opens has JavaScript off
 * and every request other than data: refused (tracking pixels, remote CSS, fonts: privacy and SSRF).
 */
function patchPuppeteer(): void {
  if (patched) return;
  patched = true;
  const puppeteer = require('puppeteer') as Puppeteer;
  const launch = puppeteer.launch.bind(puppeteer);
  puppeteer.launch = async (options = {}) => {
    const call = calls.getStore();
    if (!call) return launch(options);
    call.counters.launches++;
    const browser = await launch({ ...options, executablePath: call.executablePath, headless: true, args: CHROMIUM_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
    if (call.done) {
      await browser.close().catch(() => undefined);
      throw new Error('the render was abandoned while its browser started');
    }
    call.browsers.push(browser);
    const newPage = browser.newPage.bind(browser);
    browser.newPage = async () => {
      const page = await newPage();
      await page.setJavaScriptEnabled(false);
      await page.setRequestInterception(true);
      page.on('request', (req) => {
        if (req.url().startsWith('data:')) {
          void req.continue().catch(() => undefined);
          return;
        }
        call.counters.blockedRequests++;
        void req.abort('blockedbyclient').catch(() => undefined);
      });
      return page;
    };
    return browser;
  };
}

/**
 * html-pdf-node compiles the HTML as a Handlebars template (`strict: true`): a customer's `{{name}}` would throw or be
 * evaluated. Every `{` that opens a `{{` becomes `&#123;` (HTML shows it as `{`; Handlebars no longer sees `{{`).
 * `<link>` tags are dropped first: inline-css would fetch their URLs from Node itself (and read `file:` URLs from disk),
 * outside any browser routing.
 */
export function neutralizeForHtmlPdfNode(html: string): string {
  return html
    .replace(/<link\b[^>]*>/gi, '')
    .replace(/@import\b[^;]*;?/gi, '')
    .replace(/\{(?=\{)/g, '&#123;');
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('dependency_unavailable', `PDF rendering took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Residual limits, which no wrapper removes: a browser is launched and closed for every PDF (slow, memory spikes);
 * html-pdf-node waits for `networkidle0` (at least 500 ms of quiet per PDF); it prints "Compiling the template with
 * handlebars" with console.log on every call; it assigns an implicit global `data`; puppeteer 10 (2021) is unmaintained.
 */
export function createHtmlPdfNodeRenderer(opts: HtmlPdfNodeOptions = {}): HtmlPdfNodeRenderer {
  patchPuppeteer();
  const lib = require('html-pdf-node') as HtmlPdfNode;
  const executablePath = opts.executablePath ?? '/usr/bin/chromium';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const queue = new PQueue({ concurrency: Math.max(1, opts.pages ?? 2) });
  const counters = { launches: 0, renders: 0, blockedRequests: 0 };
  const live = new Set<PBrowser>();
  let closed = false;

  async function renderOnce(html: string): Promise<Uint8Array> {
    const call: RenderCall = { executablePath, browsers: [], done: false, counters };
    try {
      const pdf = await within(
        // The async context follows html-pdf-node into its puppeteer.launch call, so the patch knows this render.
        calls.run(call, () =>
          lib.generatePdf({ content: neutralizeForHtmlPdfNode(html) }, { format: 'A4', printBackground: true, margin: { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' } }),
        ),
        timeoutMs,
      );
      counters.renders++;
      return new Uint8Array(pdf.buffer, pdf.byteOffset, pdf.byteLength);
    } finally {
      call.done = true;
      // html-pdf-node closes its browser only on success; a failure or a timeout would leave it running.
      for (const b of call.browsers) {
        live.add(b);
        await b.close().catch(() => undefined);
        live.delete(b);
      }
    }
  }

  return {
    async render(html) {
      if (closed) throw new AppError('dependency_unavailable', 'the PDF renderer is closed');
      return queue.add(() => {
        if (closed) throw new AppError('dependency_unavailable', 'the PDF renderer is closing');
        return renderOnce(html);
      });
    },
    async close() {
      closed = true;
      await Promise.race([queue.onIdle(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      await Promise.all([...live].map((b) => b.close().catch(() => undefined)));
    },
    stats: () => ({ ...counters }),
  };
}

// PdfRenderer on playwright-core and the system Chromium: one long-lived browser, a bounded pool of pages, no network.
import { silentLogger } from '../../core/ports.js';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import PQueue from 'p-queue';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';

export interface ChromiumPdfOptions {
  /** The browser binary (Debian's chromium by default). */
  executablePath?: string;
  /** Renders running at once (each in its own browser context). */
  pages?: number;
  /** Renders waiting beyond the running ones before `render` refuses (503) rather than queueing more. */
  maxQueued?: number;
  /** One render, from its start to the PDF bytes. */
  timeoutMs?: number;
  /** Renders one page serves before it is replaced by a fresh context (bounds what a long-lived page accumulates). */
  maxPageUses?: number;
  /** The browser is closed after this long without a render (it holds ~0.4 GB), and started again on the next; 0 = never. */
  idleCloseMs?: number;
  /** Starting the browser. */
  launchTimeoutMs?: number;
  /** How long close() waits for running renders and the browser. */
  closeTimeoutMs?: number;
  logger?: Logger;
}

export interface ChromiumPdfRenderer {
  render(html: string): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Counters for tests and the benchmark. */
  stats(): { launches: number; contexts: number; renders: number; blockedRequests: number; running: number; queued: number };
}

/**
 * Flags for a headless browser that renders only what it is given: no GPU, no background traffic (component updates,
 * safe browsing, metrics), and no name resolution at all (MAP * ~NOTFOUND), under the request routing below.
 * Playwright adds --headless and a fresh temporary --user-data-dir, removed when the browser exits.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-dev-shm-usage',
  '--disable-domain-reliability',
  '--no-pings',
  '--host-resolver-rules=MAP * ~NOTFOUND',
];

const MARGIN = { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' };


class RenderTimeoutError extends Error {
  constructor(ms: number) {
    super(`PDF rendering took longer than ${ms} ms`);
    this.name = 'RenderTimeoutError';
  }
}

function within<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new RenderTimeoutError(ms));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function createChromiumPdfRenderer(opts: ChromiumPdfOptions = {}): ChromiumPdfRenderer {
  const executablePath = opts.executablePath ?? '/usr/bin/chromium';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const launchTimeoutMs = opts.launchTimeoutMs ?? 30_000;
  const closeTimeoutMs = opts.closeTimeoutMs ?? 10_000;
  const maxQueued = opts.maxQueued ?? 100;
  const maxPageUses = opts.maxPageUses ?? 100;
  const idleCloseMs = opts.idleCloseMs ?? 5 * 60_000;
  const logger = opts.logger ?? silentLogger;
  const queue = new PQueue({ concurrency: Math.max(1, opts.pages ?? 2) });
  let browser: Promise<Browser> | undefined;
  let closed = false;
  let idleTimer: NodeJS.Timeout | undefined;
  /** Browsers this renderer closed on purpose (their exit is not a crash). */
  const retired = new WeakSet<Browser>();
  const counters = { launches: 0, contexts: 0, renders: 0, blockedRequests: 0 };

  /** The running browser, launched on first use and again after it died. */
  function current(): Promise<Browser> {
    if (closed) return Promise.reject(new AppError('dependency_unavailable', 'the PDF renderer is closed'));
    if (browser) return browser;
    counters.launches++;
    // A missing binary fails here, before playwright creates its temporary profile (a failed spawn leaves it behind).
    const launching = access(executablePath, constants.X_OK)
      .then(() => chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: launchTimeoutMs, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false }))
      .then(async (b) => {
        if (closed) {
          // close() ran while the browser was starting: do not leave it behind.
          await b.close().catch(() => undefined);
          throw new AppError('dependency_unavailable', 'the PDF renderer is closed');
        }
        b.on('disconnected', () => {
          if (browser === launching) browser = undefined;
          if (!closed && !retired.has(b)) logger.warn({ executablePath }, 'the PDF browser exited; it starts again on the next render');
        });
        logger.info({ executablePath, version: b.version() }, 'PDF browser started');
        return b;
      })
      // A failed launch is not kept: the next render tries again. The caller gets a 503 without the details.
      .catch((err: unknown) => {
        if (browser === launching) browser = undefined;
        if (err instanceof AppError) throw err;
        logger.error({ executablePath, err: (err as Error).message }, 'the PDF browser could not start');
        throw new AppError('dependency_unavailable', 'PDF rendering is unavailable: the browser could not start');
      });
    browser = launching;
    return launching;
  }

  /** A page in its own context (JavaScript off, every request routed), kept for the next renders of the same browser. */
  interface Slot {
    browser: Browser;
    context: BrowserContext;
    page: Page;
    uses: number;
  }
  const idle: Slot[] = [];

  async function openSlot(b: Browser): Promise<Slot> {
    counters.contexts++;
    const context = await b.newContext({ javaScriptEnabled: false, serviceWorkers: 'block', acceptDownloads: false });
    try {
      // Nothing leaves the page: images, stylesheets, fonts, frames, navigations, pings are all refused.
      // data: URLs (the inline images we resolved) never reach the network and are let through.
      await context.route('**/*', (route) => {
        if (route.request().url().startsWith('data:')) return route.continue();
        counters.blockedRequests++;
        return route.abort('blockedbyclient');
      });
      return { browser: b, context, page: await context.newPage(), uses: 0 };
    } catch (err) {
      await context.close().catch(() => undefined);
      throw err;
    }
  }

  const discard = (slot: Slot): void => void slot.context.close().catch(() => undefined);

  async function acquire(b: Browser): Promise<Slot> {
    for (let slot = idle.pop(); slot; slot = idle.pop()) {
      if (slot.browser === b && b.isConnected() && !slot.page.isClosed()) return slot;
      discard(slot);
    }
    return openSlot(b);
  }

  async function renderOnce(b: Browser, html: string): Promise<Uint8Array> {
    let slot: Slot | undefined;
    let timedOut = false;
    let done = false;
    try {
      const pdf = await within(
        (async () => {
          const s = await acquire(b);
          if (timedOut) {
            discard(s);
            throw new RenderTimeoutError(timeoutMs);
          }
          slot = s;
          await s.page.setContent(html, { waitUntil: 'load', timeout: timeoutMs });
          return s.page.pdf({ format: 'A4', printBackground: true, margin: MARGIN });
        })(),
        timeoutMs,
        () => {
          timedOut = true;
          if (slot) discard(slot);
        },
      );
      done = true;
      return new Uint8Array(pdf.buffer, pdf.byteOffset, pdf.byteLength);
    } finally {
      if (slot) {
        slot.uses++;
        // A page that failed, timed out or served many renders is replaced by a fresh one.
        if (done && !closed && slot.uses < maxPageUses && b.isConnected()) idle.push(slot);
        else if (!timedOut) await slot.context.close().catch(() => undefined);
      }
    }
  }

  /** Closes the browser once no render came for `idleCloseMs`; the next render starts it again. */
  function scheduleIdleClose(): void {
    clearTimeout(idleTimer);
    if (idleCloseMs <= 0 || closed) return;
    idleTimer = setTimeout(() => {
      if (closed || queue.pending > 0 || queue.size > 0 || !browser) return;
      const retiring = browser;
      browser = undefined;
      idle.splice(0).forEach(discard);
      void retiring
        .then((b) => {
          retired.add(b);
          logger.info({ idleMs: idleCloseMs }, 'PDF browser closed after being idle');
          return b.close();
        })
        .catch(() => undefined);
    }, idleCloseMs);
    idleTimer.unref();
  }

  async function render(html: string): Promise<Uint8Array> {
    if (closed) throw new AppError('dependency_unavailable', 'the PDF renderer is closed');
    clearTimeout(idleTimer);
    if (queue.size >= maxQueued) throw new AppError('dependency_unavailable', 'the PDF renderer is busy; try again shortly');
    return queue.add(async () => {
      // Renders still waiting when close() runs are refused; the running ones finish (bounded by close()).
      if (closed) throw new AppError('dependency_unavailable', 'the PDF renderer is closing');
      try {
        // One retry when the browser died under this render (crash, OOM kill): the next attempt relaunches it;
        // likewise when the page lost its document mid-render (the failed page is closed, the retry gets a fresh one).
        for (let attempt = 1; ; attempt++) {
          const b = await current();
          try {
            const pdf = await renderOnce(b, html);
            counters.renders++;
            return pdf;
          } catch (err) {
            if (attempt < 2 && !closed && !b.isConnected()) {
              if (browser && (await browser.catch(() => undefined)) === b) browser = undefined;
              logger.warn({ err: (err as Error).message }, 'the PDF browser died during a render; retrying once');
              continue;
            }
            if (attempt < 2 && !closed && /Execution context was destroyed|Target (?:page, context or browser )?(?:has been )?closed/i.test((err as Error).message ?? '')) {
              logger.warn({ err: (err as Error).message }, 'the PDF page lost its document during a render; retrying once on a fresh page');
              continue;
            }
            if (err instanceof RenderTimeoutError) throw new AppError('dependency_unavailable', err.message);
            throw err;
          }
        }
      } finally {
        scheduleIdleClose();
      }
    });
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearTimeout(idleTimer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, closeTimeoutMs);
    });
    try {
      await Promise.race([queue.onIdle(), deadline]);
      idle.splice(0).forEach(discard);
      const b = await Promise.race([browser?.catch(() => undefined), deadline]);
      if (b) await Promise.race([b.close().catch(() => undefined), deadline]);
    } finally {
      clearTimeout(timer);
      browser = undefined;
    }
  }

  return {
    render,
    close,
    stats: () => ({ ...counters, running: queue.pending, queued: queue.size }),
  };
}

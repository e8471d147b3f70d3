// The Zendesk ticket sidebar (GET /zendesk/sidebar, .js, .css): its headers, then the page in a real headless
// Chromium against a real service. The Zendesk side is faked: a stand-in ZAF SDK answered for the SDK URL, whose
// client.request goes to a "proxy" in this process that, like Zendesk's, puts the secure api_token setting into the
// Authorization header of secure requests to the whitelisted host. Every other network request is refused.
import { createServer as createNetServer } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { OpenAPIHono } from '@hono/zod-openapi';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FetchedMessage } from '../src/core/ports.js';
import type { AuthEnv } from '../src/http/auth.js';
import { SIDEBAR_JS, ZAF_SDK_URL } from '../src/http/pages/zendesk-sidebar.js';
import { zendeskSidebarRoutes } from '../src/http/routes/zendesk-sidebar.js';
import { startTestService, TEST_ADMIN_TOKEN, type TestService } from './helpers/service.js';

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];
const NOT_EC = 'This ticket is not an email-channel ticket';
/** What ZAF puts in the iframe URL; the SDK's init() refuses to start without origin and app_guid. */
const ZAF_QUERY = '?origin=https%3A%2F%2Facme.zendesk.com&app_guid=0f1e2d3c-guid';

const pages = new OpenAPIHono<AuthEnv>();
zendeskSidebarRoutes(pages);

let svc: TestService;
let server: Server;
let base: string;
let browser: Browser;
let annSession: string;
let xssSession: string;
let uid = 0;

function deliver(raw: string, over: Partial<FetchedMessage> = {}) {
  const bytes = Buffer.from(raw.replace(/\r?\n/g, '\r\n'));
  uid++;
  return svc.services.ingest.deliver({ accountId: 'acc_x', uidValidity: '7', uid, internalDate: Date.now(), size: bytes.length, raw: new Uint8Array(bytes), imported: false, ...over });
}
const mail = (h: { id: string; from: string; subject: string; body: string; inReplyTo?: string }) =>
  [
    `From: ${h.from}`,
    'To: help@shop.example',
    `Subject: ${h.subject}`,
    `Message-ID: <${h.id}>`,
    ...(h.inReplyTo ? [`In-Reply-To: <${h.inReplyTo}>`] : []),
    'Date: Mon, 02 Nov 2026 09:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    h.body,
    '',
  ].join('\n');

async function sessionIdOf(customer: string): Promise<string> {
  const res = await svc.call('GET', `/api/sessions?customer=${encodeURIComponent(customer)}`);
  expect(res.status).toBe(200);
  return res.body.items[0].id as string;
}

/** The stand-in for zaf_sdk.min.js: ZAFClient.init() → a client whose get/invoke/metadata/request act as documented. */
const FAKE_ZAF_SDK = `(function () {
  var cfg = window.__zafTest || {};
  window.__zafCalls = [];
  window.ZAFClient = {
    init: function () {
      var q = new URLSearchParams(window.location.search);
      if (!q.get('origin') || !q.get('app_guid')) return false;
      return {
        get: function (path) {
          window.__zafCalls.push(['get', path]);
          var out = {};
          out[path] = path === 'ticket.externalId' ? cfg.externalId : null;
          return Promise.resolve(out);
        },
        invoke: function (name, arg) {
          window.__zafCalls.push(['invoke', name, arg]);
          return Promise.resolve({});
        },
        // Secure settings are not in the metadata: only public_url is.
        metadata: function () {
          return Promise.resolve({ appId: 1, installationId: 2, name: 'Email channel', settings: { title: 'Email channel', public_url: cfg.publicUrl } });
        },
        request: function (options) {
          window.__zafCalls.push(['request', options]);
          return window.__zafProxy(JSON.stringify(options)).then(function (raw) {
            var r = JSON.parse(raw);
            if (r.status >= 200 && r.status < 300) return r.json;
            throw { status: r.status, statusText: r.statusText, responseText: r.text, responseJSON: r.json };
          });
        },
        on: function () {}
      };
    }
  };
})();`;

interface ProxyOptions {
  url: string;
  type?: string;
  headers?: Record<string, string>;
  secure?: boolean;
  cors?: boolean;
  dataType?: string;
}

interface Sidebar {
  page: Page;
  /** The options the page passed to client.request, as the proxy received them. */
  proxyCalls: ProxyOptions[];
  /** Requests refused by the network rule (anything but the SDK URL and the local server). */
  blocked: string[];
  /** Page errors and Content-Security-Policy reports. */
  problems: string[];
  text(): Promise<string>;
}

const opened: Sidebar[] = [];

async function openSidebar(opts: {
  externalId: string | null;
  /** The value of the secure api_token setting. */
  token?: string;
  publicUrl?: string;
  query?: string;
  /** Answers the proxied request instead of the service (to show data the test service cannot make). */
  answer?: (url: string, fromService: { status: number; json: unknown }) => { status: number; json: unknown };
}): Promise<Sidebar> {
  const token = opts.token ?? TEST_ADMIN_TOKEN;
  const whitelisted = new URL(base).host; // the manifest's domainWhitelist
  const context = await browser.newContext();
  const page = await context.newPage();
  const sidebar: Sidebar = {
    page,
    proxyCalls: [],
    blocked: [],
    problems: [],
    text: async () => (await page.locator('#app').innerText()).replace(/\s+/g, ' '),
  };
  opened.push(sidebar);

  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (url === ZAF_SDK_URL) return route.fulfill({ status: 200, contentType: 'text/javascript', body: FAKE_ZAF_SDK });
    if (url.startsWith(`${base}/`)) return route.continue();
    sidebar.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  // Zendesk's proxy: server-side, so neither CORS nor the page's CSP applies; secure settings only for secure
  // requests to whitelisted hosts.
  await page.exposeFunction('__zafProxy', async (raw: string): Promise<string> => {
    const options = JSON.parse(raw) as ProxyOptions;
    sidebar.proxyCalls.push(options);
    const substitute = options.secure === true && new URL(options.url).host === whitelisted;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) headers[k] = substitute ? v.replaceAll('{{setting.api_token}}', token) : v;
    try {
      const res = await fetch(options.url, { method: options.type ?? 'GET', headers });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      const out = opts.answer ? opts.answer(options.url, { status: res.status, json }) : { status: res.status, json };
      return JSON.stringify({ status: out.status, statusText: res.statusText, text: JSON.stringify(out.json), json: out.json });
    } catch {
      return JSON.stringify({ status: 0, statusText: 'error', text: '', json: null });
    }
  });
  await page.addInitScript({ content: `window.__zafTest = ${JSON.stringify({ externalId: opts.externalId, publicUrl: opts.publicUrl ?? base })};` });
  page.on('pageerror', (err) => sidebar.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) sidebar.problems.push(`console: ${msg.text()}`);
  });

  const res = await page.goto(`${base}/zendesk/sidebar${opts.query ?? ZAF_QUERY}`);
  expect(res?.status()).toBe(200);
  await page.waitForSelector('#app .session, #app .notice-error, #app .notice-muted');
  return sidebar;
}

beforeAll(async () => {
  svc = await startTestService();
  const long = `It started smoking this morning. ${'The paper tray is melting and the smell is terrible. '.repeat(8)}END-OF-BODY`;
  expect(await deliver(mail({ id: 'p0@example.com', from: 'Ann Customer <ann@example.com>', subject: 'Printer on fire', body: long }))).toBe('stored');
  for (let i = 1; i <= 11; i++) {
    await deliver(mail({ id: `p${i}@example.com`, from: 'Ann Customer <ann@example.com>', subject: `Re: Printer on fire (${i})`, body: `Update number ${i}.`, inReplyTo: `p${i - 1}@example.com` }));
  }
  await deliver(
    mail({
      id: 'x1@example.com',
      from: '"<b>Mallory</b>" <mallory@example.com>',
      subject: '<img src=x onerror="window.__xss=1"> hello',
      body: '<script>window.__xss=2</script><img src=y onerror="window.__xss=3">',
    }),
  );
  annSession = await sessionIdOf('ann@example.com');
  xssSession = await sessionIdOf('mallory@example.com');

  const listener = getRequestListener((req) => (new URL(req.url).pathname.startsWith('/zendesk/') ? pages.fetch(req) : svc.services.app.fetch(req)));
  server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await svc?.stop();
});

describe('GET /zendesk/sidebar, /zendesk/sidebar.js, /zendesk/sidebar.css', () => {
  it('serves the page without a token, with a CSP for the SDK host, no inline script and Zendesk framing', async () => {
    const res = await pages.request('/zendesk/sidebar');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = res.headers.get('content-security-policy') ?? '';
    const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('script-src')).toEqual(["'self'", 'https://static.zdassets.com']);
    expect(directives.get('frame-ancestors')).toEqual(['https://*.zendesk.com']);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');

    const html = await res.text();
    expect(html).toContain(`<script src="${ZAF_SDK_URL}"></script>`);
    expect(html).toContain('<script src="sidebar.js"></script>');
    expect(html, 'every script has a src').not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html, 'no inline style').not.toMatch(/<style|\sstyle=/i);
    expect(html, 'no inline event handler').not.toMatch(/\son[a-z]+=/i);
  });

  it('serves the script as text/javascript and the stylesheet as text/css', async () => {
    const js = await pages.request('/zendesk/sidebar.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    expect(js.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await js.text()).toBe(SIDEBAR_JS);
    const css = await pages.request('/zendesk/sidebar.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('the script writes text only and sends the secure placeholder, never a token', () => {
    expect(SIDEBAR_JS).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
    expect(SIDEBAR_JS).toContain("Authorization: 'Bearer {{setting.api_token}}'");
    expect(SIDEBAR_JS).toContain('secure: true');
  });

  it('the pages answer without a token next to the API, which still wants one', async () => {
    for (const path of ['/zendesk/sidebar', '/zendesk/sidebar.js', '/zendesk/sidebar.css']) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(200);
    }
    expect((await fetch(`${base}/api/sessions/${annSession}`)).status).toBe(401);
  });
});

describe('the sidebar in Chromium, inside a faked Zendesk', () => {
  afterAll(async () => {
    for (const s of opened) await s.page.context().close();
  });

  it('shows the session of an ec: ticket, read through the proxy with the secure token', async () => {
    const s = await openSidebar({ externalId: `ec:${annSession}` });
    const detail = (await svc.call('GET', `/api/sessions/${annSession}`)).body;

    await expect.poll(() => s.page.locator('[data-field="status"]').innerText()).toBe(detail.status);
    expect(await s.page.locator('[data-field="id"]').innerText()).toBe(annSession);
    expect(await s.page.locator('.badge-status').innerText()).toBe(detail.status);
    expect(await s.page.locator('[data-field="queueId"]').innerText()).toBe(detail.queueId ?? '—');
    expect(await s.page.locator('[data-field="assigneeId"]').innerText()).toBe(detail.assigneeId ?? 'Unassigned');
    expect(await s.page.locator('[data-field="customer"]').innerText()).toBe('Ann Customer <ann@example.com>');
    expect(await s.page.locator('[data-field="messageCount"]').innerText()).toBe('12');
    expect(await s.page.locator('[data-field="interactions"]').innerText()).toBe(String(detail.interactions.length));
    expect(await s.page.locator('[data-field="createdAt"]').innerText()).not.toBe('—');

    // The last 10 of 12, newest first; the first message (not shown) had the long body.
    expect(await s.page.locator('.section-title').innerText()).toMatch(/^last 10 of 12 messages$/i);
    const subjects = await s.page.locator('.message-subject').allInnerTexts();
    expect(subjects).toHaveLength(10);
    expect(subjects[0]).toBe('Re: Printer on fire (11)');
    expect(subjects[9]).toBe('Re: Printer on fire (2)');
    expect(await s.page.locator('.message-text').first().innerText()).toBe('Update number 11.');
    expect(await s.page.locator('.badge-direction').first().innerText()).toBe('Inbound');
    expect(await s.page.locator('.message-from').first().innerText()).toBe('Ann Customer <ann@example.com>');

    // One secure GET with the placeholder: the page never holds the token.
    expect(s.proxyCalls).toHaveLength(1);
    expect(s.proxyCalls[0]).toMatchObject({
      url: `${base}/api/sessions/${annSession}`,
      type: 'GET',
      secure: true,
      dataType: 'json',
      headers: { Authorization: 'Bearer {{setting.api_token}}', Accept: 'application/json' },
    });
    const calls = (await s.page.evaluate('window.__zafCalls')) as unknown[][];
    expect(calls).toContainEqual(['get', 'ticket.externalId']);
    expect(calls.some((c) => c[0] === 'invoke' && c[1] === 'resize')).toBe(true);
    expect(await s.page.content()).not.toContain(TEST_ADMIN_TOKEN);
    expect(s.blocked).toEqual([]);
    expect(s.problems).toEqual([]);
  });

  it('cuts message text at 200 characters', async () => {
    const detail = (await svc.call('GET', `/api/sessions/${annSession}`)).body;
    const first = detail.messages[0];
    const s = await openSidebar({
      externalId: `ec:${annSession}`,
      // Only the first message, so the long one is on screen.
      answer: (_url, real) => ({ status: real.status, json: { ...(real.json as object), messages: [first], messageCount: 1 } }),
    });
    const text = await s.page.locator('.message-text').innerText();
    expect(text.startsWith('It started smoking this morning.')).toBe(true);
    expect(text.endsWith('…')).toBe(true);
    expect([...text]).toHaveLength(201);
    expect(text).not.toContain('END-OF-BODY');
    expect(await s.page.locator('.section-title').innerText()).toMatch(/^messages$/i);
  });

  it('shows the delivery state of outbound messages, with the error when failed or bounced', async () => {
    const detail = (await svc.call('GET', `/api/sessions/${annSession}`)).body;
    const outbound = (id: string, state: string, lastError: string | null) => ({
      ...detail.messages[0],
      id,
      direction: 'outbound',
      kind: 'agent_reply',
      from: { address: 'help@shop.example', name: 'Shop support' },
      subject: `Re: Printer on fire [${state}]`,
      text: 'We are sending a technician.',
      delivery: { state, queuedAt: detail.createdAt, sentAt: null, failedAt: null, attempts: 1, lastError, accepted: [], rejected: [] },
    });
    const s = await openSidebar({
      externalId: `ec:${annSession}`,
      answer: (_url, real) => ({
        status: real.status,
        json: { ...(real.json as object), messages: [outbound('o1', 'sent', null), outbound('o2', 'bounced', '550 5.1.1 <ann@example.com>: user unknown'), outbound('o3', 'failed', 'connect ECONNREFUSED')] },
      }),
    });
    const items = s.page.locator('.message');
    expect(await items.count()).toBe(3);
    // Newest first: o3, o2, o1.
    expect(await items.nth(0).locator('.badge-direction').innerText()).toBe('Outbound');
    expect(await items.nth(0).locator('.delivery-state').innerText()).toBe('failed');
    expect(await items.nth(0).locator('.delivery-error').innerText()).toBe('connect ECONNREFUSED');
    expect(await items.nth(1).locator('.delivery-state').innerText()).toBe('bounced');
    expect(await items.nth(1).locator('.delivery-error').innerText()).toBe('550 5.1.1 <ann@example.com>: user unknown');
    expect(await items.nth(2).locator('.delivery-state').innerText()).toBe('sent');
    expect(await items.nth(2).locator('.delivery-error').count()).toBe(0);
    expect(await items.nth(0).locator('.message-from').innerText()).toBe('Shop support <help@shop.example>');
  });

  it('finds the session of a follow-up ticket (ec:<id>:followup:<ticket>)', async () => {
    const s = await openSidebar({ externalId: `ec:${annSession}:followup:4711` });
    expect(await s.page.locator('[data-field="id"]').innerText()).toBe(annSession);
    expect(s.proxyCalls[0]?.url).toBe(`${base}/api/sessions/${annSession}`);
  });

  it('renders a hostile subject, sender and body as text: no element is created, nothing runs', async () => {
    const s = await openSidebar({ externalId: `ec:${xssSession}` });
    expect(await s.page.locator('.message-subject').innerText()).toBe('<img src=x onerror="window.__xss=1"> hello');
    expect(await s.page.locator('.message-from').innerText()).toBe('<b>Mallory</b> <mallory@example.com>');
    expect(await s.page.locator('.message-text').innerText()).toContain('<script>window.__xss=2</script>');
    expect(await s.page.locator('img, b, script:not([src])').count()).toBe(0);
    expect(await s.page.evaluate('typeof window.__xss')).toBe('undefined');
    expect(s.blocked).toEqual([]);
    expect(s.problems).toEqual([]);
  });

  it('says a ticket without an ec: external id is not an email-channel ticket, and asks nothing', async () => {
    for (const externalId of [null, 'SF-00042', 'ecx:S1', 'ec:', 'ec:bad id']) {
      const s = await openSidebar({ externalId });
      expect(await s.text(), String(externalId)).toContain(NOT_EC);
      expect(s.proxyCalls, String(externalId)).toEqual([]);
      expect(s.problems).toEqual([]);
    }
  });

  it('a refused token (401) says so and names the setting to fix', async () => {
    const s = await openSidebar({ externalId: `ec:${annSession}`, token: 'not-a-valid-token' });
    const text = await s.text();
    expect(text).toContain('refused the API token (401)');
    expect(text).toContain("app's settings");
    expect(await s.page.locator('[role="alert"]').count()).toBe(1);
    expect(await s.page.locator('[data-field="status"]').count()).toBe(0);
  });

  it('an unknown session (404) and an unreachable service are explained, with a retry', async () => {
    const missing = await openSidebar({ externalId: 'ec:SNOSUCHSESSION' });
    expect(await missing.text()).toContain('Session SNOSUCHSESSION was not found in the email channel (404)');

    const closedPort = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    const down = await openSidebar({ externalId: `ec:${annSession}`, publicUrl: `http://127.0.0.1:${closedPort}` });
    expect(await down.text()).toContain('could not be reached');
    expect(await down.text()).toContain(`http://127.0.0.1:${closedPort}`);

    // "Try again" reads the ticket and the session again (here the ticket now carries a known session).
    await missing.page.evaluate(`window.__zafTest.externalId = ${JSON.stringify(`ec:${annSession}`)}`);
    await missing.page.getByRole('button', { name: 'Try again' }).click();
    await missing.page.waitForSelector('#app .session');
    expect(await missing.page.locator('[data-field="id"]').innerText()).toBe(annSession);
    expect(missing.proxyCalls).toHaveLength(2);
  });

  it('outside Zendesk (no origin/app_guid in the URL) it says where to open it', async () => {
    const s = await openSidebar({ externalId: `ec:${annSession}`, query: '' });
    expect(await s.text()).toContain('Open this page from the Zendesk ticket sidebar');
    expect(s.proxyCalls).toEqual([]);
  });
});

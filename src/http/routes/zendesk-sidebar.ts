// The Zendesk ticket sidebar the app in manifests/zendesk frames: GET /zendesk/sidebar (HTML), /zendesk/sidebar.js
// and /zendesk/sidebar.css. Static pages without data, so no token: the script reads the session through the Zendesk
// proxy with the app's secure api_token setting. Pages, not API: plain routes, not in the OpenAPI document.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthEnv } from '../auth.js';
import { SIDEBAR_CSP, SIDEBAR_CSS, SIDEBAR_HTML, SIDEBAR_JS } from '../pages/zendesk-sidebar.js';

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Deploys change the script; a cached copy is revalidated rather than trusted.
  'cache-control': 'no-cache',
} as const;

export function zendeskSidebarRoutes(app: OpenAPIHono<AuthEnv>): void {
  app.get('/zendesk/sidebar', (c) =>
    c.body(SIDEBAR_HTML, 200, { ...COMMON_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': SIDEBAR_CSP }),
  );
  app.get('/zendesk/sidebar.js', (c) => c.body(SIDEBAR_JS, 200, { ...COMMON_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/zendesk/sidebar.css', (c) => c.body(SIDEBAR_CSS, 200, { ...COMMON_HEADERS, 'content-type': 'text/css; charset=utf-8' }));
}

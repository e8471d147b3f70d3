// The Zendesk ticket sidebar (manifests/zendesk): a static page, its script and its stylesheet, as strings so the
// Worker bundle needs no file system. No data is in them: the script asks Zendesk for the ticket's external id and
// reads the session through the Zendesk proxy (client.request with secure: true), which puts the app's secure
// `api_token` setting into the Authorization header server-side; the token never reaches the browser.
// Everything the API returns is written with textContent, never as HTML.

/** The Zendesk Apps framework SDK v2 (the URL Zendesk documents; it follows the 2.0 patch releases). */
export const ZAF_SDK_URL = 'https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js';

/** Scripts from 'self' and the SDK host only, no inline script or style, framed by Zendesk only. */
export const SIDEBAR_CSP = [
  "default-src 'none'",
  "script-src 'self' https://static.zdassets.com",
  "style-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  'frame-ancestors https://*.zendesk.com',
].join('; ');

export const SIDEBAR_NOT_EC_TEXT = 'This ticket is not an email-channel ticket.';

// Relative URLs: the page is served at {public_url}/zendesk/sidebar, possibly under a path prefix.
export const SIDEBAR_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Email channel</title>
<link rel="stylesheet" href="sidebar.css">
</head>
<body>
<main id="app" aria-live="polite"><p class="notice notice-info">Loading…</p></main>
<script src="${ZAF_SDK_URL}"></script>
<script src="sidebar.js"></script>
</body>
</html>
`;

// Plain ES2017, no template literals (this file is one); every value from the API goes through textContent.
export const SIDEBAR_JS = String.raw`/* Email channel: Zendesk ticket sidebar. */
(function () {
  'use strict';

  var MAX_MESSAGES = 10;
  var SNIPPET_CHARS = 200;
  var NOT_EC_TEXT = ${JSON.stringify(SIDEBAR_NOT_EC_TEXT)};
  /** ec:<sessionId>, or ec:<sessionId>:followup:<ticketId> for the follow-up of a closed ticket. */
  var EXTERNAL_ID = /^ec:([A-Za-z0-9_-]{1,64})(?::|$)/;

  var root = document.getElementById('app');
  var client = null;
  var lastHeight = 0;
  var loading = 0;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function token(value) {
    return String(value || '').toLowerCase().replace(/[^a-z0-9_-]/g, '');
  }

  function resize() {
    if (!client) return;
    var height = Math.ceil(root.getBoundingClientRect().bottom) + 12;
    height = Math.max(48, Math.min(height, 2000));
    if (height === lastHeight) return;
    lastHeight = height;
    try {
      Promise.resolve(client.invoke('resize', { width: '100%', height: height + 'px' })).catch(function () {});
    } catch (e) {
      /* outside Zendesk: nothing to resize */
    }
  }

  function replace(node) {
    while (root.firstChild) root.removeChild(root.firstChild);
    root.appendChild(node);
    resize();
  }

  function button(label, onClick) {
    var b = el('button', 'button', label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function showMessage(kind, text, detail, retry) {
    var box = el('div', 'notice notice-' + kind);
    box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    box.appendChild(el('p', 'notice-text', text));
    if (detail) box.appendChild(el('p', 'notice-detail', detail));
    if (retry) box.appendChild(button('Try again', load));
    replace(box);
  }

  function sessionIdOf(externalId) {
    if (typeof externalId !== 'string') return null;
    var match = EXTERNAL_ID.exec(externalId.trim());
    return match ? match[1] : null;
  }

  /** The service URL: the public_url setting (not secure, so client.metadata() gives it), else this page's origin. */
  function baseUrlOf(metadata) {
    var settings = metadata && metadata.settings;
    var url = settings && typeof settings.public_url === 'string' ? settings.public_url.trim() : '';
    url = url.split(/[?#]/)[0];
    if (!/^https?:\/\/[^\s\/]+/i.test(url)) url = window.location.origin;
    return url.replace(/\/+$/, '');
  }

  function dateText(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    try {
      return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    } catch (e) {
      return d.toLocaleString();
    }
  }

  function addressText(a) {
    if (!a || typeof a.address !== 'string') return '';
    return a.name ? a.name + ' <' + a.address + '>' : a.address;
  }

  function snippetOf(text) {
    var chars = Array.from(String(text || '').replace(/\s+/g, ' ').trim());
    return chars.length > SNIPPET_CHARS ? chars.slice(0, SNIPPET_CHARS).join('') + '…' : chars.join('');
  }

  function fact(list, label, value, field, className) {
    list.appendChild(el('dt', null, label));
    var dd = el('dd', className || null, value === null || value === undefined || value === '' ? '—' : value);
    dd.setAttribute('data-field', field);
    list.appendChild(dd);
  }

  function messageItem(m) {
    var outbound = m.direction === 'outbound';
    var li = el('li', 'message ' + (outbound ? 'message-outbound' : 'message-inbound'));
    var meta = el('div', 'message-meta');
    meta.appendChild(el('span', 'badge badge-direction', outbound ? 'Outbound' : 'Inbound'));
    meta.appendChild(el('span', 'message-from', addressText(m.from) || '(no sender)'));
    var when = m.date || m.receivedAt;
    var time = el('time', 'message-date', dateText(when));
    if (when) time.setAttribute('datetime', String(when));
    meta.appendChild(time);
    li.appendChild(meta);
    li.appendChild(el('p', 'message-subject', m.subject || '(no subject)'));
    var snippet = snippetOf(m.text);
    if (snippet) li.appendChild(el('p', 'message-text', snippet));
    if (outbound && m.delivery && typeof m.delivery === 'object') {
      var state = String(m.delivery.state || 'unknown');
      var problem = state === 'failed' || state === 'bounced';
      var delivery = el('p', 'delivery delivery-' + token(state) + (problem ? ' delivery-problem' : ''));
      delivery.appendChild(el('span', 'delivery-label', 'Delivery: '));
      delivery.appendChild(el('span', 'delivery-state', state));
      if (problem && m.delivery.lastError) delivery.appendChild(el('span', 'delivery-error', String(m.delivery.lastError)));
      li.appendChild(delivery);
    }
    return li;
  }

  function render(s) {
    if (!s || typeof s !== 'object' || typeof s.id !== 'string') throw new Error('The answer is not a session');
    var messages = Array.isArray(s.messages) ? s.messages : [];
    var interactions = Array.isArray(s.interactions) ? s.interactions : [];

    var section = el('section', 'session');
    var head = el('header', 'session-head');
    head.appendChild(el('h1', 'session-title', 'Email session'));
    head.appendChild(el('span', 'badge badge-status status-' + token(s.status), s.status));
    head.appendChild(button('Refresh', load));
    section.appendChild(head);

    var facts = el('dl', 'facts');
    fact(facts, 'Session', s.id, 'id', 'mono');
    fact(facts, 'Status', s.status, 'status');
    fact(facts, 'Queue', s.queueId, 'queueId', 'mono');
    fact(facts, 'Assignee', s.assigneeId || 'Unassigned', 'assigneeId', s.assigneeId ? 'mono' : 'muted');
    fact(facts, 'Customer', addressText(s.customer), 'customer');
    fact(facts, 'Created', dateText(s.createdAt), 'createdAt');
    fact(facts, 'Updated', dateText(s.updatedAt), 'updatedAt');
    fact(facts, 'Messages', typeof s.messageCount === 'number' ? s.messageCount : messages.length, 'messageCount');
    fact(facts, 'Interactions', interactions.length, 'interactions');
    section.appendChild(facts);

    var shown = messages.slice(-MAX_MESSAGES).reverse();
    section.appendChild(el('h2', 'section-title', messages.length > shown.length ? 'Last ' + shown.length + ' of ' + messages.length + ' messages' : 'Messages'));
    if (shown.length === 0) {
      section.appendChild(el('p', 'muted', 'No messages yet.'));
    } else {
      var list = el('ol', 'messages');
      shown.forEach(function (m) { if (m && typeof m === 'object') list.appendChild(messageItem(m)); });
      section.appendChild(list);
    }
    replace(section);
  }

  /** A ZAF request failure: the proxied response (status, responseText, responseJSON) or an Error. */
  function failureStatus(failure) {
    return failure && typeof failure.status === 'number' ? failure.status : 0;
  }

  function failureMessage(failure) {
    var body = failure && failure.responseJSON;
    if (!body && failure && typeof failure.responseText === 'string') {
      try { body = JSON.parse(failure.responseText); } catch (e) { body = null; }
    }
    return body && body.error && typeof body.error.message === 'string' ? body.error.message : '';
  }

  function showFailure(failure, sessionId, base) {
    var status = failureStatus(failure);
    var detail = failureMessage(failure);
    if (status === 401) {
      showMessage('error', 'The email channel refused the API token (401).', 'An admin must paste a valid email-channel token (admin or agent) in this app\'s settings in Zendesk.', true);
    } else if (status === 403) {
      showMessage('error', 'This token may not read session ' + sessionId + ' (403).', detail, true);
    } else if (status === 404) {
      showMessage('error', 'Session ' + sessionId + ' was not found in the email channel (404).', detail, true);
    } else if (status === 0) {
      showMessage('error', 'The email channel service could not be reached.', 'Check the service URL in the app settings: ' + base, true);
    } else {
      showMessage('error', 'The email channel answered with an error (' + status + ').', detail, true);
    }
  }

  /** The session body, whatever shape the framework resolved with. */
  function sessionOf(response) {
    if (typeof response === 'string') return JSON.parse(response);
    if (response && response.responseJSON && typeof response.status === 'number') return response.responseJSON;
    return response;
  }

  function load() {
    var run = ++loading;
    showMessage('info', 'Loading the email session…');
    return Promise.all([client.get('ticket.externalId'), client.metadata()]).then(
      function (results) {
        if (run !== loading) return;
        var externalId = results[0] ? results[0]['ticket.externalId'] : null;
        var sessionId = sessionIdOf(externalId);
        if (!sessionId) {
          showMessage('muted', NOT_EC_TEXT, 'The email channel creates its tickets with an external id starting with "ec:".');
          return;
        }
        var base = baseUrlOf(results[1]);
        return client
          .request({
            url: base + '/api/sessions/' + encodeURIComponent(sessionId),
            type: 'GET',
            dataType: 'json',
            headers: { Accept: 'application/json', Authorization: 'Bearer {{setting.api_token}}' },
            secure: true,
            cors: false,
          })
          .then(
            function (response) {
              if (run !== loading) return;
              try {
                render(sessionOf(response));
              } catch (err) {
                showMessage('error', 'The session could not be displayed.', err && err.message ? err.message : String(err), true);
              }
            },
            function (failure) {
              if (run === loading) showFailure(failure, sessionId, base);
            },
          );
      },
      function (err) {
        if (run === loading) showMessage('error', 'The sidebar could not read the ticket from Zendesk.', err && err.message ? err.message : String(err), true);
      },
    );
  }

  function start() {
    var zaf = window.ZAFClient;
    client = zaf && typeof zaf.init === 'function' ? zaf.init() : null;
    if (!client) {
      showMessage('error', 'Open this page from the Zendesk ticket sidebar.', 'The Zendesk Apps framework did not start: the page was opened outside Zendesk, or its SDK did not load.');
      return;
    }
    resize();
    load();
  }

  start();
})();
`;

// Zendesk Garden-like: system font, 14px, Garden greys and accent colours.
export const SIDEBAR_CSS = `*, *::before, *::after { box-sizing: border-box; }
html, body { margin: 0; padding: 0; background: #fff; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 14px; line-height: 20px; color: #2f3941; }
main { padding: 8px 12px; }
h1, h2, p, dl, dd, ol { margin: 0; padding: 0; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; word-break: break-all; }
.muted { color: #68737d; }
.notice { padding: 10px 12px; border-radius: 4px; border: 1px solid #d8dcde; background: #f8f9f9; }
.notice-error { border-color: #f5b5ba; background: #fff0f1; color: #8c232c; }
.notice-muted { color: #68737d; }
.notice-detail { margin-top: 4px; font-size: 12px; line-height: 16px; overflow-wrap: anywhere; }
.button { margin-top: 8px; padding: 0 12px; height: 28px; font: inherit; font-size: 12px; color: #1f73b7; background: #fff; border: 1px solid #1f73b7; border-radius: 4px; cursor: pointer; }
.button:hover { background: #edf7ff; }
.button:focus-visible { outline: 2px solid #1f73b7; outline-offset: 1px; }
.session-head { display: flex; align-items: center; gap: 8px; margin-bottom: 8px; }
.session-head .button { margin: 0 0 0 auto; }
.session-title { font-size: 14px; font-weight: 600; }
.section-title { margin: 12px 0 6px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: #68737d; }
.badge { display: inline-block; padding: 0 8px; border-radius: 4px; font-size: 12px; line-height: 20px; font-weight: 600; background: #e9ebed; color: #49545c; white-space: nowrap; }
.status-unopened, .status-reopened { background: #fff7ed; color: #ad5918; }
.status-active { background: #fff0f1; color: #cc3340; }
.status-paused { background: #edf7ff; color: #1f73b7; }
.status-resolved { background: #edf8f4; color: #038153; }
.status-closed { background: #e9ebed; color: #49545c; }
.facts { display: grid; grid-template-columns: max-content 1fr; column-gap: 12px; row-gap: 2px; }
.facts dt { color: #68737d; }
.facts dd { overflow-wrap: anywhere; }
.messages { list-style: none; }
.message { padding: 8px 0; border-top: 1px solid #e9ebed; }
.message-meta { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; font-size: 12px; line-height: 16px; color: #68737d; }
.message-outbound .badge-direction { background: #edf7ff; color: #1f73b7; }
.message-from { color: #2f3941; overflow-wrap: anywhere; }
.message-subject { margin-top: 4px; font-weight: 600; overflow-wrap: anywhere; }
.message-text { margin-top: 2px; color: #49545c; overflow-wrap: anywhere; }
.delivery { margin-top: 4px; font-size: 12px; line-height: 16px; color: #68737d; }
.delivery-problem { color: #cc3340; }
.delivery-error { display: block; overflow-wrap: anywhere; }
`;

// Unit tests of Zendesk webhook verification (signature, timestamp window) and payload → CrmEvent mapping.
import { describe, expect, it } from 'vitest';
import { ConnectorError, type IncomingRequest } from '../contract.js';
import { renderPayload } from './fake.js';
import { AGENT_REPLY_PAYLOAD, ASSIGNEE_PAYLOAD, MAX_WEBHOOK_SKEW_MS, parseZendeskWebhook, signZendeskWebhook, statusPayload, verifyZendeskWebhook } from './webhooks.js';

const SECRET = 'dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==';
const API_USER = 'integration@acme.example';
const NOW = Date.parse('2026-03-01T12:00:00Z');
const TS = '2026-03-01T12:00:00Z';

function request(body: string, over: { timestamp?: string; signature?: string; receivedAt?: number; invocation?: string } = {}): IncomingRequest {
  const timestamp = over.timestamp ?? TS;
  return {
    headers: {
      'Content-Type': 'application/json',
      'X-Zendesk-Webhook-Signature': over.signature ?? signZendeskWebhook(SECRET, timestamp, body),
      'X-Zendesk-Webhook-Signature-Timestamp': timestamp,
      'X-Zendesk-Webhook-Invocation-Id': over.invocation ?? '8350205582',
      'X-Zendesk-Webhook-Id': '01F1KRFQ6BG29CNWFR60NK5FNY',
    },
    body,
    receivedAt: over.receivedAt ?? NOW,
  };
}

const parse = (r: IncomingRequest) => parseZendeskWebhook(r, { secret: SECRET, apiUserEmail: API_USER });
const authError = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectorError);
    expect((e as ConnectorError).kind).toBe('auth');
    return;
  }
  throw new Error('expected ConnectorError auth');
};

describe('verifyZendeskWebhook', () => {
  const body = '{"a":1}';

  it('base64(HMAC-SHA256(secret, timestamp + body)), compared in constant time', () => {
    // Checked against an independent implementation (openssl):
    // printf '%s' '2021-03-25T05:09:27Z{}' | openssl dgst -sha256 -hmac k -binary | base64
    expect(signZendeskWebhook('k', '2021-03-25T05:09:27Z', '{}')).toBe('Qn1sffziTxF+avsKj6iDWIp0dhyU9srhFGY+nhpxl40=');
    expect(verifyZendeskWebhook(request(body), SECRET)).toEqual({ timestampMs: NOW });
  });

  it('refuses a forged signature, a changed body and a missing signature or timestamp', () => {
    authError(() => verifyZendeskWebhook(request(body, { signature: signZendeskWebhook('other-secret', TS, body) }), SECRET));
    authError(() => verifyZendeskWebhook({ ...request(body), body: '{"a":2}' }, SECRET));
    authError(() => verifyZendeskWebhook(request(body, { signature: 'short' }), SECRET));
    const unsigned = request(body);
    delete unsigned.headers['X-Zendesk-Webhook-Signature'];
    authError(() => verifyZendeskWebhook(unsigned, SECRET));
    const noTs = request(body);
    delete noTs.headers['X-Zendesk-Webhook-Signature-Timestamp'];
    authError(() => verifyZendeskWebhook(noTs, SECRET));
  });

  it('refuses a stale (> 5 min) or future timestamp, even correctly signed', () => {
    authError(() => verifyZendeskWebhook(request(body, { receivedAt: NOW + MAX_WEBHOOK_SKEW_MS + 1000 }), SECRET));
    authError(() => verifyZendeskWebhook(request(body, { receivedAt: NOW - MAX_WEBHOOK_SKEW_MS - 1000 }), SECRET));
    expect(verifyZendeskWebhook(request(body, { receivedAt: NOW + MAX_WEBHOOK_SKEW_MS - 1000 }), SECRET).timestampMs).toBe(NOW);
    authError(() => verifyZendeskWebhook(request(body, { timestamp: 'yesterday' }), SECRET));
  });
});

describe('parseZendeskWebhook: the payloads our triggers send', () => {
  const ticket = { id: '1042', external_id: 'ec:S7K2M9QX4TB', assignee: { email: 'agent1@example.com' } };

  it('agent public reply → agent_reply with body, author and attachments; invocation id as eventId', () => {
    const body = renderPayload(AGENT_REPLY_PAYLOAD, {
      ticket: { ...ticket, latest_public_comment: { value: 'Hello "Casey",\nfixed.', author: { email: 'agent1@example.com' }, attachments: [{ filename: 'a.png', url: 'https://acme.zendesk.com/attachments/token/x/?name=a.png' }, { filename: 'b.txt', url: 'https://acme.zendesk.com/b' }] } },
      current_user: { email: 'agent1@example.com' },
    });
    expect(JSON.parse(body)).toMatchObject({ email_channel_event: 'agent_reply', ticket_id: '1042' });
    expect(parse(request(body))).toEqual([
      {
        type: 'agent_reply',
        recordId: '1042',
        at: NOW,
        eventId: '8350205582',
        bodyText: 'Hello "Casey",\nfixed.',
        authorEmail: 'agent1@example.com',
        attachments: [
          { filename: 'a.png', url: 'https://acme.zendesk.com/attachments/token/x/?name=a.png' },
          { filename: 'b.txt', url: 'https://acme.zendesk.com/b' },
        ],
      },
    ]);
  });

  it('status triggers → status_changed in session terms', () => {
    const got = (['open', 'pending', 'hold', 'solved', 'closed'] as const).map((s) => {
      const [e] = parse(request(renderPayload(statusPayload(s), { ticket, current_user: { email: 'agent1@example.com' } })));
      return e?.type === 'status_changed' ? e.status : null;
    });
    expect(got).toEqual(['active', 'paused', 'paused', 'resolved', 'closed']);
  });

  it('assignee trigger → assignee_changed; unassigned renders empty → null', () => {
    expect(parse(request(renderPayload(ASSIGNEE_PAYLOAD, { ticket, current_user: { email: 'lead@example.com' } })))).toEqual([
      { type: 'assignee_changed', recordId: '1042', at: NOW, eventId: '8350205582', assigneeEmail: 'agent1@example.com' },
    ]);
    const none = parse(request(renderPayload(ASSIGNEE_PAYLOAD, { ticket: { ...ticket, assignee: {} }, current_user: { email: 'lead@example.com' } })));
    expect(none).toMatchObject([{ type: 'assignee_changed', assigneeEmail: null }]);
  });

  it('drops events caused by our own API user (loop guard) and payloads that are not ours', () => {
    const ours = renderPayload(statusPayload('solved'), { ticket, current_user: { email: 'Integration@Acme.example' } });
    expect(parse(request(ours))).toEqual([]);
    expect(parse(request('{"ticket":{"id":1}}'))).toEqual([]);
  });

  it('a signed body that is not JSON, or a payload of ours with missing fields → permanent', () => {
    expect(() => parse(request('not json'))).toThrow(expect.objectContaining({ kind: 'permanent' }));
    expect(() => parse(request('{"email_channel_event":"status_changed","ticket_id":"x"}'))).toThrow(expect.objectContaining({ kind: 'permanent' }));
  });

  it('checks the signature before reading the body', () => {
    authError(() => parse(request('not json', { signature: 'AAAA' })));
  });
});

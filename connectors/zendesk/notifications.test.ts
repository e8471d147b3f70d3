// 8b: Zendesk's own requester notifications skip our tickets — every record carries the marker, and the shipped
// triggers (manifests/zendesk) exclude marked tickets; the install artifacts follow Zendesk's app formats.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_MARKER, type ConnectorContext, type CreateRecordInput } from '../contract.js';
import { createZendeskFake, renderPayload } from './fake.js';
import { createZendeskInstance, zendeskConfigSchema, type ZendeskConfig } from './index.js';
import { WEBHOOK_REQUIREMENT_KEY, parseZendeskWebhook, signZendeskWebhook, webhookTriggers, type TriggerCondition } from './webhooks.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readJson = (rel: string): unknown => JSON.parse(readFileSync(join(ROOT, rel), 'utf8'));

interface Trigger {
  title?: string;
  active?: boolean;
  conditions?: { all?: TriggerCondition[]; any?: TriggerCondition[] };
  actions?: { field: string; value: unknown }[];
}
interface Requirements {
  ticket_fields?: Record<string, Record<string, unknown>>;
  webhooks?: Record<string, Record<string, unknown>>;
  triggers?: Record<string, Trigger>;
  [type: string]: unknown;
}

const requirements = readJson('manifests/zendesk/requirements.json') as Requirements;
const manifest = readJson('manifests/zendesk/manifest.json') as Record<string, unknown>;
const en = readJson('manifests/zendesk/translations/en.json') as { app?: Record<string, unknown> };
const readme = readFileSync(join(ROOT, 'connectors/zendesk/README.md'), 'utf8');

const EXCLUDES_MARKER: TriggerCondition = { field: 'current_tags', operator: 'not_includes', value: RECORD_MARKER };
/** `notification_user` recipients that are the customer (Zendesk's "(requester)" / "(requester and CCs)"). */
const REQUESTER_RECIPIENTS = new Set(['requester_id', 'requester_and_ccs']);

const emailsRequester = (t: Trigger): boolean =>
  (t.actions ?? []).some((a) => a.field === 'notification_user' && Array.isArray(a.value) && REQUESTER_RECIPIENTS.has(String(a.value[0])));

describe('every record the connector writes carries the marker (checked in the fake)', () => {
  const account = { url: 'https://notify.zendesk.com', email: 'api@notify.example', apiToken: 't', webhookSecret: 's' };
  const fake = createZendeskFake(account);
  const server = setupServer(...fake.handlers);
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterAll(() => server.close());
  beforeEach(() => fake.reset());

  const zendesk = () => {
    const ctx: ConnectorContext<ZendeskConfig> = {
      config: zendeskConfigSchema.parse({ ...account, groupByQueue: { Q1: 2001, Q2: 2002 } }),
      timeoutMs: 2000,
      checkHost: async () => {},
      log: { info() {}, warn() {}, error() {} },
      now: () => Date.now(),
    };
    return createZendeskInstance(ctx);
  };
  const input = (over: Partial<CreateRecordInput> = {}): CreateRecordInput => ({
    externalId: 'ec:N1',
    sessionId: 'N1',
    subject: 'Where is my parcel?',
    requester: { email: 'buyer@example.org' },
    firstComment: { bodyText: 'It never came.', public: true },
    status: 'unopened',
    queue: { id: 'Q1', name: 'Support' },
    assignee: null,
    ...over,
  });
  const tagsOf = (id: string) => fake.record(id)?.tags ?? [];

  it('on create (with and without a first comment), after comments, files and every update', async () => {
    const z = zendesk();
    const a = await z.createRecord(input());
    const b = await z.createRecord(input({ externalId: 'ec:N2', sessionId: 'N2', firstComment: null }));
    for (const id of [a.id, b.id]) expect(tagsOf(id)).toContain(RECORD_MARKER);
    // A session without posted bodies still gets a (private) first comment: Zendesk requires one.
    expect(fake.comments(b.id)).toEqual([{ body: expect.stringContaining('N2') as unknown as string, public: false }]);

    await z.addComment({ recordId: a.id, externalId: 'ec:N1:c1', bodyText: 'We are on it', public: true });
    await z.attachFile(a.id, { filename: 'transcript.pdf', contentType: 'application/pdf', bytes: new Uint8Array(8), externalId: 'ec:N1:pdf' });
    await z.setStatus(a.id, 'paused');
    await z.setAssignee(a.id, { email: 'agent1@example.com' });
    await z.setQueue?.(a.id, { id: 'Q2', name: 'Billing' });
    await z.updateRecord(a.id, { status: 'resolved', comment: { externalId: 'ec:N1:c2', bodyText: 'Solved', public: true } });
    expect(tagsOf(a.id)).toEqual([RECORD_MARKER, 'email_channel_session_n1']);
  });

  it('on a follow-up of a closed ticket (tags given, not inherited)', async () => {
    const z = zendesk();
    const a = await z.createRecord(input());
    fake.closeTicket(a.id);
    const f = await z.createRecord(input({ followUpOf: a.id }));
    expect(tagsOf(f.id)).toEqual([RECORD_MARKER, 'email_channel_session_n1']);
  });
});

describe('manifests/zendesk/requirements.json', () => {
  it('follows the app requirements format (zendesk_apps_support validation rules)', () => {
    const types = ['automations', 'channel_integrations', 'custom_objects', 'macros', 'targets', 'views', 'ticket_fields', 'triggers', 'user_fields', 'organization_fields', 'webhooks', 'custom_objects_v2'];
    expect(Object.keys(requirements).filter((t) => !types.includes(t))).toEqual([]);
    for (const [type, entries] of Object.entries(requirements)) {
      if (['channel_integrations', 'custom_objects', 'webhooks', 'custom_objects_v2'].includes(type)) continue;
      for (const [key, value] of Object.entries(entries as Record<string, Record<string, unknown>>)) {
        expect(typeof value.title, `${type}.${key}.title`).toBe('string');
      }
    }
    for (const [key, hook] of Object.entries(requirements.webhooks ?? {})) {
      for (const field of ['name', 'status', 'endpoint', 'http_method', 'request_format']) expect(hook[field], `webhooks.${key}.${field}`).toBeDefined();
    }
  });

  it('ships the session-id and status ticket fields (text)', () => {
    expect(requirements.ticket_fields?.email_channel_session_id).toMatchObject({ type: 'text', active: true });
    expect(requirements.ticket_fields?.email_channel_session_status).toMatchObject({ type: 'text', active: true });
  });

  it('ships the webhook: POST JSON to {PUBLIC_URL}/webhooks/zendesk, for triggers', () => {
    expect(requirements.webhooks?.[WEBHOOK_REQUIREMENT_KEY]).toMatchObject({
      endpoint: '{{setting.public_url}}/webhooks/zendesk',
      http_method: 'POST',
      request_format: 'json',
      status: 'active',
      subscriptions: ['conditional_ticket_events'],
    });
  });

  it('every trigger that emails the requester excludes tickets tagged with the marker', () => {
    const mailing = Object.entries(requirements.triggers ?? {}).filter(([, t]) => emailsRequester(t));
    expect(mailing.map(([k]) => k).sort()).toEqual(['email_channel_notify_comment_update', 'email_channel_notify_proactive_ticket', 'email_channel_notify_received_request']);
    for (const [key, t] of mailing) {
      expect(t.conditions?.all, `${key}: a condition every update must meet`).toContainEqual(EXCLUDES_MARKER);
      // The clones ship inactive so installing never doubles the account's own notifications.
      expect(t.active, `${key}.active`).toBe(false);
    }
  });

  it('the webhook triggers are exactly the ones the connector parses, on marked tickets, never for API updates', () => {
    const shipped = Object.fromEntries(
      Object.entries(requirements.triggers ?? {})
        .filter(([, t]) => (t.actions ?? []).some((a) => a.field === 'notification_webhook'))
        .map(([k, t]) => {
          const { active, ...rest } = t;
          expect(active, `${k}.active`).toBe(true);
          return [k, rest];
        }),
    );
    expect(shipped).toEqual(webhookTriggers());
    for (const [key, t] of Object.entries(shipped)) {
      expect(t.conditions?.all, key).toContainEqual({ field: 'current_tags', operator: 'includes', value: RECORD_MARKER });
      expect(t.conditions?.all, key).toContainEqual({ field: 'current_via_id', operator: 'is_not', value: '5' });
      expect(t.actions?.[0]?.value, key).toEqual([WEBHOOK_REQUIREMENT_KEY, expect.any(String)]);
    }
  });

  it('each shipped payload, rendered and signed as Zendesk does, parses into one event', () => {
    const ticket = { id: '77', external_id: 'ec:N1', assignee: { email: 'agent1@example.com' }, latest_public_comment: { value: 'Done', author: { email: 'agent1@example.com' }, attachments: [] } };
    const at = '2026-03-01T12:00:00Z';
    for (const [key, t] of Object.entries(requirements.triggers ?? {})) {
      const action = (t.actions ?? []).find((a) => a.field === 'notification_webhook');
      if (!action || !Array.isArray(action.value)) continue;
      const body = renderPayload(String(action.value[1]), { ticket, current_user: { email: 'agent1@example.com' } });
      const events = parseZendeskWebhook(
        { headers: { 'x-zendesk-webhook-signature': signZendeskWebhook('s', at, body), 'x-zendesk-webhook-signature-timestamp': at, 'x-zendesk-webhook-invocation-id': key }, body, receivedAt: Date.parse(at) },
        { secret: 's', apiUserEmail: 'api@notify.example' },
      );
      expect(events, key).toHaveLength(1);
      expect(events[0]?.recordId, key).toBe('77');
    }
  });
});

describe('manifests/zendesk/manifest.json and translations', () => {
  it('is a Zendesk app manifest (framework 2.0) with a ticket_sidebar iframe pointing at the service', () => {
    expect(manifest).toMatchObject({ defaultLocale: 'en', frameworkVersion: '2.0', private: true });
    expect(manifest.author).toMatchObject({ name: expect.any(String), email: expect.any(String), url: expect.stringMatching(/^https:\/\//) });
    const sidebar = (manifest.location as { support?: { ticket_sidebar?: { url?: string } } }).support?.ticket_sidebar;
    expect(sidebar?.url).toBe('{{setting.public_url}}/zendesk/sidebar');
    const params = manifest.parameters as { name: string; type: string; required?: boolean }[];
    const types = ['text', 'password', 'checkbox', 'url', 'number', 'multiline', 'hidden', 'oauth'];
    for (const p of params) expect(types, p.name).toContain(p.type);
    expect(params.map((p) => p.name)).toContain('public_url');
  });

  it('has the default locale file with the app name and a label per parameter', () => {
    expect(typeof en.app?.name).toBe('string');
    const labels = en.app?.parameters as Record<string, { label?: string }>;
    for (const p of manifest.parameters as { name: string }[]) expect(typeof labels[p.name]?.label, p.name).toBe('string');
  });

  it('the README names the standard triggers to change and the exact condition to add', () => {
    for (const name of ['Notify requester and CCs of received request', 'Notify requester of new proactive ticket', 'Notify requester and CCs of comment update']) {
      expect(readme).toContain(name);
    }
    expect(readme).toContain(JSON.stringify(EXCLUDES_MARKER));
  });
});

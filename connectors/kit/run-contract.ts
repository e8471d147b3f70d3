// The conformance kit (R-CON-2): one shared vitest suite every connector runs against a faithful fake of its CRM.
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectorError,
  RECORD_MARKER,
  type ConnectorContext,
  type ConnectorErrorKind,
  type ConnectorInstance,
  type CreateRecordInput,
  type CrmAgent,
  type CrmEvent,
  type RecordRef,
  type SessionStatus,
} from '../contract.js';
import { CONTRACT_TEST_TITLES, SKIP_LIST_TITLE, type ContractTestKey } from './titles.js';
import { KIT_AGENT_EMAIL, type ContractOptions } from './types.js';

/** Per test; the network test needs room for a connector's own bounded retries. */
const TEST_TIMEOUT_MS = 30_000;
const RETRY_AFTER_SECONDS = 2;

/** Every session status once (the Record type makes the compiler check the list is complete). */
const STATUS_RANK: Record<SessionStatus, number> = { unopened: 0, active: 1, paused: 2, resolved: 3, reopened: 4, closed: 5 };
/** The lifecycle order setStatus walks a record through after `unopened` (reopening before closing for good). */
const LIFECYCLE: SessionStatus[] = (Object.keys(STATUS_RANK) as SessionStatus[]).sort((a, b) => STATUS_RANK[a] - STATUS_RANK[b]);

/** A minimal valid one-page PDF: what the service attaches as a transcript. */
export const KIT_PDF: Uint8Array = new TextEncoder().encode(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
    '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);

const silent = { info(): void {}, warn(): void {}, error(): void {} };

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  const result = await settle(promise);
  if (result.ok) throw new Error(`${what}: expected a ConnectorError, the call resolved`);
  return result.error;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function assertConnectorError(err: unknown, kind: ConnectorErrorKind | undefined, what: string): asserts err is ConnectorError {
  if (!(err instanceof ConnectorError)) {
    throw new Error(`${what}: expected a ConnectorError${kind ? ` of kind ${kind}` : ''}, got ${describeError(err)}`);
  }
  if (kind !== undefined) expect(err.kind, `${what}: ConnectorError kind (message: ${err.message})`).toBe(kind);
}

const sameEmail = (a: string | null | undefined, b: string | null | undefined): boolean =>
  (a ?? null)?.toLowerCase() === (b ?? null)?.toLowerCase();

/**
 * Registers the shared suite for one connector. Each test gets a reset fake and a fresh instance, so no
 * test depends on another. `skip: [{ test, reason }]` turns a named test into `it.skip` with the reason in
 * its title; a skip that names no kit test (or gives no reason) fails the suite, so skips cannot rot.
 */
export function runConnectorContract(opts: ContractOptions): void {
  const { definition } = opts;
  const agentEmail = opts.agentEmail ?? KIT_AGENT_EMAIL;
  const missingRecordId = opts.missingRecordId ?? '999999999';
  const skips = new Map<string, string>();
  for (const s of opts.skip ?? []) skips.set(s.test, s.reason);

  describe(`connector contract: ${opts.name}`, () => {
    const fake = opts.fake();
    const server = setupServer(...fake.handlers);
    const unhandled: string[] = [];
    let current: ConnectorInstance | undefined;
    let seq = 0;

    beforeAll(() => {
      server.listen({
        onUnhandledRequest(request, print) {
          unhandled.push(`${request.method} ${request.url}`);
          print.error();
        },
      });
    });
    afterAll(() => {
      server.close();
    });
    beforeEach(() => {
      fake.reset();
      unhandled.length = 0;
      current = undefined;
    });
    afterEach(() => {
      server.resetHandlers();
      expect(unhandled, 'requests no handler of the fake answers (add them to fake.ts)').toEqual([]);
    });

    function make(config: unknown, which: string): ConnectorInstance {
      const parsed = definition.configSchema.safeParse(config);
      if (!parsed.success) throw new Error(`the ${which} does not parse with ${definition.id}'s configSchema: ${parsed.error.message}`);
      const ctx: ConnectorContext<unknown> = {
        config: parsed.data,
        timeoutMs: 5000,
        checkHost: async () => {},
        log: silent,
        now: Date.now,
        // Looked up at call time: msw patches globalThis.fetch when the server starts listening.
        fetch: (input, init) => globalThis.fetch(input, init),
      };
      if (fake.storage) ctx.storage = fake.storage;
      return definition.create(ctx);
    }

    /** This test's instance, built with the valid config on first use. */
    const inst = (): ConnectorInstance => (current ??= make(opts.config, 'config'));

    function recordInput(label: string, over: Partial<CreateRecordInput> = {}): CreateRecordInput {
      seq += 1;
      const tag = `${label}-${seq}-${Math.random().toString(36).slice(2, 8)}`;
      const requester = { email: 'casey.customer@example.org', name: 'Casey Customer' };
      const text = `Hello, my order 1042 never arrived. (${tag})`;
      return {
        externalId: `ec:kit:${tag}`,
        sessionId: `SKIT${String(seq).padStart(6, '0')}`,
        subject: `Order 1042 never arrived (${tag})`,
        requester,
        firstComment: { bodyText: text, bodyHtml: `<p>${text}</p>`, public: true, author: requester },
        status: 'unopened',
        queue: { id: 'Q1', name: 'Support' },
        assignee: { agentId: 'A1', email: agentEmail },
        ...(opts.customFields ? { customFields: opts.customFields } : {}),
        ...over,
      };
    }

    const agent = { email: agentEmail, name: 'Agent One' };
    const randomTag = (): string => Math.random().toString(36).slice(2, 10);

    function missingOperation(op: string, title: string): Error {
      return new Error(`the instance has no ${op}: implement it, or skip "${title}" with a reason saying why the CRM cannot`);
    }

    async function recordAfterRetries(input: CreateRecordInput, first: Settled<RecordRef>, kind: ConnectorErrorKind): Promise<void> {
      if (!first.ok) {
        assertConnectorError(first.error, undefined, 'the failed createRecord');
        expect(first.error.retryable, `the failed createRecord is retryable (kind ${first.error.kind}, expected ${kind} or transient)`).toBe(true);
      }
      const second = await inst().createRecord(input);
      if (first.ok) expect(second.id, 'the retry answers the same record').toBe(first.value.id);
      expect(fake.countRecords(input.externalId), 'records with this externalId').toBe(1);
      expect(fake.record(second.id), 'the record exists in the CRM').toBeDefined();
    }

    const T = CONTRACT_TEST_TITLES;
    const cases: Record<ContractTestKey, () => Promise<void>> = {
      async configParses() {
        const good = definition.configSchema.safeParse(opts.config);
        expect(good.success, `config: ${good.success ? '' : good.error.message}`).toBe(true);
        const bad = definition.configSchema.safeParse(opts.badConfig);
        expect(bad.success, `badConfig must be well-formed (only its credentials are wrong): ${bad.success ? '' : bad.error.message}`).toBe(true);
      },

      async capabilities() {
        const i = inst();
        const caps = definition.capabilities;
        expect(
          { agents: caps.agents, webhooks: caps.webhooks, polling: caps.polling, streaming: caps.streaming },
          'capabilities.agents/webhooks/polling/streaming ⇔ listAgents/parseWebhook/pollEvents/subscribeChanges on the instance',
        ).toEqual({
          agents: typeof i.listAgents === 'function',
          webhooks: typeof i.parseWebhook === 'function',
          polling: typeof i.pollEvents === 'function',
          streaming: typeof i.subscribeChanges === 'function',
        });
        if (caps.streaming) expect(caps.polling, 'streaming triggers polls: it needs polling').toBe(true);
        if (caps.presence) expect(caps.agents, 'presence needs agents').toBe(true);
        if (caps.statusSync === 'both') expect(caps.webhooks || caps.polling, 'statusSync "both" needs webhooks or polling').toBe(true);
        expect(Object.keys(definition.statusMap).sort(), 'statusMap keys').toEqual([...LIFECYCLE].sort());
        for (const [status, value] of Object.entries(definition.statusMap)) {
          expect(typeof value === 'string' && value.length > 0, `statusMap.${status} is a CRM status`).toBe(true);
        }
        expect(new Set(definition.secretFields).size, 'secretFields are distinct').toBe(definition.secretFields.length);
      },

      async testOk() {
        await expect(inst().test()).resolves.toMatchObject({ ok: true });
      },

      async testBadConfig() {
        const bad = make(opts.badConfig, 'badConfig');
        assertConnectorError(await rejection(bad.test(), 'test() with badConfig'), 'auth', 'test() with badConfig');
      },

      async createRecord() {
        const input = recordInput('create');
        const ref = await inst().createRecord(input);
        expect(typeof ref.id === 'string' && ref.id.length > 0, 'createRecord answers the CRM id').toBe(true);
        const rec = fake.record(ref.id);
        if (rec === undefined) throw new Error(`fake.record(${ref.id}) is undefined after createRecord`);
        expect(fake.countRecords(input.externalId), 'records with this externalId').toBe(1);
        expect(rec.assigneeEmail?.toLowerCase() ?? null, 'assignee').toBe(agentEmail.toLowerCase());
        const first = input.firstComment?.bodyText ?? '';
        expect(fake.comments(ref.id).some((c) => c.body.includes(first)), 'the first comment is on the record').toBe(true);
        if (rec.requesterEmail !== undefined) expect(sameEmail(rec.requesterEmail, input.requester.email), 'requester').toBe(true);
        if (rec.queue !== undefined) expect(rec.queue, 'the record is in the CRM queue mapped from the service queue').not.toBeNull();
        if (opts.customFields && rec.customFields !== undefined) expect(rec.customFields, 'custom fields').toMatchObject(opts.customFields);
      },

      async recordMarker() {
        const ref = await inst().createRecord(recordInput('marker'));
        const rec = fake.record(ref.id);
        if (rec === undefined) throw new Error(`fake.record(${ref.id}) is undefined after createRecord`);
        if (rec.tags === undefined) {
          throw new Error(`fake.record().tags is undefined: if the CRM has no tags, skip "${T.recordMarker}" with a reason saying where RECORD_MARKER lives`);
        }
        expect(rec.tags).toContain(RECORD_MARKER);
      },

      async findByExternalId() {
        const input = recordInput('find');
        const ref = await inst().createRecord(input);
        const found = await inst().findByExternalId(input.externalId);
        expect(found?.id, 'findByExternalId of a created record').toBe(ref.id);
        expect(await inst().findByExternalId(`ec:kit:never-created-${randomTag()}`), 'an unknown external id').toBeNull();
      },

      async createTwice() {
        const input = recordInput('twice');
        const a = await inst().createRecord(input);
        const b = await inst().createRecord(input);
        expect(b.id, 'the second createRecord answers the first record').toBe(a.id);
        expect(fake.countRecords(input.externalId), 'records with this externalId').toBe(1);
      },

      async createAfter5xx() {
        const input = recordInput('5xx');
        fake.injectFailure({ status: 503 }, { times: 1 });
        await recordAfterRetries(input, await settle(inst().createRecord(input)), 'transient');
      },

      async rateLimited() {
        const input = recordInput('429');
        fake.injectFailure({ status: 429, retryAfterSeconds: RETRY_AFTER_SECONDS }, { times: 1 });
        const started = Date.now();
        const first = await settle(inst().createRecord(input));
        const wanted = RETRY_AFTER_SECONDS * 1000;
        if (first.ok) {
          // The connector waited and retried by itself: it must have honoured Retry-After and written the record.
          expect(Date.now() - started, 'a connector that waits honours Retry-After').toBeGreaterThanOrEqual(wanted * 0.9);
        } else {
          assertConnectorError(first.error, 'rate_limited', 'createRecord after a 429');
          const after = first.error.retryAfterMs;
          expect(after, 'retryAfterMs from the Retry-After header').toBeDefined();
          expect(after ?? 0).toBeGreaterThanOrEqual(wanted * 0.9);
          expect(after ?? 0).toBeLessThanOrEqual(wanted * 2);
        }
        await recordAfterRetries(input, first, 'rate_limited');
      },

      async networkError() {
        const input = recordInput('network');
        // Persistent, so a connector's own bounded retries end in the classification.
        fake.injectFailure({ network: true }, { times: 1000 });
        assertConnectorError(await rejection(inst().createRecord(input), 'createRecord with the network down'), 'transient', 'createRecord with the network down');
      },

      async addComment() {
        const input = recordInput('comment');
        const { id } = await inst().createRecord(input);
        const tag = randomTag();
        const pub = `Public reply ${tag}`;
        const note = `Internal note ${tag}`;
        const a = await inst().addComment({ recordId: id, externalId: `${input.externalId}:comment:1`, bodyText: pub, bodyHtml: `<p>${pub}</p>`, public: true, author: agent });
        const b = await inst().addComment({ recordId: id, externalId: `${input.externalId}:comment:2`, bodyText: note, public: false, author: agent });
        expect(typeof a.id === 'string' && typeof b.id === 'string', 'addComment answers comment ids').toBe(true);
        const comments = fake.comments(id);
        expect(comments.filter((c) => c.body.includes(pub)), 'the public reply').toEqual([expect.objectContaining({ public: true })]);
        expect(comments.filter((c) => c.body.includes(note)), 'the internal note').toEqual([expect.objectContaining({ public: false })]);
      },

      async addCommentTwice() {
        const input = recordInput('comment-twice');
        const { id } = await inst().createRecord(input);
        const text = `Reply once ${randomTag()}`;
        const comment = { recordId: id, externalId: `${input.externalId}:comment:1`, bodyText: text, public: true, author: agent };
        await inst().addComment(comment);
        await inst().addComment(comment);
        expect(fake.comments(id).filter((c) => c.body.includes(text)).length, 'comments with this externalId').toBe(1);
      },

      async attachFile() {
        const input = recordInput('file');
        const { id } = await inst().createRecord(input);
        const res = await inst().attachFile(id, { filename: 'transcript.pdf', contentType: 'application/pdf', bytes: KIT_PDF, externalId: `${input.externalId}:pdf:1` });
        expect(typeof res.id === 'string' && res.id.length > 0, 'attachFile answers a file id').toBe(true);
        expect(fake.files(id).filter((f) => f.filename === 'transcript.pdf')).toEqual([
          expect.objectContaining({ filename: 'transcript.pdf', size: KIT_PDF.byteLength }),
        ]);
      },

      async attachFileTwice() {
        const input = recordInput('file-twice');
        const { id } = await inst().createRecord(input);
        const file = { filename: 'metadata.json', contentType: 'application/json', bytes: new TextEncoder().encode('{"sessionId":"SKIT"}'), externalId: `${input.externalId}:metadata` };
        await inst().attachFile(id, file);
        await inst().attachFile(id, file);
        expect(fake.files(id).filter((f) => f.filename === 'metadata.json').length, 'files with this externalId').toBe(1);
      },

      async setStatus() {
        // `unopened` on a record nobody works on yet; the others along the lifecycle on an assigned record.
        const fresh = await inst().createRecord(recordInput('status-new', { assignee: null }));
        await inst().setStatus(fresh.id, 'unopened');
        expect(fake.record(fresh.id)?.status, 'after setStatus(unopened)').toBe(definition.statusMap.unopened);
        const { id } = await inst().createRecord(recordInput('status'));
        for (const status of LIFECYCLE.filter((s) => s !== 'unopened')) {
          await inst().setStatus(id, status);
          expect(fake.record(id)?.status, `after setStatus(${status})`).toBe(definition.statusMap[status]);
        }
      },

      async setStatusMissing() {
        const err = await rejection(inst().setStatus(missingRecordId, 'active'), `setStatus(${missingRecordId})`);
        assertConnectorError(err, 'not_found', `setStatus(${missingRecordId})`);
      },

      async setAssignee() {
        const { id } = await inst().createRecord(recordInput('assignee', { assignee: null }));
        await inst().setAssignee(id, { email: agentEmail });
        expect(fake.record(id)?.assigneeEmail?.toLowerCase() ?? null, 'after setAssignee(email)').toBe(agentEmail.toLowerCase());
        await inst().setAssignee(id, null);
        expect(fake.record(id)?.assigneeEmail ?? null, 'after setAssignee(null)').toBeNull();
      },

      async setQueue() {
        const setQueue = inst().setQueue?.bind(inst());
        if (!setQueue) throw missingOperation('setQueue', T.setQueue);
        const { id } = await inst().createRecord(recordInput('queue'));
        const before = fake.record(id)?.queue;
        await setQueue(id, { id: 'Q2', name: 'Billing' });
        const after = fake.record(id)?.queue;
        if (after !== undefined) {
          expect(after, 'queue after setQueue').not.toBeNull();
          expect(after, 'setQueue moved the record').not.toEqual(before);
        }
      },

      async listAgents() {
        const listAgents = inst().listAgents?.bind(inst());
        if (!listAgents) throw missingOperation('listAgents', T.listAgents);
        fake.seedAgents(250);
        const all: CrmAgent[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await listAgents(cursor);
          all.push(...page.agents);
          cursor = page.nextCursor ?? undefined;
          pages += 1;
          if (pages > 500) throw new Error('listAgents: more than 500 pages, the cursor does not advance');
        } while (cursor !== undefined);
        const ids = new Set(all.map((a) => a.crmId));
        expect(ids.size, 'agents listed twice across pages').toBe(all.length);
        expect(ids.size, 'all seeded agents').toBeGreaterThanOrEqual(250);
        expect(new Set(all.map((a) => a.email.toLowerCase())).size, 'distinct emails').toBe(all.length);
      },

      async webhookSigned() {
        const parse = inst().parseWebhook?.bind(inst());
        if (!parse) throw missingOperation('parseWebhook', T.webhookSigned);
        if (!fake.webhook) throw new Error('the fake has no webhook(): a connector with parseWebhook needs one');
        const { id } = await inst().createRecord(recordInput('webhook'));
        const event: CrmEvent = { type: 'status_changed', recordId: id, status: 'resolved', at: Date.now(), eventId: `kit-evt-${randomTag()}` };
        const events = await parse(fake.webhook(event));
        expect(events, 'events of a signed webhook').toContainEqual(expect.objectContaining({ type: 'status_changed', recordId: id, status: 'resolved' }));
      },

      async webhookForged() {
        const parse = inst().parseWebhook?.bind(inst());
        if (!parse) throw missingOperation('parseWebhook', T.webhookForged);
        if (!fake.webhook) throw new Error('the fake has no webhook(): a connector with parseWebhook needs one');
        const { id } = await inst().createRecord(recordInput('webhook-forged'));
        const event: CrmEvent = { type: 'status_changed', recordId: id, status: 'closed', at: Date.now(), eventId: `kit-evt-${randomTag()}` };
        for (const variant of ['forged', 'unsigned'] as const) {
          const request = fake.webhook(event, variant === 'forged' ? { forged: true } : { unsigned: true });
          assertConnectorError(await rejection(parse(request), `a ${variant} webhook`), 'auth', `a ${variant} webhook`);
        }
      },

      async pollEvents() {
        const poll = inst().pollEvents?.bind(inst());
        if (!poll) throw missingOperation('pollEvents', T.pollEvents);
        if (!fake.crmChange) throw new Error('the fake has no crmChange(): a connector with pollEvents needs one');
        const { id } = await inst().createRecord(recordInput('poll'));
        const baseline = await poll(null);
        await fake.crmChange(id, { status: definition.statusMap.resolved });
        const first = await poll(baseline.checkpoint);
        expect(first.events, 'events after a CRM change').toContainEqual(expect.objectContaining({ type: 'status_changed', recordId: id, status: 'resolved' }));
        const seen = new Set(first.events.map((e) => e.eventId));
        const again = await poll(first.checkpoint);
        expect(again.events.filter((e) => seen.has(e.eventId)), 'events repeated from the returned checkpoint').toEqual([]);
      },
    };

    for (const key of Object.keys(CONTRACT_TEST_TITLES) as ContractTestKey[]) {
      const title = CONTRACT_TEST_TITLES[key];
      const reason = skips.get(title);
      if (reason !== undefined) it.skip(`${title} — skipped: ${reason}`, cases[key]);
      else it(title, cases[key], TEST_TIMEOUT_MS);
    }

    it(SKIP_LIST_TITLE, () => {
      const known = new Set<string>(Object.values(CONTRACT_TEST_TITLES));
      const problems: string[] = [];
      const named = new Set<string>();
      for (const s of opts.skip ?? []) {
        if (!known.has(s.test)) problems.push(`skip names no kit test: "${s.test}" (see CONTRACT_TESTS in connectors/kit/titles.ts)`);
        if (named.has(s.test)) problems.push(`skip listed twice: "${s.test}"`);
        if (s.reason.trim().length < 10) problems.push(`skip without a real reason: "${s.test}" (say why the CRM cannot)`);
        named.add(s.test);
      }
      expect(problems, 'skip list').toEqual([]);
    });
  });
}

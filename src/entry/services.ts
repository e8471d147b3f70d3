// Wires adapters, use cases and the HTTP app together for Node (used by node.ts and by tests).
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { AccountsService } from '../app/accounts-service.js';
import { AgentsService, AgentTokenResolver } from '../app/agents-service.js';
import { AssignmentService } from '../app/assignment-service.js';
import { AuthService } from '../app/auth-service.js';
import { HealthService } from '../app/health-service.js';
import { SettingsService } from '../app/settings-service.js';
import { UploadsService } from '../app/uploads-service.js';
import { IngestService } from '../app/ingest-message.js';
import { QuarantineService } from '../app/quarantine-service.js';
import { QueuesService } from '../app/queues-service.js';
import { RoutingTablesCache } from '../app/routing-tables.js';
import { SessionsService } from '../app/sessions-service.js';
import { SessionTranscripts } from '../app/transcript.js';
import { CrmSyncService } from '../app/crm-sync.js';
import { withSessionJobs } from '../app/session-jobs.js';
import { OutboundService, inlineLimits } from '../app/outbound-service.js';
import { ArchiveService, ARCHIVE_TARGET, archiveSessionJobs, archiveWrites } from '../app/archive-service.js';
import { StorageService } from '../app/storage-service.js';
import { createArchiveStore } from '../adapters/archive/index.js';
import { crmDeliveryFailedJob } from '../core/crm-policy.js';
import { fromMailSystem, parseBounce } from '../core/mail/bounce.js';
import { composeRaw, createMailSender } from '../adapters/smtp/sender.js';
import { appendToSent } from '../adapters/imap/sent-folder.js';
import { htmlToText, inlineDataImages, sanitizeRichHtml } from '../adapters/mail/rich-html.js';
import { createCrmProvider, registryCatalog } from './crm.js';
import type { Resolver } from '../adapters/net/host-guard.js';
import { createChromiumPdfRenderer } from '../adapters/pdf/chromium-pdf.js';
import { readInlineImages } from '../adapters/pdf/inline-images.js';
import { parseMail } from '../adapters/parse/mail-parser.js';
import { readAttachments } from '../adapters/parse/attachments.js';
import { ImapMailboxWorker } from '../adapters/imap/mailbox-worker.js';
import { MailboxLease } from '../app/mailbox-lease.js';
import { MailboxSupervisor } from '../app/mailbox-supervisor.js';
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { systemClock, type Clock, type JobQueue, type Logger, type SecretBox, type Store } from '../core/ports.js';
import { adminTokensFrom, type Env } from '../config/env.js';
import { createApp } from '../http/app.js';
import { AppError } from '../core/errors.js';
import type { AuthEnv } from '../http/auth.js';
import { StoreBlobStore } from '../adapters/blob/store-blob-store.js';
import { createJobQueue } from '../adapters/jobs/index.js';
import { createLogger } from '../adapters/log/logger.js';
import { createMailProbe } from '../adapters/mail/probe.js';
import { createMetrics, type Metrics } from '../adapters/metrics/metrics.js';
import { createHostGuard, parseAllowPolicy, type HostGuard } from '../adapters/net/host-guard.js';
import { AesGcmSecretBox, generateSecretKey, parseSecretKey } from '../adapters/secrets/secret-box.js';
import { openStore } from '../adapters/store/index.js';
import { MIGRATIONS, runMigrations } from '../adapters/store/migrations.js';

export const VERSION = '0.1.0';

export interface Services {
  app: OpenAPIHono<AuthEnv>;
  store: Store;
  jobs: JobQueue;
  accounts: AccountsService;
  ingest: IngestService;
  supervisor: MailboxSupervisor;
  sessions: SessionsService;
  /** PDF transcripts of sessions (the renderer is closed by close()). */
  transcript: SessionTranscripts;
  outbound: OutboundService;
  storage: StorageService;
  archive: ArchiveService;
  queues: QueuesService;
  agents: AgentsService;
  assignment: AssignmentService;
  secrets: SecretBox;
  hostGuard: HostGuard;
  metrics: Metrics;
  logger: Logger;
  storeDescription: string;
  /** Set when the admin token was generated on this start (print it once). */
  generatedAdminToken?: string;
  adminTokenFile?: string;
  close(): Promise<void>;
}

/** Reads a secret file under DATA_DIR, or creates it (mode 0600) with `make()`. */
function readOrCreate(file: string, make: () => string): { value: string; created: boolean } {
  if (existsSync(file)) return { value: readFileSync(file, 'utf8').trim(), created: false };
  const value = make();
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { value, created: true };
}

export async function createServices(env: Env, opts: { clock?: Clock; logger?: Logger; resolveHost?: Resolver } = {}): Promise<Services> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: env.LOG_LEVEL });
  const dataDir = resolve(env.DATA_DIR);
  mkdirSync(dataDir, { recursive: true });

  if (env.REDIS_URL && (!env.SECRET_KEY || adminTokensFrom(env.ADMIN_TOKEN).length === 0)) {
    throw new Error(
      'With REDIS_URL set, several instances share one store: SECRET_KEY and ADMIN_TOKEN must be set (the same on every instance), since a key or token generated per instance could not be shared.',
    );
  }

  const secretKey = env.SECRET_KEY ?? readOrCreate(join(dataDir, 'secret.key'), generateSecretKey).value;
  const secrets = new AesGcmSecretBox(parseSecretKey(secretKey));

  let generatedAdminToken: string | undefined;
  let adminTokenFile: string | undefined;
  let adminTokens = adminTokensFrom(env.ADMIN_TOKEN);
  if (adminTokens.length === 0) {
    adminTokenFile = join(dataDir, 'admin-token');
    const token = readOrCreate(adminTokenFile, () => `ect_${generateSecretKey()}`);
    if (token.created) generatedAdminToken = token.value;
    adminTokens = [token.value];
  }

  // Jobs and store are built together: embedded jobs share the SQLite file (one transaction with the
  // state that caused them); Redis jobs run on BullMQ and the store hands them over after its MULTI.
  let jobs: JobQueue;
  const opened = env.REDIS_URL
    ? await (async () => {
        jobs = createJobQueue({ kind: 'redis', url: env.REDIS_URL as string, clock, logger });
        return openStore({ redisUrl: env.REDIS_URL, dataDir, clock, jobSink: jobs });
      })()
    : await (async () => {
        const o = await openStore({ dataDir, clock });
        jobs = createJobQueue({ kind: 'embedded', db: o.db!, clock, logger });
        return o;
      })();
  const store = opened.store;
  await runMigrations(store, MIGRATIONS, logger);

  const metrics = createMetrics({ defaults: env.METRICS_DEFAULTS !== 'false' && env.METRICS_DEFAULTS !== '0' });
  const hostGuard = createHostGuard(parseAllowPolicy(env.ALLOW_PRIVATE_HOSTS), ...(opts.resolveHost ? [opts.resolveHost] : []));
  const accountsLogger = logger.child({ module: 'accounts' });
  const accounts = new AccountsService({
    store,
    secrets,
    hostGuard,
    probe: createMailProbe({ logger: accountsLogger }),
    clock,
    logger: accountsLogger,
    // Routing and the mailbox workers follow account changes at once.
    onChange: () => {
      routing.invalidate();
      void supervisor.refresh();
    },
  });
  const settings = new SettingsService(store, registryCatalog, secrets);
  // CRM record policies (R-CRM-1..6): every commit that saves a session carries the CRM jobs it causes.
  const crmProvider = createCrmProvider({ settings, store, hostGuard, logger, clock });
  // ... and the archive of the session (PDF, metadata, transcript) at each session end (R-STO-4).
  const sessionJobs = async (change: Parameters<CrmSyncService['jobsFor']>[0]) => [...(await crm.jobsFor(change)), ...archiveSessionJobs(change.prev, change.next)];
  const sessionStore = withSessionJobs(store, sessionJobs);
  const blobs = new StoreBlobStore(store);
  const uploads = new UploadsService(store, blobs, clock, env.UPLOAD_MAX_BYTES);
  const routing = new RoutingTablesCache(
    {
      accounts: async () => (await accounts.listAll()).map((a) => ({ id: a.id, address: a.address, aliases: a.aliases })),
      queueOfAccounts: (ids) => queues.queueOfAccounts(ids),
      defaultQueueId: async () => (await settings.get()).routing.defaultQueueId,
    },
    clock,
  );
  const queues = new QueuesService({
    store,
    clock,
    channelEnabled: async () => (await settings.get()).emailChannel.enabled,
    account: (id) => accounts.find(id),
    checkFiles: (ids) => uploads.checkAndKeep(ids),
    checkRichHtml: (html, use) => {
      const result = inlineDataImages(html, { ...inlineLimits(use === 'signature' ? 'signature' : 'body'), cidDomain: 'check.invalid' });
      return 'error' in result ? result.error.message : null;
    },
    onChange: () => {
      routing.invalidate();
      outbound.onQueuesChanged();
      assignment.onQueuesChanged();
    },
  });
  const ingestLogger = logger.child({ module: 'ingest' });
  const ingest = new IngestService({
    store,
    blobs,
    clock,
    logger: ingestLogger,
    parse: (raw) => parseMail(raw),
    settings: () => settings.get(),
    routingTables: () => routing.get(),
    onOutcome: (outcome, message) => {
      metrics.messagesIngested.inc({ outcome });
      if (outcome === 'stored' && message.internalDate !== null) metrics.ingestLatency.observe(Math.max(0, clock.now() - message.internalDate) / 1000);
    },
    // The raw bytes live in the same store: written in each message's own commit.
    blobOps: (key, data, meta) => blobs.opsFor(key, data, meta),
    sha256Hex: (text) => createHash('sha256').update(text).digest('hex'),
    // Every stored message is archived as .eml by a durable job committed with it (R-STO-4).
    messageWrites: (id, now) => archiveWrites(id, now),
    onEffects: (session, effects) => assignment.onSessionEffects(session, effects),
    // Delivery reports for our own mail are filed with it (no session, no auto-reply) and told to the CRM.
    bounces: {
      parse: (raw, mail) => {
        // Only the mail system's reports: a customer quoting a bounce in a reply stays a reply.
        if (!fromMailSystem(mail)) return null;
        const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        // Cheap first: a report about our mail names one of our Message-IDs (`<s.S…`), unless the original is inside
        // an encoded part (a report structure, read in full).
        const type = (mail.headers['content-type'] ?? '').toLowerCase();
        const encoded = type.startsWith('multipart/') || ['base64', 'Base64', 'BASE64', 'quoted-printable', 'Quoted-Printable', 'QUOTED-PRINTABLE'].some((e) => bytes.includes(e));
        if (!encoded && !bytes.includes('s.S') && ![...mail.inReplyTo, ...mail.references].some((id) => id.startsWith('s.'))) return null;
        const report = parseBounce(raw, { latin1: (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') });
        return report && report.ourMessageIds.length > 0 ? { ourMessageIds: report.ourMessageIds.map((m) => m.messageId), permanent: report.permanent, reason: report.reason } : null;
      },
      jobs: async (sessionId, messageId, reason) => {
        const s = await settings.get();
        return s.crm.outbound || s.crm.inbound ? [crmDeliveryFailedJob(s.connector.id, sessionId, messageId, 'bounced', reason)] : [];
      },
    },
    // CRM record policies, and the auto-reply when the transition asks for one and the loop guard lets it (R-ARP-3/6).
    jobsFor: async (change) => [...(await crm.jobsFor(change)), ...(await outbound.autoReplyJobsFor(change))],
  });
  const sessions = new SessionsService({
    store: sessionStore,
    blobs,
    clock,
    logger: logger.child({ module: 'sessions' }),
    settings: () => settings.get(),
    onEffects: (session, effects) => assignment.onSessionEffects(session, effects),
    // Once retention purged the store's copy, the raw download reads the archive (R-STO-4).
    rawFallback: (message) => archive.rawFromArchive(message),
  });
  // Auto-assignment and manual assignment (R-ASG-1..5, R-QUE-4); agents come from the agents service below.
  const assignment: AssignmentService = new AssignmentService({
    store: sessionStore,
    clock,
    logger: logger.child({ module: 'assignment' }),
    directory: {
      expandMembers: (ids) => agents.expandMembers(ids),
      onlineMap: (ids) => agents.onlineMap(ids),
      isActive: async (id) => (await agents.find(id))?.active === true,
    },
    // The CRM hears of transfers through the session store (a `crm.sync_queue` job in the same commit); this is a log line.
    onTransferred: (session, fromQueueId) => logger.debug({ sessionId: session.id, fromQueueId, toQueueId: session.queueId }, 'session transferred'),
  });
  const quarantine = new QuarantineService(store, blobs, ingest);
  // PDF transcripts (R-CRM-3): one Chromium, started on the first PDF, closed in close().
  const pdfLogger = logger.child({ module: 'pdf' });
  const pdfRenderer = createChromiumPdfRenderer({ logger: pdfLogger });
  const transcript = new SessionTranscripts({
    sessions,
    renderer: pdfRenderer,
    clock,
    logger: pdfLogger,
    companyName: async () => (await settings.get()).company.name,
    queueName: async (id) => (await queues.get(id)).name,
    store,
    blobs,
    inlineImages: readInlineImages,
  });
  const crmLogger = logger.child({ module: 'crm' });
  const crm: CrmSyncService = new CrmSyncService({
    store,
    jobs: jobs!,
    clock,
    logger: crmLogger,
    settings: () => settings.get(),
    crm: crmProvider,
    transcriptPdf: (sessionId, upto) => transcript.pdf(sessionId, upto),
    attachmentsOf: async (message) => {
      const raw = message.rawKey ? await blobs.get(message.rawKey) : undefined;
      return raw ? readAttachments(raw) : [];
    },
    agentEmail: async (agentId) => (await agents.find(agentId))?.email ?? null,
    queueName: async (queueId) => (await queues.get(queueId).catch(() => null))?.name ?? null,
    applyStatus: async (sessionId, status, actor) => {
      await sessions.setStatus(sessionId, status, actor);
    },
    // An agent's public reply in the CRM: recorded on the session and queued for the outbound path (R-AGT-4, outbound.crm_reply).
    onAgentReply: async (sessionId, event) => {
      await sessions.note(sessionId, { type: 'crm_agent_reply', at: clock.now(), actor: `crm:${event.authorEmail}`, data: { eventId: event.eventId, recordId: event.recordId } }, [
        { id: `outbound:crm-reply:${event.eventId}`, purpose: 'outbound.crm_reply', target: 'outbound', payload: { sessionId, event } },
      ]);
    },
  });
  crm.register();

  // Outbound mail (R-AGT-2..4, R-ARP, R-SIG): composed at accept time, sent by durable jobs per account.
  const outboundLogger = logger.child({ module: 'outbound' });
  const mailSender = createMailSender({ logger: outboundLogger, clock });
  const outbound = new OutboundService({
    store,
    blobs,
    blobOps: (key, data, meta) => blobs.opsFor(key, data, meta),
    clock,
    logger: outboundLogger,
    settings: () => settings.get(),
    // An unknown queue is null; a store failure is an error (retried), never taken for "no queue".
    queue: async (id) =>
      queues.get(id).catch((err: unknown) => {
        if (err instanceof AppError && err.code === 'not_found') return null;
        throw err;
      }),
    agent: (id) => agents.find(id),
    agentByEmail: (email) => agents.findByEmail(email),
    accountForUse: async (id) => ((await accounts.find(id)) ? accounts.getForUse(id) : null),
    ourAddresses: async () => (await routing.get()).accounts.flatMap((a) => [a.address, ...a.aliases]),
    upload: async (id) => {
      const meta = await uploads.get(id);
      return { filename: meta.filename, contentType: meta.contentType, bytes: await uploads.bytes(id) };
    },
    crmJobsFor: (change) => crm.jobsFor(change),
    crmDeliveryFailed: async (sessionId, messageId, outcome, reason) => {
      const s = await settings.get();
      return s.crm.outbound || s.crm.inbound ? [crmDeliveryFailedJob(s.connector.id, sessionId, messageId, outcome, reason)] : [];
    },
    mail: {
      compose: async (mail, date) => new Uint8Array(await composeRaw(mail, date)),
      sendRaw: (account, envelope, raw, messageId) => mailSender.sendRaw(account, envelope, raw, messageId),
      appendSent: (account, password, raw) => appendToSent({ imap: account.imap!, username: account.username, password }, raw),
    },
    html: { sanitize: sanitizeRichHtml, inlineImages: inlineDataImages, toText: htmlToText },
    guardHost: async (host, field) => {
      await hostGuard.check(host, field);
    },
    messageWrites: (id, now) => archiveWrites(id, now),
    onEffects: (session, effects) => assignment.onSessionEffects(session, effects),
  });
  outbound.register(jobs!);
  // Each account sends at most 2 mails at once (its pooled transport has 2 connections).
  jobs!.setTargetLimits('smtp:*', { concurrency: 2 });
  jobs!.setTargetLimits('imap:*', { concurrency: 1 });

  // Data storage and the mail archive (R-STO-1..4): settings with a connection test, durable archive jobs, retention.
  const storage = new StorageService({
    store,
    secrets,
    clock,
    hostGuard,
    createArchive: (s) => createArchiveStore(s, { dataDir }),
  });
  const archive: ArchiveService = new ArchiveService({
    store,
    blobs,
    clock,
    logger: logger.child({ module: 'archive' }),
    settings: () => storage.effective(),
    archive: () => storage.archive(),
    transcriptPdf: (sessionId) => transcript.pdf(sessionId),
    metadata: (sessionId) => crm.metadata(sessionId),
  });
  archive.register(jobs!);
  jobs!.setTargetLimits(ARCHIVE_TARGET, { concurrency: 4 });
  // Backlog: messages waiting for their copy, plus session-end and batch jobs not done yet.
  const archiveHealth = async () => {
    const [counts, pending, status] = await Promise.all([jobs!.counts(ARCHIVE_TARGET), archive.pendingCount(), archive.lastStatus()]);
    return { backlog: pending + counts.waiting + counts.delayed + counts.active, ...status };
  };
  metrics.watchArchive(archiveHealth);
  // Polling connectors (Salesforce): a poll a minute, and at once when a streaming connector says something changed
  // (the streamed notice only triggers the poll, so event ids, and exactly-once, stay the poll's). Webhook
  // connectors need neither. A trigger during a poll runs one more poll after it.
  let closing = false;
  // Triggered polls are at least MIN_POLL_GAP_MS apart (a busy org must not turn streaming into a poll loop).
  const MIN_POLL_GAP_MS = 5_000;
  let polling: Promise<void> | null = null;
  let pollAgain = false;
  let lastPollAt = Number.NEGATIVE_INFINITY;
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  const pollNow = (): void => {
    if (closing) return;
    if (polling) {
      pollAgain = true;
      return;
    }
    const wait = lastPollAt + MIN_POLL_GAP_MS - performance.now();
    if (wait > 0) {
      if (!pollTimer) {
        pollTimer = setTimeout(() => {
          pollTimer = undefined;
          pollNow();
        }, wait);
        pollTimer.unref();
      }
      return;
    }
    lastPollAt = performance.now();
    polling = crm
      .pollOnce()
      .then(() => undefined)
      .catch((err: unknown) => crmLogger.warn({ err: (err as Error).message }, 'CRM poll failed; retrying next time'))
      .finally(() => {
        polling = null;
        if (pollAgain) {
          pollAgain = false;
          pollNow();
        }
      });
  };
  // The minute tick also brings streaming back when it stopped (a network blip at start, an error).
  const crmPoll = setInterval(() => {
    pollNow();
    if (!stream) void refreshStream();
  }, 60_000);
  crmPoll.unref();
  let stream: { instance: unknown; close(): Promise<void> } | null = null;
  let streamChain: Promise<void> = Promise.resolve();
  /** Follows the current connector: subscribes when it streams, closes the old subscription when it changes. */
  const refreshStream = (): Promise<void> =>
    (streamChain = streamChain.then(async () => {
      const { id, instance } = await crmProvider.current();
      if (stream?.instance === instance) return;
      const old = stream;
      stream = null;
      await old?.close().catch(() => undefined);
      if (!instance.subscribeChanges || closing) return;
      const sub = await instance.subscribeChanges(pollNow, (err) => {
        crmLogger.warn({ connectorId: id, err: err.message }, 'CRM streaming stopped; polling every minute and trying again');
        // Forget it: the minute tick subscribes again.
        if (stream?.instance === instance) stream = null;
        void sub.close().catch(() => undefined);
      });
      stream = { instance, close: () => sub.close() };
      crmLogger.info({ connectorId: id }, 'CRM streaming on: changes trigger an immediate poll');
    }).catch((err: unknown) => crmLogger.warn({ err: (err as Error).message }, 'CRM streaming could not start; polling every minute')));

  // One IMAP worker per inbound account while the channel is on, for the mailboxes whose lease this
  // instance holds (R-GLB-1, R-REL-2).
  const imapLogger = logger.child({ module: 'imap' });
  const supervisor = new MailboxSupervisor({
    listAccounts: () => accounts.listAll(),
    channelEnabled: async () => (await settings.get()).emailChannel.enabled,
    openPassword: async (account) => {
      const { password } = await accounts.getForUse(account.id);
      if (password === null) throw new Error('no password is stored for this account');
      return password;
    },
    createWorker: (account, password, opts) =>
      new ImapMailboxWorker({
        accountId: account.id,
        imap: account.imap!,
        username: account.username,
        password,
        markAs: account.markAs,
        store,
        sink: ingest,
        clock,
        logger: imapLogger.child({ accountId: account.id }),
        importSince: opts.importSince,
        maxMessageBytes: env.MAX_MESSAGE_BYTES,
        // The ingest service keeps call order and commits deliveries waiting together as one group (one fsync).
        deliveryWindow: 32,
        guardHost: (host) => hostGuard.check(host, 'imap.host'),
      }),
    lease: new MailboxLease(store, { clock }),
    instanceId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    clock,
    logger: imapLogger,
  });
  settings.onChange = () => {
    void supervisor.refresh();
    void refreshStream();
  };
  const agents: AgentsService = new AgentsService({
    store,
    clock,
    logger: logger.child({ module: 'agents' }),
    onAgentDeactivated: (agentId) => assignment.onAgentDeactivated(agentId),
    onPresenceChange: (agentId, online) => assignment.onPresenceChange(agentId, online),
  });
  // Admin tokens are checked first (precedence); agent tokens resolve by their hash.
  const auth = new AuthService(adminTokens, [new AgentTokenResolver(agents)]);
  const health = new HealthService(store, [supervisor], archiveHealth);
  const app = createApp({
    auth,
    accounts,
    settings,
    uploads,
    jobs: jobs!,
    health,
    metrics,
    logger,
    sessions,
    quarantine,
    queues,
    agents,
    assignment,
    transcript,
    crm,
    outbound,
    storage,
    archiveStatus: archiveHealth,
    version: VERSION,
    observe: ({ method, route, status, seconds }) => {
      metrics.httpRequests.inc({ method, route, status: String(status) });
      metrics.httpDuration.observe({ method, route }, seconds);
    },
  });
  await jobs!.start();
  await supervisor.start();
  void refreshStream();

  // Status timers (R-SES-4/5): a sweep every 30 s reads only what is due; exact to the minute.
  let sweeping = false;
  const timerSweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sessions
      .runTimers()
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'timer sweep failed; retrying next time'))
      .finally(() => {
        sweeping = false;
      });
  }, 30_000);
  timerSweep.unref();
  // Waiting sessions (R-ASG-2/4): every 30 s, queues with waiting sessions are drained (hours opening, day
  // rollover, parked agents coming back); presence and queue changes drain at once.
  const assignSweep = setInterval(() => {
    assignment.sweep().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'assignment sweep failed; retrying next time'));
  }, 30_000);
  assignSweep.unref();
  // Retention (R-STO-1): every 10 minutes, archived messages past the retention lose their bodies here.
  let purging = false;
  const retentionSweep = setInterval(() => {
    if (purging) return;
    purging = true;
    archive
      .purgeExpired()
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'retention sweep failed; retrying next time'))
      .finally(() => {
        purging = false;
      });
  }, 10 * 60_000);
  retentionSweep.unref();
  // Redis: jobs whose commit applied but whose hand-over to BullMQ did not (a crash in between) are handed over.
  const pendingSweep = setInterval(() => {
    const s = store as Partial<{ redispatchPendingJobs(olderThanMs?: number): Promise<number> }>;
    s.redispatchPendingJobs?.(30_000)
      .then((n) => {
        if (n > 0) logger.warn({ jobs: n }, 'handed over jobs a crash had left pending');
      })
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'pending-jobs sweep failed; retrying next time'));
  }, 30_000);
  pendingSweep.unref();
  // The outbox's and the archive's safety nets: queued mail whose send job is gone gets a new one (once the channel
  // is on); messages waiting for their archive copy without a batch job get one.
  const outboxSweep = setInterval(() => {
    outbound.reconcileOutbox(jobs!).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'outbox sweep failed; retrying next time'));
    archive.reconcile(jobs!).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'archive sweep failed; retrying next time'));
  }, 60_000);
  outboxSweep.unref();

  return {
    app,
    store,
    jobs: jobs!,
    accounts,
    ingest,
    sessions,
    transcript,
    outbound,
    storage,
    archive,
    queues,
    agents,
    assignment,
    supervisor,
    secrets,
    hostGuard,
    metrics,
    logger,
    storeDescription: opened.describe,
    ...(generatedAdminToken ? { generatedAdminToken } : {}),
    ...(adminTokenFile ? { adminTokenFile } : {}),
    async close() {
      clearInterval(timerSweep);
      clearInterval(assignSweep);
      clearInterval(retentionSweep);
      clearInterval(pendingSweep);
      clearInterval(outboxSweep);
      clearInterval(crmPoll);
      closing = true;
      clearTimeout(pollTimer);
      await streamChain;
      await stream?.close().catch(() => undefined);
      await polling;
      await supervisor.stop();
      await assignment.close();
      await jobs!.stop();
      await mailSender.close();
      await pdfRenderer.close();
      await store.close();
    },
  };
}

// Cloudflare Workers entry (R-API-5): the same Hono app, HTTP side only. Mailbox sockets (IMAP/SMTP) run on Node.
// Today the Workers build has no store binding: /health and /openapi.json answer, and every /api/* route
// answers 503 store_unavailable after authentication. A later issue adds the Workers store and webhooks.
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
import { SessionsService } from '../app/sessions-service.js';
import { unavailableTranscripts } from '../app/transcript.js';
import {
  StoreUnavailableError,
  type BlobStore,
  type IndexEntry,
  type JobQueue,
  type JobRecord,
  type JobState,
  type Logger,
  type Store,
} from '../core/ports.js';
import { createApp } from '../http/app.js';

export interface WorkerEnv {
  ADMIN_TOKEN?: string;
  UPLOAD_MAX_BYTES?: string;
}

const NO_STORE = 'The Workers deployment has no store binding yet; run the Node service (npm start) for the API';
const unavailable = (): never => {
  throw new StoreUnavailableError(NO_STORE);
};

/** A store that is honestly absent: every call fails with 503, ping answers false. */
class AbsentStore implements Store {
  readonly kind = 'embedded' as const;
  get<T>(): Promise<T | undefined> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  getMany<T>(): Promise<(T | undefined)[]> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  put(): Promise<void> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  delete(): Promise<boolean> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  putIfAbsent(): Promise<boolean> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  update<T>(): Promise<T | undefined> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  incr(): Promise<number> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  indexAdd(): Promise<void> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  indexRemove(): Promise<void> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  indexScore(): Promise<number | undefined> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  indexRange(): Promise<IndexEntry[]> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  indexCount(): Promise<number> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  commit(): Promise<void> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  ping(): Promise<boolean> { return Promise.resolve(false); }
  close(): Promise<void> { return Promise.resolve(); }
}

class AbsentJobs implements JobQueue {
  enqueue(): Promise<void> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  register(): void {}
  setTargetLimits(): void {}
  start(): Promise<void> { return Promise.resolve(); }
  stop(): Promise<void> { return Promise.resolve(); }
  get(): Promise<JobRecord | undefined> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  list(): Promise<{ items: JobRecord[]; nextCursor: string | null }> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  retry(): Promise<boolean> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
  counts(): Promise<Record<JobState, number>> { return Promise.reject(new StoreUnavailableError(NO_STORE)); }
}

const absentBlobs: BlobStore = { put: unavailable, get: unavailable, delete: unavailable };

const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (o, m) => console.warn(m ?? '', o),
  error: (o, m) => console.error(m ?? '', o),
  child: () => consoleLogger,
};

let cached: { token: string; fetch: (req: Request) => Response | Promise<Response> } | undefined;

function appFor(env: WorkerEnv) {
  const token = env.ADMIN_TOKEN ?? '';
  if (cached?.token === token) return cached;
  const tokens = token.split(',').map((t) => t.trim()).filter(Boolean);
  if (tokens.length === 0) throw new Error('Set the ADMIN_TOKEN secret (wrangler secret put ADMIN_TOKEN)');
  const store = new AbsentStore();
  const clock = { now: () => Date.now() };
  const settings = new SettingsService(store);
  const agents = new AgentsService({ store, clock });
  const ingest = new IngestService({
    store,
    blobs: absentBlobs,
    clock,
    logger: consoleLogger,
    parse: () => Promise.reject(new StoreUnavailableError(NO_STORE)),
    settings: () => settings.get(),
    routingTables: () => Promise.reject(new StoreUnavailableError(NO_STORE)),
  });
  const app = createApp({
    // No sockets on Workers: the accounts API answers 503 (absent store) before any server check runs.
    accounts: new AccountsService({ store, secrets: { seal: unavailable, open: unavailable }, hostGuard: { check: unavailable }, probe: { checkImap: unavailable, checkSmtp: unavailable } }),
    sessions: new SessionsService({ store, blobs: absentBlobs, clock, logger: consoleLogger, settings: () => settings.get() }),
    quarantine: new QuarantineService(store, absentBlobs, ingest),
    queues: new QueuesService({ store, clock, channelEnabled: async () => (await settings.get()).emailChannel.enabled, account: () => Promise.reject(new StoreUnavailableError(NO_STORE)) }),
    agents,
    // Same engine; every call reaches the absent store (503).
    assignment: new AssignmentService({
      store,
      clock,
      logger: consoleLogger,
      directory: { expandMembers: unavailable, onlineMap: unavailable, isActive: unavailable },
    }),
    // No browser on Workers: GET /api/sessions/:id/transcript.pdf answers 503.
    transcript: unavailableTranscripts,
    // An agent token (`eca_…`) needs the store to be checked: 503 here; any other unknown token is a 401.
    auth: new AuthService(tokens, [new AgentTokenResolver(agents)]),
    settings,
    uploads: new UploadsService(store, absentBlobs, clock, Number(env.UPLOAD_MAX_BYTES ?? 25 * 1024 * 1024)),
    jobs: new AbsentJobs(),
    health: new HealthService(store),
    logger: consoleLogger,
    version: '0.1.0',
  });
  cached = { token, fetch: (req) => app.fetch(req) };
  return cached;
}

export default {
  fetch(request: Request, env: WorkerEnv): Response | Promise<Response> {
    try {
      return appFor(env).fetch(request);
    } catch (err) {
      return Response.json({ error: { code: 'internal', message: (err as Error).message } }, { status: 500 });
    }
  },
};

// createApp(deps): the Hono application (admin API, agent API, webhooks, pages) with one onError.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { AccountsService } from '../app/accounts-service.js';
import type { AgentsService } from '../app/agents-service.js';
import type { AssignmentService } from '../app/assignment-service.js';
import type { HealthService } from '../app/health-service.js';
import type { SettingsService } from '../app/settings-service.js';
import type { UploadsService } from '../app/uploads-service.js';
import type { QuarantineService } from '../app/quarantine-service.js';
import type { QueuesService } from '../app/queues-service.js';
import type { SessionsService } from '../app/sessions-service.js';
import type { TranscriptService } from '../app/transcript.js';
import type { TokenResolver } from '../core/auth.js';
import { AppError } from '../core/errors.js';
import type { JobQueue, Logger } from '../core/ports.js';
import { requireToken, type AuthEnv } from './auth.js';
import { errorBody, makeOnError, validationHook } from './errors.js';
import { accountRoutes } from './routes/accounts.js';
import { agentRoutes } from './routes/agents.js';
import { teamRoutes } from './routes/teams.js';
import { jobRoutes } from './routes/jobs.js';
import { settingsRoutes } from './routes/settings.js';
import { systemRoutes, type MetricsSource } from './routes/system.js';
import { uploadRoutes } from './routes/uploads.js';
import { quarantineRoutes } from './routes/quarantine.js';
import { queueRoutes } from './routes/queues.js';
import { sessionRoutes } from './routes/sessions.js';
import { crmRoutes } from './routes/crm.js';
import type { CrmSyncService } from '../app/crm-sync.js';
import { transcriptRoutes } from './routes/transcript.js';
import { assignmentRoutes } from './routes/assignment.js';
import { outboundRoutes } from './routes/outbound.js';
import { storageRoutes, type ArchiveStatusSource } from './routes/storage.js';
import { zendeskSidebarRoutes } from './routes/zendesk-sidebar.js';
import type { StorageService } from '../app/storage-service.js';
import type { OutboundService } from '../app/outbound-service.js';

export interface AppDeps {
  auth: TokenResolver;
  settings: SettingsService;
  uploads: UploadsService;
  jobs: JobQueue;
  health: HealthService;
  accounts: AccountsService;
  sessions: SessionsService;
  /** CRM webhooks and the connector test (absent in runtimes without a store). */
  crm?: CrmSyncService;
  quarantine: QuarantineService;
  queues: QueuesService;
  agents: AgentsService;
  /** Manual assignment, transfer, waiting sessions, agent load (R-ASG, R-QUE-4). */
  assignment: AssignmentService;
  /** Agent replies and new outbound sessions (absent in runtimes without SMTP: the routes are not served). */
  outbound?: OutboundService;
  /** Data storage settings and the connection test (R-STO); absent where no archive runs. */
  storage?: StorageService;
  /** The archive's backlog and last failure (GET /api/storage/status). */
  archiveStatus?: ArchiveStatusSource;
  /** PDF transcripts (R-CRM-3); absent or unavailable where no browser runs: the route answers 503. */
  transcript?: TranscriptService;
  metrics?: MetricsSource;
  logger: Logger;
  version: string;
  /** Called once per request with the matched route pattern (metrics). */
  observe?: (info: { method: string; route: string; status: number; seconds: number }) => void;
}

export const OPENAPI_INFO = {
  title: 'email-channel API',
  description:
    'Email channel for any CRM. Every `/api/*` call needs `Authorization: Bearer <token>`. Lists answer `{ items, nextCursor }` newest first; errors answer `{ error: { code, message, fields? } }`.',
};

export function createApp(deps: AppDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>({ defaultHook: validationHook });
  app.onError(makeOnError(deps.logger));
  if (deps.observe) {
    const observe = deps.observe;
    app.use('*', async (c, next) => {
      const started = performance.now();
      await next();
      observe({ method: c.req.method, route: c.req.routePath, status: c.res.status, seconds: (performance.now() - started) / 1000 });
    });
  }
  app.notFound((c) => c.json(errorBody('not_found', `No route ${c.req.method} ${c.req.path}`), 404));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'Admin token (ADMIN_TOKEN or the generated one under DATA_DIR), or an agent token',
  });

  systemRoutes(app, { health: deps.health, metrics: deps.metrics, auth: deps.auth });
  app.get('/openapi.json', (c) => c.json(openApiDocument(app, deps.version)));
  // The Zendesk app's ticket sidebar (static page; it reads the session through ZAF's secure proxy with a token).
  zendeskSidebarRoutes(app);

  app.use('/api/*', requireToken(deps.auth));
  if (deps.crm) crmRoutes(app, deps.crm);
  app.use('/api/*', async (c, next) => {
    // JSON in: a write with a body in another type is refused before any handler runs (uploads excepted).
    const method = c.req.method;
    if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && c.req.path !== '/api/uploads') {
      const type = c.req.header('content-type') ?? '';
      const length = c.req.header('content-length');
      const hasBody = c.req.raw.body !== null && length !== '0';
      if (hasBody && !/^application\/(?:[a-z0-9.+-]+\+)?json\b/i.test(type)) {
        throw new AppError('validation_failed', 'Send JSON with Content-Type: application/json', [{ path: '(body)', message: 'must be application/json' }]);
      }
    }
    await next();
  });
  settingsRoutes(app, deps.settings);
  if (deps.storage) storageRoutes(app, deps.storage, deps.archiveStatus);
  uploadRoutes(app, deps.uploads);
  jobRoutes(app, deps.jobs);
  queueRoutes(app, deps.queues);
  agentRoutes(app, deps.agents);
  teamRoutes(app, deps.agents);
  // Before the session routes: POST /api/sessions must not be taken for a session id.
  if (deps.outbound) outboundRoutes(app, deps.outbound);
  sessionRoutes(app, deps.sessions);
  transcriptRoutes(app, deps.transcript);
  assignmentRoutes(app, deps.assignment);
  quarantineRoutes(app, deps.quarantine);
  accountRoutes(app, deps.accounts);
  return app;
}

export function openApiDocument(app: OpenAPIHono<AuthEnv>, version: string) {
  return app.getOpenAPI31Document({ openapi: '3.1.0', info: { ...OPENAPI_INFO, version } });
}

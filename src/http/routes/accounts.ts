// /api/accounts (R-ACC-1..4, SPEC §11a): list, create, read, patch, delete and re-test email accounts; passwords are write-only.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AccountCreateSchema, AccountPatchSchema, TLS_MODES, type AccountsService } from '../../app/accounts-service.js';
import { assertAdmin, type AuthEnv } from '../auth.js';
import { conflictResponse, errorResponses, IdParamSchema, ListQuerySchema, listOf, notFoundResponse, security } from '../schemas.js';

const STATES = ['pending', 'connected', 'idle', 'auth_failed', 'unreachable', 'tls_error', 'timeout', 'protocol_error', 'disabled'] as const;

const ServerEndpointSchema = z
  .object({
    host: z.string().openapi({ example: 'imap.example.com' }),
    port: z.number().int().openapi({ example: 993 }),
    secure: z.boolean().openapi({ description: 'TLS from the first byte (IMAPS 993, SMTPS 465); otherwise STARTTLS per `starttls`' }),
    starttls: z.enum(TLS_MODES).openapi({ description: '`auto`: when offered; `required`: fail without it; `off`: never' }),
  })
  .openapi('ServerEndpoint');

const ServerCheckSchema = z
  .object({
    state: z.enum(STATES).openapi({ example: 'connected' }),
    error: z.string().nullable().openapi({ description: "The server's own message when the check failed" }),
    checkedAt: z.string().nullable(),
  })
  .openapi('ServerCheck');

const AccountStatusSchema = z
  .object({
    valid: z.boolean().openapi({ description: 'True when the last check of every server the account uses succeeded' }),
    imap: ServerCheckSchema.nullable().openapi({ description: 'null for an outbound-only account (never read)' }),
    smtp: ServerCheckSchema,
    import: z.object({ done: z.number().int(), total: z.number().int(), finished: z.boolean() }).nullable().optional(),
  })
  .openapi('AccountStatus');

const MarkAsViewSchema = z.union([
  z.object({ type: z.literal('seen') }),
  z.object({ type: z.literal('keyword'), keyword: z.string() }),
  z.object({ type: z.literal('none') }),
]);

const AccountSchema = z
  .object({
    id: z.string().openapi({ example: 'acc_7k2m9qx4tbz3h8w1' }),
    service: z.literal('generic_imap'),
    username: z.string(),
    address: z.string().openapi({ example: 'support@example.com' }),
    aliases: z.array(z.string()),
    imap: ServerEndpointSchema.nullable(),
    smtp: ServerEndpointSchema,
    auth: z.object({ type: z.literal('password') }),
    passwordSet: z.boolean().openapi({ description: 'The password itself is write-only and never returned' }),
    outboundOnly: z.boolean(),
    markAs: MarkAsViewSchema,
    importSince: z.string().nullable(),
    status: AccountStatusSchema,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Account');

// Request bodies come from src/app (plain zod with `.meta({ id })`: AccountCreate, AccountPatch components).
const AccountCreate = AccountCreateSchema;
const AccountPatch = AccountPatchSchema;

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });

const SAVE_NOTE =
  'Saving checks IMAP login and SMTP auth (each within 15 s) and records the outcome in `status`: a bad server or password is reported (`auth_failed`, `unreachable`, `tls_error`, `timeout`, `protocol_error`; `valid: false`), never refused (R-ACC-4). ' +
  'An outbound-only account (R-ACC-3) is never read: it has no IMAP server (`imap` must be null or absent, else 400) and no IMAP check (`status.imap` is null). ' +
  'Addresses and aliases are lowercased and unique across all accounts (409 naming the field). Hosts must not be loopback/private unless ALLOW_PRIVATE_HOSTS allows it (400 naming e.g. `imap.host`). ' +
  'CR, LF and NUL are refused in every string.';

const listAccounts = createRoute({
  method: 'get',
  path: '/api/accounts',
  tags: ['accounts'],
  summary: 'Email accounts, newest first (R-ACC-1)',
  security,
  request: { query: ListQuerySchema },
  responses: {
    200: { description: 'A page of accounts', content: json(listOf(AccountSchema, 'AccountList')) },
    ...errorResponses,
  },
});

const createAccount = createRoute({
  method: 'post',
  path: '/api/accounts',
  tags: ['accounts'],
  summary: 'Add an email account (R-ACC-2); its servers are checked and the status recorded',
  description: `${SAVE_NOTE} \`username\` defaults to the address; \`secure\` defaults to true on ports 993/465; \`starttls\` to \`auto\`; \`markAs\` to \`{ "type": "seen" }\`.`,
  security,
  request: { body: { required: true, content: json(AccountCreate) } },
  responses: {
    201: { description: 'Created (check `status` for the server checks)', content: json(AccountSchema) },
    ...errorResponses,
    ...conflictResponse,
  },
});

const getAccount = createRoute({
  method: 'get',
  path: '/api/accounts/{id}',
  tags: ['accounts'],
  summary: 'One email account',
  security,
  request: { params: IdParamSchema },
  responses: {
    200: { description: 'The account', content: json(AccountSchema) },
    ...errorResponses,
    ...notFoundResponse,
  },
});

const patchAccount = createRoute({
  method: 'patch',
  path: '/api/accounts/{id}',
  tags: ['accounts'],
  summary: 'Change any subset of an account; an omitted password keeps the stored one',
  description: `${SAVE_NOTE} Objects merge (\`{ "smtp": { "port": 587 } }\`), arrays replace. Servers are checked again when a server, the user name or the password changes. Setting \`outboundOnly: true\` clears the IMAP server; setting it back to false needs \`imap\`.`,
  security,
  request: { params: IdParamSchema, body: { required: true, content: json(AccountPatch) } },
  responses: {
    200: { description: 'Saved', content: json(AccountSchema) },
    ...errorResponses,
    ...notFoundResponse,
    ...conflictResponse,
  },
});

const deleteAccount = createRoute({
  method: 'delete',
  path: '/api/accounts/{id}',
  tags: ['accounts'],
  summary: 'Remove an email account (its mailbox is no longer read; nothing in the mailbox is touched)',
  security,
  request: { params: IdParamSchema },
  responses: {
    204: { description: 'Deleted' },
    ...errorResponses,
    ...notFoundResponse,
    ...conflictResponse,
  },
});

const testAccount = createRoute({
  method: 'post',
  path: '/api/accounts/{id}/test',
  tags: ['accounts'],
  summary: 'Check the servers again and record the fresh status',
  security,
  request: { params: IdParamSchema },
  responses: {
    200: { description: 'The account with its fresh status', content: json(AccountSchema) },
    ...errorResponses,
    ...notFoundResponse,
    ...conflictResponse,
  },
});

export function accountRoutes(app: OpenAPIHono<AuthEnv>, accounts: AccountsService): void {
  app.openapi(listAccounts, async (c) => {
    assertAdmin(c.get('principal'));
    const q = c.req.valid('query');
    return c.json(await accounts.list({ limit: q.limit, cursor: q.cursor }), 200);
  });
  app.openapi(createAccount, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await accounts.create(c.req.valid('json')), 201);
  });
  app.openapi(getAccount, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await accounts.get(c.req.valid('param').id), 200);
  });
  app.openapi(patchAccount, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await accounts.update(c.req.valid('param').id, c.req.valid('json')), 200);
  });
  app.openapi(deleteAccount, async (c) => {
    assertAdmin(c.get('principal'));
    await accounts.remove(c.req.valid('param').id);
    return c.body(null, 204);
  });
  app.openapi(testAccount, async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await accounts.test(c.req.valid('param').id), 200);
  });
}

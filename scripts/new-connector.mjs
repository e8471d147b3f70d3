// Scaffolds a CRM connector folder (connectors/<id>/) that compiles and runs the kit, failing only where CRM-specific code is missing.
//
//   npm run new-connector <id>                 creates connectors/<id>/
//   node scripts/new-connector.mjs <id> --out <dir>   writes the files into <dir> instead (it must not exist)
//
// It never edits the registry or the manifest: it prints the two lines to add (connectors/README.md).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONNECTORS = join(ROOT, 'connectors');
const ID_PATTERN = /^[a-z][a-z0-9_-]{1,31}$/;
const RESERVED = new Set(['kit', 'index', 'contract', 'node_modules']);

function usage(message) {
  console.error(`new-connector: ${message}`);
  console.error('usage: npm run new-connector <id>   (id: lowercase letters, digits, - or _; 2–32 characters, starting with a letter)');
  process.exit(1);
}

function parseArgs(argv) {
  const args = { id: undefined, out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') {
      args.out = argv[++i];
      if (!args.out) usage('--out needs a folder');
    } else if (a.startsWith('--out=')) args.out = a.slice('--out='.length);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (args.id === undefined) args.id = a;
    else usage(`unexpected argument ${a}`);
  }
  return args;
}

const words = (id) => id.split(/[-_]/).filter(Boolean);
const pascal = (id) => words(id).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
const camel = (id) => {
  const p = pascal(id);
  return p[0].toLowerCase() + p.slice(1);
};

function files({ id, rel }) {
  const Name = pascal(id);
  const name = camel(id);
  const contract = `${rel}/contract.js`;
  const kit = `${rel}/kit/index.js`;
  return {
    'index.ts': `// The ${Name} connector: session records as ${Name} records through its API (scaffolded; fill in each "not implemented").
import { z } from 'zod';
import { ConnectorError, defineConnector, type ConnectorInstance } from '${contract}';
import { createClient } from './client.js';
import { statusMap } from './mapping.js';

/** What an administrator enters (mirror it in manifests/connectors.json). */
export const ${name}ConfigSchema = z.object({
  /** Base URL of the ${Name} API. */
  url: z.url(),
  apiToken: z.string().min(1),
});

const notImplemented = (op: string): never => {
  throw new ConnectorError('permanent', \`not implemented: \${op} (connectors/${id})\`);
};

export const ${name}Connector = defineConnector({
  id: '${id}',
  name: '${Name}',
  configSchema: ${name}ConfigSchema,
  secretFields: ['apiToken'],
  // Say what the CRM can do; the kit checks these against the operations below.
  capabilities: {
    comments: true,
    attachments: true,
    statusSync: 'to_crm',
    assignee: true,
    agents: false,
    presence: false,
    webhooks: false,
    polling: false,
    streaming: false,
    followUps: false,
  },
  statusMap,
  create(ctx): ConnectorInstance {
    const client = createClient(ctx);
    return {
      async test() {
        void client; // e.g. await client.request('GET', '/api/me')
        return notImplemented('test');
      },
      async createRecord(_input) {
        // Idempotent by input.externalId: look it up first, or use the CRM's upsert by external id.
        return notImplemented('createRecord');
      },
      async findByExternalId(_externalId) {
        return notImplemented('findByExternalId');
      },
      async addComment(_input) {
        return notImplemented('addComment');
      },
      async attachFile(_recordId, _file) {
        return notImplemented('attachFile');
      },
      async setStatus(_recordId, _status) {
        return notImplemented('setStatus');
      },
      async setAssignee(_recordId, _assignee) {
        return notImplemented('setAssignee');
      },
      async setQueue(_recordId, _queue) {
        return notImplemented('setQueue');
      },
      // listAgents, parseWebhook (see webhooks.ts), pollEvents: add them when the CRM has them, and set capabilities.
    };
  },
});
`,
    'client.ts': `// The only file that talks to ${Name}'s API (and the only one importing its SDK, if it has one).
import { ConnectorError, type ConnectorContext } from '${contract}';
import { classifyHttpError } from './mapping.js';

export interface ${Name}ClientConfig {
  url: string;
  apiToken: string;
}

export function createClient(ctx: ConnectorContext<${Name}ClientConfig>) {
  const doFetch = ctx.fetch ?? globalThis.fetch;
  let hostChecked = false;
  return {
    /** One API call: bounded by ctx.timeoutMs; every failure leaves as a classified ConnectorError. */
    async request(method: string, path: string, body?: unknown): Promise<unknown> {
      const url = new URL(path, ctx.config.url);
      if (!hostChecked) {
        await ctx.checkHost(url.hostname, 'url');
        hostChecked = true;
      }
      let res: Response;
      try {
        res = await doFetch(url, {
          method,
          headers: { authorization: \`Bearer \${ctx.config.apiToken}\`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(ctx.timeoutMs),
        });
      } catch (err) {
        throw new ConnectorError('transient', \`${id}: \${method} \${url.pathname}: \${err instanceof Error ? err.message : String(err)}\`);
      }
      if (!res.ok) throw classifyHttpError(res.status, res.headers.get('retry-after'), await res.text().catch(() => ''), ctx.now());
      return res.status === 204 ? null : res.json();
    },
  };
}
`,
    'mapping.ts': `// Pure mappings of the ${Name} connector: statuses, record bodies, and the one place API errors are classified.
import { ConnectorError, type SessionStatus } from '${contract}';

/** Session status → ${Name} status value. TODO: the CRM's own values (documented in README.md and the manifest). */
export const statusMap: Record<SessionStatus, string> = {
  unopened: 'new',
  active: 'open',
  paused: 'pending',
  resolved: 'solved',
  closed: 'closed',
  reopened: 'open',
};

/** Milliseconds from a Retry-After header: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\\d+(\\.\\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Every non-2xx answer of the API, as a stable ConnectorError kind. Adjust to how ${Name} reports errors. */
export function classifyHttpError(status: number, retryAfter: string | null, body: string, now: number): ConnectorError {
  const detail = \`${id}: HTTP \${status}\${body ? \`: \${body.slice(0, 200)}\` : ''}\`;
  if (status === 401 || status === 403) return new ConnectorError('auth', detail, undefined, status);
  if (status === 404) return new ConnectorError('not_found', detail, undefined, status);
  if (status === 409 || status === 422) return new ConnectorError('conflict', detail, undefined, status);
  if (status === 429) return new ConnectorError('rate_limited', detail, parseRetryAfter(retryAfter, now) ?? 60_000, status);
  if (status >= 500) return new ConnectorError('transient', detail, parseRetryAfter(retryAfter, now), status);
  return new ConnectorError('permanent', detail, undefined, status);
}
`,
    'webhooks.ts': `// Verifies ${Name}'s webhooks (signature over the raw body, timestamp window) and maps them to CrmEvents.
import { ConnectorError, type CrmEvent, type IncomingRequest } from '${contract}';

/** Wire it as the instance's parseWebhook and set capabilities.webhooks once implemented. */
export async function parseWebhook(_request: IncomingRequest, _secret: string): Promise<CrmEvent[]> {
  throw new ConnectorError('permanent', 'not implemented: parseWebhook (connectors/${id}/webhooks.ts)');
}
`,
    'fake.ts': `// A faithful fake of ${Name}'s HTTP API for the kit: msw handlers with the CRM's real paths, bodies, status codes and errors.
import { HttpResponse, type RequestHandler } from 'msw';

/** What the kit injects (structurally the kit's InjectedFailure). */
export type Failure = { status: number; retryAfterSeconds?: number } | { network: true };

interface FakeRecord {
  id: string;
  externalId: string;
  status: string;
  assigneeEmail: string | null;
  tags: string[];
  comments: { body: string; public: boolean }[];
  files: { filename: string; size: number }[];
}

/** The fake the kit drives (the kit's ConnectorFake, structurally: a connector folder does not import the kit). */
export function create${Name}Fake() {
  const records = new Map<string, FakeRecord>();
  let failures: { failure: Failure; left: number }[] = [];
  let agents = 0;
  let requests = 0;

  /** Call first in every handler: counts the request and answers an injected failure, if one is due. */
  function failureResponse(): Response | undefined {
    requests += 1;
    const head = failures[0];
    if (!head) return undefined;
    head.left -= 1;
    if (head.left <= 0) failures.shift();
    const f = head.failure;
    if ('network' in f) return HttpResponse.error();
    const headers: Record<string, string> = f.retryAfterSeconds !== undefined ? { 'retry-after': String(f.retryAfterSeconds) } : {};
    return HttpResponse.json({ error: \`injected \${f.status}\` }, { status: f.status, headers });
  }

  const handlers: RequestHandler[] = [
    // TODO: one handler per API path the connector calls, e.g.
    // http.post('https://${id}.example.test/api/records', async ({ request }) => failureResponse() ?? ...),
  ];
  void failureResponse;

  return {
    handlers,
    reset(): void {
      records.clear();
      failures = [];
      agents = 0;
      requests = 0;
    },
    injectFailure(failure: Failure, opts?: { times?: number }): void {
      failures.push({ failure, left: opts?.times ?? 1 });
    },
    countRecords(externalId: string): number {
      return [...records.values()].filter((r) => r.externalId === externalId).length;
    },
    comments(recordId: string): { body: string; public: boolean }[] {
      return records.get(recordId)?.comments ?? [];
    },
    files(recordId: string): { filename: string; size: number }[] {
      return records.get(recordId)?.files ?? [];
    },
    record(recordId: string) {
      const r = records.get(recordId);
      return r ? { status: r.status, assigneeEmail: r.assigneeEmail, tags: r.tags } : undefined;
    },
    seedAgents(n: number): void {
      agents = n;
      void agents;
    },
    requestCount(): number {
      return requests;
    },
  };
}
`,
    'contract.test.ts': `// Runs the conformance kit against the ${Name} connector and its fake API.
import { runConnectorContract } from '${kit}';
import { create${Name}Fake } from './fake.js';
import { ${name}Connector } from './index.js';

runConnectorContract({
  name: '${id}',
  definition: ${name}Connector,
  config: { url: 'https://${id}.example.test', apiToken: 'kit-valid-token' },
  badConfig: { url: 'https://${id}.example.test', apiToken: 'kit-refused-token' },
  fake: create${Name}Fake,
  // A test the CRM cannot pass: { test: '<exact kit title>', reason: 'why the CRM cannot' }.
  skip: [],
});
`,
    'README.md': `# ${Name} connector (\`${id}\`)

Scaffolded by \`npm run new-connector ${id}\`. Until each operation is written the kit fails with
"not implemented"; see \`connectors/README.md\` for the contract and the habits.

## Checklist

- [ ] \`index.ts\`: config schema, capabilities, every operation (idempotent by \`externalId\`)
- [ ] \`client.ts\`: the only file talking to ${Name} (and importing its SDK); every failure classified
- [ ] \`mapping.ts\`: the status map, record bodies, \`classifyHttpError\` against ${Name}'s real error answers
- [ ] \`webhooks.ts\`: signature check and event mapping (or polling), then the capabilities
- [ ] \`fake.ts\`: msw handlers faithful to ${Name}'s API (paths, bodies, 401/404/422/429/5xx, pagination)
- [ ] \`contract.test.ts\`: kit green; any skip carries its reason
- [ ] registered in \`connectors/index.ts\` and described in \`manifests/connectors.json\`

## Config

| key | what |
| --- | --- |
| \`url\` | base URL of the ${Name} API |
| \`apiToken\` | API token (secret) |

## Status map

See \`mapping.ts\`.
`,
  };
}

function main() {
  const { id, out } = parseArgs(process.argv.slice(2));
  if (id === undefined) usage('give the connector id');
  if (!ID_PATTERN.test(id)) usage(`bad id "${id}"`);
  if (RESERVED.has(id)) usage(`"${id}" is reserved in connectors/`);
  const target = out ? resolve(process.cwd(), out) : join(CONNECTORS, id);
  if (existsSync(target)) {
    console.error(`new-connector: ${relative(ROOT, target) || target} already exists; refusing to overwrite it`);
    process.exit(1);
  }
  const rel = relative(target, CONNECTORS).split(sep).join('/') || '.';
  mkdirSync(target, { recursive: true });
  for (const [name, text] of Object.entries(files({ id, rel }))) writeFileSync(join(target, name), text, { flag: 'wx' });
  const shown = relative(ROOT, target).split(sep).join('/');
  console.log(`new-connector: created ${shown}/ (index.ts, client.ts, mapping.ts, webhooks.ts, fake.ts, contract.test.ts, README.md)`);
  console.log('new-connector: next:');
  console.log(`  1. npx vitest run ${shown}   (fails with "not implemented" until the operations are written)`);
  console.log(`  2. register it in connectors/index.ts:   ['${id}', ${camel(id)}Connector],`);
  console.log(`  3. describe it in manifests/connectors.json (test/manifests.test.ts checks both agree)`);
}

main();

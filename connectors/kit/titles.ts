// The conformance kit's test titles: the names a connector's `skip: [{ test, reason }]` refers to.

/** One title per test of runConnectorContract, keyed by a short name the kit uses internally. */
export const CONTRACT_TEST_TITLES = {
  configParses: 'config: the config and the badConfig both parse with configSchema',
  capabilities: 'capabilities: optional operations and statusMap match what the definition declares',
  testOk: 'test(): resolves with the valid config',
  testBadConfig: 'test(): refused credentials → ConnectorError auth',
  createRecord: 'createRecord: creates the record with first comment, requester, queue, assignee and custom fields',
  recordMarker: 'createRecord: the record carries RECORD_MARKER as a tag',
  findByExternalId: 'findByExternalId: finds the record by its external id, null for an unknown one',
  createTwice: 'createRecord: the same externalId twice → one record (retry after a lost answer)',
  createAfter5xx: 'createRecord: 5xx then success → the call succeeds or fails retryable, and no duplicate',
  rateLimited: 'createRecord: 429 with Retry-After → rate_limited with retryAfterMs, or waits and writes',
  networkError: 'createRecord: network error → ConnectorError transient',
  addComment: 'addComment: a public reply and an internal note',
  addCommentTwice: 'addComment: the same externalId twice → one comment',
  attachFile: 'attachFile: a small PDF is attached to the record',
  attachFileTwice: 'attachFile: the same externalId twice → one file',
  setStatus: 'setStatus: each of the six statuses maps through statusMap',
  setStatusMissing: 'setStatus: an unknown record → ConnectorError not_found',
  setAssignee: 'setAssignee: an agent by email, then nobody',
  setQueue: 'setQueue: moves the record to the CRM queue of another service queue',
  listAgents: 'listAgents: pages through 250 seeded agents, all distinct',
  webhookSigned: 'parseWebhook: a signed webhook → its events',
  webhookForged: 'parseWebhook: forged or unsigned → ConnectorError auth',
  pollEvents: 'pollEvents: a CRM change is reported once, not again from the returned checkpoint',
} as const;

export type ContractTestKey = keyof typeof CONTRACT_TEST_TITLES;
export type ContractTestTitle = (typeof CONTRACT_TEST_TITLES)[ContractTestKey];

/** Every test title of the kit, in the order the tests run. */
export const CONTRACT_TESTS: readonly ContractTestTitle[] = Object.values(CONTRACT_TEST_TITLES);

/** The kit's own check of the skip list; it always runs and cannot be skipped. */
export const SKIP_LIST_TITLE = 'kit: every skip names a kit test and gives a reason';

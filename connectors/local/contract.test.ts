// Runs the conformance kit against the local connector, with an in-memory store standing in for the service's.
import { runConnectorContract } from '../kit/index.js';
import { createLocalFake } from './fake.js';
import { localConnector } from './index.js';

runConnectorContract({
  name: 'local',
  definition: localConnector,
  config: {},
  badConfig: {},
  fake: createLocalFake,
  skip: [
    { test: 'test(): refused credentials → ConnectorError auth', reason: 'no credentials: the local connector takes no configuration, so there is nothing to refuse' },
    { test: 'createRecord: 429 with Retry-After → rate_limited with retryAfterMs, or waits and writes', reason: "no HTTP API: records go to the service's own store, which has no rate limit or Retry-After" },
    { test: 'listAgents: pages through 250 seeded agents, all distinct', reason: "no agents of its own: the local CRM's agents are the service's agents (/api/agents)" },
    { test: 'parseWebhook: a signed webhook → its events', reason: 'no webhooks: the local CRM lives in the service; outside changes to its records are read by pollEvents' },
    { test: 'parseWebhook: forged or unsigned → ConnectorError auth', reason: 'no webhooks: the local CRM lives in the service; outside changes to its records are read by pollEvents' },
  ],
});

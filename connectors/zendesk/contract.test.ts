// Runs the shared conformance kit (connectors/kit) against the Zendesk connector and its msw fake.
import { CONTRACT_TEST_TITLES, runConnectorContract, type ConnectorFake } from '../kit/index.js';
import { createZendeskFake } from './fake.js';
import { zendeskConnector } from './index.js';

const account = { url: 'https://kit-acme.zendesk.com', email: 'integration@kit-acme.example', apiToken: 'kit-token', webhookSecret: 'kit-webhook-secret' };
const config = { ...account, groupByQueue: { Q1: 2001, Q2: 2002 }, sessionIdFieldId: 360000000001, statusFieldId: 360000000002 };

runConnectorContract({
  name: 'zendesk',
  definition: zendeskConnector,
  config,
  badConfig: { ...config, apiToken: 'revoked-token' },
  fake: (): ConnectorFake => createZendeskFake(account),
  customFields: { '360000000099': 'kit-value' },
  skip: [
    {
      test: CONTRACT_TEST_TITLES.pollEvents,
      reason: 'Zendesk pushes ticket changes to the service through signed webhooks (the triggers in manifests/zendesk/requirements.json); the connector does not poll',
    },
  ],
});

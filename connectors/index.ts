// The connector registry: every connector the service can use, listed explicitly (no filesystem discovery).
import type { ConnectorDefinition } from './contract.js';
import { localConnector } from './local/index.js';
import { zendeskConnector } from './zendesk/index.js';
import { salesforceConnector } from './salesforce/index.js';

/**
 * id → definition. Adding a connector: one import above, one line below, one entry in
 * manifests/connectors.json (test/manifests.test.ts checks that both agree).
 */
export const connectorRegistry: ReadonlyMap<string, ConnectorDefinition> = new Map<string, ConnectorDefinition>([
  ['local', localConnector],
  ['zendesk', zendeskConnector],
  ['salesforce', salesforceConnector],
]);

/** The definition registered under `id`, or undefined for an unknown id. */
export function getConnector(id: string): ConnectorDefinition | undefined {
  return connectorRegistry.get(id);
}

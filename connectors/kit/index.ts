// The conformance kit's entry point: what a connector's contract.test.ts imports.
export { KIT_PDF, runConnectorContract } from './run-contract.js';
export { CONTRACT_TEST_TITLES, CONTRACT_TESTS, SKIP_LIST_TITLE, type ContractTestKey, type ContractTestTitle } from './titles.js';
export { KIT_AGENT_EMAIL, type ConnectorFake, type ContractOptions, type ContractSkip, type InjectedFailure } from './types.js';

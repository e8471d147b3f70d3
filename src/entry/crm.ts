// Wires the connector registry to the service: the settings' connector catalog (validation, secret
// fields), the CRM provider (one connector instance per configuration), and the storage the service
// lends connectors (the local connector keeps its records in the service's own store).
import { connectorRegistry } from '../../connectors/index.js';
import type { ConnectorDefinition, ConnectorStorage } from '../../connectors/contract.js';
import type { CrmProvider } from '../app/crm-sync.js';
import type { ConnectorCatalog, SettingsService } from '../app/settings-service.js';
import type { FieldError } from '../core/errors.js';
import type { Clock, Logger, Store } from '../core/ports.js';
import type { SessionStatus } from '../core/session/model.js';
import type { HostGuard } from '../adapters/net/host-guard.js';

function fieldErrors(def: ConnectorDefinition, config: Record<string, unknown>): FieldError[] {
  const result = def.configSchema.safeParse(config);
  if (result.success) return [];
  return result.error.issues.map((issue) => ({
    path: issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys].join('.') : issue.path.join('.') || '(config)',
    message: issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message,
  }));
}

export const registryCatalog: ConnectorCatalog = {
  ids: () => [...connectorRegistry.keys()],
  validateConfig: (id, config) => {
    const def = connectorRegistry.get(id);
    return def ? fieldErrors(def, config) : [{ path: '(config)', message: `unknown connector ${id}` }];
  },
  secretFields: (id) => connectorRegistry.get(id)?.secretFields ?? [],
};

/** Namespaced storage over the Store; `list` uses an ordered index of the namespace's keys. */
export function connectorStorage(store: Store, namespace: string): ConnectorStorage {
  const k = (key: string) => `connector:${namespace}:${key}`;
  const index = `connector-keys:${namespace}`;
  return {
    get: (key) => store.get(k(key)),
    async put(key, value) {
      await store.commit([
        { op: 'put', key: k(key), value },
        { op: 'index', index, member: key, score: 0 },
      ]);
    },
    async putIfAbsent(key, value) {
      try {
        await store.commit([
          { op: 'check', key: k(key), rev: null },
          { op: 'put', key: k(key), value },
          { op: 'index', index, member: key, score: 0 },
        ]);
        return true;
      } catch (err) {
        if ((err as Error).name === 'CommitConflictError') return false;
        throw err;
      }
    },
    async list(prefix, limit) {
      // Members share score 0, so the index is in key order: start just before the prefix.
      const before = prefix.length > 0 ? prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) - 1) + '\uffff' : '';
      const entries = await store.indexRange(index, { min: 0, max: 0, limit: Math.min(limit, 10_000), ...(prefix ? { after: { score: 0, member: before } } : {}) });
      const keys = entries.map((e) => e.member).filter((m) => m.startsWith(prefix));
      const values = await store.getMany(keys.map(k));
      return values.filter((v) => v !== undefined);
    },
  };
}

/** The connector in use, created once per (id, config) and kept: rate-limit and coalescing state live in the instance. */
export function createCrmProvider(deps: { settings: SettingsService; store: Store; hostGuard: HostGuard; logger: Logger; clock: Clock }): CrmProvider {
  type Entry = Awaited<ReturnType<CrmProvider['current']>>;
  const cache = new Map<string, { key: string; value: Entry }>();
  const instanceFor = async (wanted?: string): Promise<Entry> => {
    const { id, config } = await deps.settings.connectorConfig(wanted);
    const key = JSON.stringify([id, config]);
    const cached = cache.get(id);
    if (cached?.key === key) return cached.value;
    const def = connectorRegistry.get(id);
    if (!def) throw new Error(`connector ${id} is not registered`);
    const parsed = def.configSchema.parse(config);
    const log = deps.logger.child({ connector: id });
    const instance = def.create({
      config: parsed,
      timeoutMs: 15_000,
      checkHost: async (host, field) => {
        await deps.hostGuard.check(host, `connector.config.${field}`);
      },
      log: { info: (o, m) => log.info(o, m), warn: (o, m) => log.warn(o, m), error: (o, m) => log.error(o, m) },
      now: () => deps.clock.now(),
      storage: connectorStorage(deps.store, id),
    });
    const value: Entry = { id, instance, statusMap: def.statusMap as Record<SessionStatus, string> };
    cache.set(id, { key, value });
    return value;
  };
  return { current: () => instanceFor(), get: (id) => instanceFor(id) };
}

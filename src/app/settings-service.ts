// Reads and updates the global settings: defaults, deep-merged partial updates, validation, atomic save.
// The chosen connector's config is validated by that connector; its secrets are write-only and sealed.
import type { SecretBox, Store } from '../core/ports.js';
import { deepMerge } from '../core/merge.js';
import { validationError, type FieldError } from '../core/errors.js';
import { SettingsPatchSchema, SettingsSchema, type Settings } from '../config/settings.js';
import { parseOrThrow, zodFieldErrors } from '../config/validation.js';
import { SETTINGS_KEY } from '../core/keys.js';

/** What the settings need to know about connectors (the registry lives in connectors/). */
export interface ConnectorCatalog {
  ids(): string[];
  /** Field errors of a connector's config (paths relative to `connector.config`). */
  validateConfig(id: string, config: Record<string, unknown>): FieldError[];
  /** Config keys that are secrets (write-only, sealed at rest). */
  secretFields(id: string): string[];
}

export const localOnlyCatalog: ConnectorCatalog = {
  ids: () => ['local'],
  validateConfig: (_id, config) =>
    Object.keys(config).map((key) => ({ path: key, message: 'unknown field (the local connector takes no configuration)' })),
  secretFields: () => [],
};

/** `connector-config:<id>`: the (sealed) config of a connector the settings switched away from. */
export const archivedConnectorKey = (id: string): string => `connector-config:${id}`;

type Sealed = { sealed: string };
const isSealed = (v: unknown): v is Sealed => typeof v === 'object' && v !== null && typeof (v as Sealed).sealed === 'string';
/** Stands in for a kept secret while the connector validates the config (it never sees the sealed text). */
const KEPT = '__kept_secret__';

export class SettingsService {
  /** Called after every successful save (e.g. the mailbox workers follow the channel switch). */
  onChange?: (settings: Settings) => void;

  constructor(
    private readonly store: Store,
    private readonly connectors: ConnectorCatalog = localOnlyCatalog,
    private readonly secrets?: SecretBox,
  ) {}

  /** Current settings as stored (connector secrets sealed); a fresh install answers the defaults. */
  async get(): Promise<Settings> {
    const stored = await this.store.get<unknown>(SETTINGS_KEY);
    const result = SettingsSchema.safeParse(stored ?? {});
    if (result.success) return result.data;
    // Stored data that no longer validates (should never happen: every save is validated) falls back
    // to defaults rather than taking the service down.
    return SettingsSchema.parse({});
  }

  /** The settings as the API shows them: each connector secret replaced by `<field>Set` (SPEC §11b). */
  async view(): Promise<Settings> {
    return this.redact(await this.get());
  }

  /**
   * A connector's config with its secrets opened, for the connector instance only: the current one, or
   * (by id) one the settings switched away from — its queued writes still run against it.
   */
  async connectorConfig(id?: string): Promise<{ id: string; config: Record<string, unknown> }> {
    const current = (await this.get()).connector;
    let connector = current;
    if (id !== undefined && id !== current.id) {
      const archived = await this.store.get<Settings['connector']>(archivedConnectorKey(id));
      if (!archived) throw new Error(`connector ${id} is not configured (it was never the chosen connector)`);
      connector = archived;
    }
    const config: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(connector.config)) {
      if (isSealed(value)) {
        if (!this.secrets) throw new Error('a sealed connector secret cannot be opened without the secret box');
        config[key] = await this.secrets.open(value.sealed);
      } else config[key] = value;
    }
    return { id: connector.id, config };
  }

  /** Applies a partial update atomically; throws a 400 AppError naming every bad field. */
  async update(patch: unknown): Promise<Settings> {
    const parsedPatch = parseOrThrow(SettingsPatchSchema, patch);
    // Secrets given in this update are sealed up front (sealing does not depend on the stored state).
    const current = await this.get();
    // Switching connector keeps the old one's configuration, so writes already queued for it still run.
    if (parsedPatch.connector?.id !== undefined && parsedPatch.connector.id !== current.connector.id) {
      await this.store.put(archivedConnectorKey(current.connector.id), current.connector);
    }
    const targetId = parsedPatch.connector?.id ?? current.connector.id;
    const secretKeys = this.connectors.ids().includes(targetId) ? this.connectors.secretFields(targetId) : [];
    const sealedGiven: Record<string, Sealed | null> = {};
    for (const key of secretKeys) {
      const given = parsedPatch.connector?.config?.[key];
      if (typeof given === 'string') {
        if (!this.secrets) throw new Error('connector secrets need the secret box');
        sealedGiven[key] = { sealed: await this.secrets.seal(given) };
      } else if (given === null) sealedGiven[key] = null;
    }

    let saved: Settings | undefined;
    await this.store.update<unknown>(SETTINGS_KEY, (stored) => {
      const base = SettingsSchema.safeParse(stored ?? {});
      const before = base.success ? base.data : SettingsSchema.parse({});
      const merged = deepMerge(before, parsedPatch);
      const switching = parsedPatch.connector?.id !== undefined && before.connector.id !== parsedPatch.connector.id;
      // Switching connector starts from the patch's config alone, never another connector's values.
      const config: Record<string, unknown> = switching ? { ...(parsedPatch.connector?.config ?? {}) } : { ...before.connector.config, ...(parsedPatch.connector?.config ?? {}) };
      for (const key of secretKeys) {
        if (key in sealedGiven) {
          const v = sealedGiven[key];
          if (v) config[key] = v;
          else delete config[key];
        } else if (!switching && isSealed(before.connector.config[key])) config[key] = before.connector.config[key];
      }
      merged.connector = { id: targetId, config };
      const result = SettingsSchema.safeParse(merged);
      if (!result.success) throw validationError(zodFieldErrors(result.error));
      this.checkConnector(result.data, secretKeys);
      saved = result.data;
      return result.data;
    });
    if (!saved) throw new Error('settings update produced no value');
    this.onChange?.(saved);
    return this.redact(saved);
  }

  private checkConnector(settings: Settings, secretKeys: string[]): void {
    const { id, config } = settings.connector;
    if (!this.connectors.ids().includes(id)) {
      throw validationError([{ path: 'connector.id', message: `unknown connector; known: ${this.connectors.ids().join(', ')}` }]);
    }
    // The connector validates plaintext-shaped config: kept secrets stand in as a placeholder string.
    const plain: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(config)) plain[key] = secretKeys.includes(key) && isSealed(value) ? KEPT : value;
    const errors = this.connectors.validateConfig(id, plain);
    if (errors.length > 0) throw validationError(errors.map((e) => ({ path: `connector.config.${e.path}`, message: e.message })));
  }

  private redact(settings: Settings): Settings {
    const secretKeys = this.connectors.ids().includes(settings.connector.id) ? this.connectors.secretFields(settings.connector.id) : [];
    if (secretKeys.length === 0) return settings;
    const config: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(settings.connector.config)) if (!secretKeys.includes(key)) config[key] = value;
    for (const key of secretKeys) config[`${key}Set`] = isSealed(settings.connector.config[key]);
    return { ...settings, connector: { ...settings.connector, config } };
  }
}

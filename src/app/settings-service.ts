// Reads and updates the global settings: defaults, deep-merged partial updates, validation, atomic save.
import type { Store } from '../core/ports.js';
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
}

export const localOnlyCatalog: ConnectorCatalog = {
  ids: () => ['local'],
  validateConfig: (_id, config) =>
    Object.keys(config).map((key) => ({ path: key, message: 'unknown field (the local connector takes no configuration)' })),
};

export class SettingsService {
  /** Called after every successful save (e.g. the mailbox workers follow the channel switch). */
  onChange?: (settings: Settings) => void;

  constructor(
    private readonly store: Store,
    private readonly connectors: ConnectorCatalog = localOnlyCatalog,
  ) {}

  /** Current settings; a fresh install answers the defaults. */
  async get(): Promise<Settings> {
    const stored = await this.store.get<unknown>(SETTINGS_KEY);
    const result = SettingsSchema.safeParse(stored ?? {});
    if (result.success) return result.data;
    // Stored data that no longer validates (should never happen: every save is validated) falls back
    // field by field to defaults rather than taking the service down.
    return SettingsSchema.parse({});
  }

  /** Applies a partial update atomically; throws a 400 AppError naming every bad field. */
  async update(patch: unknown): Promise<Settings> {
    const parsedPatch = parseOrThrow(SettingsPatchSchema, patch);
    let saved: Settings | undefined;
    await this.store.update<unknown>(SETTINGS_KEY, (current) => {
      const base = SettingsSchema.safeParse(current ?? {});
      const merged = deepMerge(base.success ? base.data : SettingsSchema.parse({}), parsedPatch);
      // Switching connector starts from that connector's own config, never another's.
      if (parsedPatch.connector?.id !== undefined && parsedPatch.connector.config === undefined && base.success && base.data.connector.id !== parsedPatch.connector.id) {
        merged.connector = { id: parsedPatch.connector.id, config: {} };
      }
      const result = SettingsSchema.safeParse(merged);
      if (!result.success) throw validationError(zodFieldErrors(result.error));
      this.checkConnector(result.data);
      saved = result.data;
      return result.data;
    });
    if (!saved) throw new Error('settings update produced no value');
    this.onChange?.(saved);
    return saved;
  }

  private checkConnector(settings: Settings): void {
    const { id, config } = settings.connector;
    if (!this.connectors.ids().includes(id)) {
      throw validationError([{ path: 'connector.id', message: `unknown connector; known: ${this.connectors.ids().join(', ')}` }]);
    }
    const errors = this.connectors.validateConfig(id, config);
    if (errors.length > 0) throw validationError(errors.map((e) => ({ path: `connector.config.${e.path}`, message: e.message })));
  }
}

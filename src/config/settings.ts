// Global settings (SPEC §1, §4 timers, §5, §11a /api/settings): one zod schema with every default.
import { z } from 'zod';

export const FREQUENCIES = ['session_end', 'each_reply'] as const;

const timer = (days: number) =>
  z
    .object({
      enabled: z.boolean().default(true),
      days: z.number().int('must be a whole number of days').min(1, 'must be between 1 and 1000').max(1000, 'must be between 1 and 1000').default(days),
    })
    .strict();

const postPolicy = z
  .object({
    enabled: z.boolean().default(true),
    frequency: z.enum(FREQUENCIES).default('session_end'),
  })
  .strict();

/** Which CRM connector the service writes to, and its configuration (validated by the connector). */
export const ConnectorChoiceSchema = z
  .object({
    id: z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a connector id such as "local"').default('local'),
    config: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const settingsShape = {
  emailChannel: z.object({ enabled: z.boolean().default(false) }).strict().default({ enabled: false }),
  subject: z
    .object({ addSessionId: z.boolean().default(false), agentsCanEdit: z.boolean().default(false) })
    .strict()
    .default({ addSessionId: false, agentsCanEdit: false }),
  crm: z
    .object({
      inbound: z.boolean().default(true),
      outbound: z.boolean().default(true),
      comments: postPolicy.default({ enabled: true, frequency: 'session_end' }),
      pdf: postPolicy.default({ enabled: true, frequency: 'session_end' }),
      metadataFile: z.boolean().default(false),
    })
    .strict()
    .default({
      inbound: true,
      outbound: true,
      comments: { enabled: true, frequency: 'session_end' },
      pdf: { enabled: true, frequency: 'session_end' },
      metadataFile: false,
    }),
  timers: z
    .object({
      pausedToClosed: timer(60).default({ enabled: true, days: 60 }),
      resolvedToClosed: timer(30).default({ enabled: true, days: 30 }),
      activeToPaused: timer(30).default({ enabled: true, days: 30 }),
      closedToReopened: timer(30).default({ enabled: true, days: 30 }),
    })
    .strict()
    .default({
      pausedToClosed: { enabled: true, days: 60 },
      resolvedToClosed: { enabled: true, days: 30 },
      activeToPaused: { enabled: true, days: 30 },
      closedToReopened: { enabled: true, days: 30 },
    }),
  company: z.object({ name: z.string().max(200).default('') }).strict().default({ name: '' }),
  connector: ConnectorChoiceSchema.default({ id: 'local', config: {} }),
  routing: z
    .object({ defaultQueueId: z.string().min(1).max(64).nullable().default(null) })
    .strict()
    .default({ defaultQueueId: null }),
  threading: z
    .object({
      /** R-SES-2 (optional): thread by sender + normalized subject within this many minutes; 0 = off. */
      subjectWindowMinutes: z.number().int().min(0).max(10080).default(0),
    })
    .strict()
    .default({ subjectWindowMinutes: 0 }),
};

/** R-GLB-4: the two subject options cannot both be on. */
function refineSubject(value: { subject?: { addSessionId?: boolean; agentsCanEdit?: boolean } }, ctx: z.RefinementCtx): void {
  if (value.subject?.addSessionId === true && value.subject?.agentsCanEdit === true) {
    const message = 'subject.addSessionId and subject.agentsCanEdit cannot both be on';
    ctx.addIssue({ code: 'custom', path: ['subject', 'addSessionId'], message });
    ctx.addIssue({ code: 'custom', path: ['subject', 'agentsCanEdit'], message });
  }
}

export const SettingsSchema = z.object(settingsShape).strict().superRefine(refineSubject).meta({ id: 'Settings' });
export type Settings = z.infer<typeof SettingsSchema>;

/** The defaults of SPEC §1, §4, §5: what a fresh install answers. */
export function defaultSettings(): Settings {
  return SettingsSchema.parse({});
}

// PUT body: any subset of the settings (deep), unknown fields refused. No defaults: omitted = keep.
const timerPatch = z.object({ enabled: z.boolean(), days: timer(1).shape.days.unwrap() }).partial().strict();
const postPatch = z.object({ enabled: z.boolean(), frequency: z.enum(FREQUENCIES) }).partial().strict();

export const SettingsPatchSchema = z
  .object({
    emailChannel: z.object({ enabled: z.boolean() }).partial().strict(),
    subject: z.object({ addSessionId: z.boolean(), agentsCanEdit: z.boolean() }).partial().strict(),
    crm: z
      .object({
        inbound: z.boolean(),
        outbound: z.boolean(),
        comments: postPatch,
        pdf: postPatch,
        metadataFile: z.boolean(),
      })
      .partial()
      .strict(),
    timers: z
      .object({
        pausedToClosed: timerPatch,
        resolvedToClosed: timerPatch,
        activeToPaused: timerPatch,
        closedToReopened: timerPatch,
      })
      .partial()
      .strict(),
    company: z.object({ name: z.string().max(200) }).partial().strict(),
    connector: z
      .object({
        id: z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a connector id such as "local"'),
        config: z.record(z.string(), z.unknown()),
      })
      .partial()
      .strict(),
    routing: z.object({ defaultQueueId: z.string().min(1).max(64).nullable() }).partial().strict(),
    threading: z.object({ subjectWindowMinutes: z.number().int().min(0).max(10080) }).partial().strict(),
  })
  .partial()
  .strict()
  .meta({ id: 'SettingsPatch' });
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

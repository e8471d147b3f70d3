// Environment variables of the service, parsed once at start (entry/ passes process.env).
import { z } from 'zod';
import { parseOrThrow } from './validation.js';

const boolish = z.enum(['true', 'false', '1', '0', '']).optional();

export const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  ADMIN_TOKEN: z.string().optional(),
  SECRET_KEY: z.string().optional(),
  ALLOW_PRIVATE_HOSTS: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  UPLOAD_MAX_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(25 * 1024 * 1024),
  PUBLIC_URL: z.url().optional(),
  /** Messages larger than this are not downloaded: quarantined as too_large, left in the mailbox. */
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(64 * 1024).max(200 * 1024 * 1024).default(25 * 1024 * 1024),
  METRICS_DEFAULTS: boolish,
});

export type Env = z.infer<typeof EnvSchema>;

export function parseEnv(env: Record<string, string | undefined>): Env {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined) picked[key] = value;
  }
  return parseOrThrow(EnvSchema, picked);
}

/** Admin tokens from ADMIN_TOKEN (comma-separated for rotation). */
export function adminTokensFrom(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

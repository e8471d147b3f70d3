// Structured logs (pino) with secrets and mail bodies redacted; LOG_LEVEL sets the level.
import { pino, type LoggerOptions } from 'pino';
import type { Logger } from '../../core/ports.js';

/** Paths never logged in clear, at any depth we use. */
export const REDACT_PATHS = [
  'password',
  'pass',
  'secret',
  'token',
  'apiToken',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'secretAccessKey',
  'serviceAccountKey',
  'authorization',
  'headers.authorization',
  'html',
  'text',
  'body',
  'raw',
  '*.password',
  '*.pass',
  '*.secret',
  '*.token',
  '*.apiToken',
  '*.accessToken',
  '*.clientSecret',
  '*.secretAccessKey',
  '*.serviceAccountKey',
  '*.authorization',
  '*.html',
  '*.text',
  '*.body',
  '*.raw',
];

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: 'email-channel' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return (opts.destination ? pino(options, opts.destination) : pino(options)) as unknown as Logger;
}

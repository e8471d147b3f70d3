// Retry policy for durable jobs: exponential backoff with jitter, and classification of handler errors.
import { PermanentJobError, RetryLaterError } from '../ports.js';

export type JitterMode = 'full' | 'partial' | 'none';

export interface BackoffOptions {
  /** Delay before the first retry, before jitter (default 1 s). */
  baseMs?: number;
  /** Upper bound of any delay (default 15 min). */
  maxMs?: number;
  /**
   * `full`: uniform in [0, d]; `partial` (default): uniform in [d/2, d], so retries never bunch at 0;
   * `none`: exactly d. d = min(maxMs, baseMs * 2^(attempt-1)).
   */
  jitter?: JitterMode;
  /** Random source in [0, 1); injected by tests (default Math.random). */
  random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 1000;
export const DEFAULT_BACKOFF_MAX_MS = 15 * 60_000;
/** A handler asking to be called again later is never delayed longer than this (a day). */
export const MAX_RETRY_LATER_MS = 24 * 60 * 60_000;

/**
 * Delay in ms before retry number `attempt` (1 = the retry after the first failure).
 * Always an integer in [0, maxMs].
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const baseMs = nonNegative(opts.baseMs, DEFAULT_BACKOFF_BASE_MS);
  const maxMs = nonNegative(opts.maxMs, DEFAULT_BACKOFF_MAX_MS);
  const random = opts.random ?? Math.random;
  // Exponent capped so 2^n stays finite and exact; the result is capped by maxMs anyway.
  const n = Math.min(Math.max(Math.floor(Number.isFinite(attempt) ? attempt : 1), 1) - 1, 52);
  const ceiling = Math.min(maxMs, baseMs * 2 ** n);
  const r = clamp01(random());
  switch (opts.jitter ?? 'partial') {
    case 'none':
      return Math.round(ceiling);
    case 'full':
      return Math.floor(r * ceiling);
    case 'partial':
      return Math.floor(ceiling / 2 + (r * ceiling) / 2);
  }
}

export type HandlerErrorClass =
  | { kind: 'retry_later'; delayMs: number }
  | { kind: 'permanent' }
  | { kind: 'retry' };

/**
 * What to do with a job whose handler threw `err`.
 * Recognises the port's error classes, and errors carrying their name (a class loaded twice,
 * or an error rebuilt from a serialized form); a RetryLater delay is clamped to [0, MAX_RETRY_LATER_MS].
 */
export function classifyHandlerError(err: unknown): HandlerErrorClass {
  if (err instanceof PermanentJobError || errorName(err) === 'PermanentJobError') return { kind: 'permanent' };
  if (err instanceof RetryLaterError) return { kind: 'retry_later', delayMs: clampDelay(err.delayMs) };
  if (errorName(err) === 'RetryLaterError') {
    const delayMs = (err as { delayMs?: unknown }).delayMs;
    if (typeof delayMs === 'number') return { kind: 'retry_later', delayMs: clampDelay(delayMs) };
  }
  return { kind: 'retry' };
}

/** A short, loggable message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

function errorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(Math.round(ms), MAX_RETRY_LATER_MS);
}

function nonNegative(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function clamp01(x: number): number {
  if (!Number.isFinite(x) || x < 0) return 0;
  return x >= 1 ? 0.999999999 : x;
}

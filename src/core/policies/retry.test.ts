// Unit tests of the job retry policy: backoff growth, caps, jitter bounds and error classification.
import { describe, expect, it } from 'vitest';
import { PermanentJobError, RetryLaterError } from '../ports.js';
import {
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  MAX_RETRY_LATER_MS,
  backoffDelay,
  classifyHandlerError,
  errorMessage,
} from './retry.js';

describe('backoffDelay', () => {
  it('doubles from the base without jitter and stops at the cap', () => {
    const d = (n: number) => backoffDelay(n, { baseMs: 100, maxMs: 1000, jitter: 'none' });
    expect([1, 2, 3, 4, 5, 6].map(d)).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('uses 1 s base and 15 min cap by default', () => {
    expect(backoffDelay(1, { jitter: 'none' })).toBe(DEFAULT_BACKOFF_BASE_MS);
    expect(backoffDelay(40, { jitter: 'none' })).toBe(DEFAULT_BACKOFF_MAX_MS);
  });

  it('full jitter spans [0, d)', () => {
    expect(backoffDelay(3, { baseMs: 100, jitter: 'full', random: () => 0 })).toBe(0);
    expect(backoffDelay(3, { baseMs: 100, jitter: 'full', random: () => 0.5 })).toBe(200);
    expect(backoffDelay(3, { baseMs: 100, jitter: 'full', random: () => 0.999 })).toBe(399);
  });

  it('partial jitter (the default) spans [d/2, d)', () => {
    expect(backoffDelay(3, { baseMs: 100, random: () => 0 })).toBe(200);
    expect(backoffDelay(3, { baseMs: 100, random: () => 0.5 })).toBe(300);
    expect(backoffDelay(3, { baseMs: 100, random: () => 0.999 })).toBe(399);
  });

  it('stays an integer within [0, maxMs] for absurd inputs', () => {
    for (const attempt of [0, -3, 1.7, 1e9, Number.POSITIVE_INFINITY, Number.NaN]) {
      for (const jitter of ['full', 'partial', 'none'] as const) {
        const ms = backoffDelay(attempt, { baseMs: 50, maxMs: 5000, jitter, random: () => 2 });
        expect(Number.isInteger(ms)).toBe(true);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(5000);
      }
    }
    expect(backoffDelay(1e9, { baseMs: 0, jitter: 'none' })).toBe(0);
    expect(backoffDelay(2, { baseMs: -5, jitter: 'none' })).toBe(2 * DEFAULT_BACKOFF_BASE_MS);
  });

  it('is never below the first delay floor with partial jitter, whatever the random source', () => {
    for (let i = 0; i < 100; i++) expect(backoffDelay(1, { baseMs: 40 })).toBeGreaterThanOrEqual(20);
  });
});

describe('classifyHandlerError', () => {
  it('retries later without failure on RetryLaterError', () => {
    expect(classifyHandlerError(new RetryLaterError('429', 1500))).toEqual({ kind: 'retry_later', delayMs: 1500 });
  });

  it('clamps the requested delay', () => {
    expect(classifyHandlerError(new RetryLaterError('x', -10))).toEqual({ kind: 'retry_later', delayMs: 0 });
    expect(classifyHandlerError(new RetryLaterError('x', Number.NaN))).toEqual({ kind: 'retry_later', delayMs: 0 });
    expect(classifyHandlerError(new RetryLaterError('x', 1e12))).toEqual({ kind: 'retry_later', delayMs: MAX_RETRY_LATER_MS });
    expect(classifyHandlerError(new RetryLaterError('x', Number.POSITIVE_INFINITY))).toEqual({
      kind: 'retry_later',
      delayMs: MAX_RETRY_LATER_MS,
    });
  });

  it('fails at once on PermanentJobError', () => {
    expect(classifyHandlerError(new PermanentJobError('400 bad request'))).toEqual({ kind: 'permanent' });
  });

  it('recognises the classes by name (class loaded twice, rebuilt errors)', () => {
    const later = Object.assign(new Error('slow down'), { name: 'RetryLaterError', delayMs: 200 });
    const permanent = Object.assign(new Error('no'), { name: 'PermanentJobError' });
    expect(classifyHandlerError(later)).toEqual({ kind: 'retry_later', delayMs: 200 });
    expect(classifyHandlerError(permanent)).toEqual({ kind: 'permanent' });
    expect(classifyHandlerError(Object.assign(new Error('?'), { name: 'RetryLaterError' }))).toEqual({ kind: 'retry' });
  });

  it('retries with backoff on anything else', () => {
    expect(classifyHandlerError(new Error('ECONNRESET'))).toEqual({ kind: 'retry' });
    expect(classifyHandlerError('a string')).toEqual({ kind: 'retry' });
    expect(classifyHandlerError(undefined)).toEqual({ kind: 'retry' });
    expect(classifyHandlerError(null)).toEqual({ kind: 'retry' });
  });
});

describe('errorMessage', () => {
  it('renders any thrown value', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage(new TypeError(''))).toBe('TypeError');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage({ code: 1 })).toBe('{"code":1}');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});

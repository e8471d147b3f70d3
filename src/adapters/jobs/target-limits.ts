// Per-target limits shared by both job runners: exact target wins over the longest matching `prefix*` pattern.
import type { TargetLimits } from '../../core/ports.js';

export const DEFAULT_TARGET_CONCURRENCY = 4;

export class TargetLimitsTable {
  private readonly exact = new Map<string, TargetLimits>();
  /** Prefix patterns, longest prefix first. */
  private patterns: Array<{ prefix: string; limits: TargetLimits }> = [];

  constructor(private readonly defaults: TargetLimits = { concurrency: DEFAULT_TARGET_CONCURRENCY }) {}

  set(target: string, limits: TargetLimits): void {
    const normalized = normalizeLimits(limits);
    if (target.endsWith('*')) {
      const prefix = target.slice(0, -1);
      this.patterns = [...this.patterns.filter((p) => p.prefix !== prefix), { prefix, limits: normalized }].sort(
        (a, b) => b.prefix.length - a.prefix.length,
      );
    } else {
      this.exact.set(target, normalized);
    }
  }

  resolve(target: string): TargetLimits {
    const exact = this.exact.get(target);
    if (exact) return exact;
    for (const p of this.patterns) if (target.startsWith(p.prefix)) return p.limits;
    return this.defaults;
  }

  /** True when `key` (a target or a `prefix*` pattern) can change the limits of `target`. */
  static affects(key: string, target: string): boolean {
    return key.endsWith('*') ? target.startsWith(key.slice(0, -1)) : key === target;
  }
}

function normalizeLimits(limits: TargetLimits): TargetLimits {
  const concurrency = Math.max(1, Math.floor(Number.isFinite(limits.concurrency) ? limits.concurrency : 1));
  if (!limits.rate) return { concurrency };
  const max = Math.max(1, Math.floor(limits.rate.max));
  const windowMs = Math.max(1, Math.floor(limits.rate.windowMs));
  if (!Number.isFinite(max) || !Number.isFinite(windowMs)) return { concurrency };
  return { concurrency, rate: { max, windowMs } };
}

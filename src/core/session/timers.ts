// Status timers (R-SES-4, R-SES-5). Each timer is an index of sessions by the time its clock started
// (status change or last activity); a sweep reads `score <= now - threshold`, so its cost grows with
// what is due, and a changed threshold applies to existing sessions without re-indexing anything.
import type { SessionStatus, Session } from './model.js';

export const DAY_MS = 24 * 3600_000;

export type TimerName = 'pausedToClosed' | 'resolvedToClosed' | 'activeToPaused';

export interface TimerSetting {
  enabled: boolean;
  days: number;
}

export interface TimerSettings {
  pausedToClosed: TimerSetting;
  resolvedToClosed: TimerSetting;
  activeToPaused: TimerSetting;
  closedToReopened: TimerSetting;
}

/** Which status each timer watches, the clock it reads, and where it moves the session. */
export const TIMERS: Record<TimerName, { from: SessionStatus; to: SessionStatus; clock: 'statusChangedAt' | 'lastActivityAt' }> = {
  pausedToClosed: { from: 'paused', to: 'closed', clock: 'statusChangedAt' },
  resolvedToClosed: { from: 'resolved', to: 'closed', clock: 'statusChangedAt' },
  activeToPaused: { from: 'active', to: 'paused', clock: 'lastActivityAt' },
};

export const TIMER_NAMES = Object.keys(TIMERS) as TimerName[];

/** The index a session belongs to for a timer, and its score; null when the timer does not watch it. */
export function timerEntry(session: Pick<Session, 'status' | 'statusChangedAt' | 'lastActivityAt'>, timer: TimerName): number | null {
  const def = TIMERS[timer];
  return session.status === def.from ? session[def.clock] : null;
}

/** Upper bound of scores that are due now for a timer (`score <= cutoff`). */
export function timerCutoff(now: number, setting: TimerSetting): number {
  return now - setting.days * DAY_MS;
}

/** True when the timer fires for this session now (re-checked on the fresh session before acting). */
export function isTimerDue(session: Pick<Session, 'status' | 'statusChangedAt' | 'lastActivityAt'>, timer: TimerName, setting: TimerSetting, now: number): boolean {
  if (!setting.enabled) return false;
  const score = timerEntry(session, timer);
  return score !== null && score <= timerCutoff(now, setting);
}

/** R-SES-4 Closed→Reopened: new activity on a closed session reopens it only within the window. */
export function canReopen(session: Pick<Session, 'status' | 'statusChangedAt'>, setting: TimerSetting, now: number): boolean {
  return session.status === 'closed' && setting.enabled && now - session.statusChangedAt <= setting.days * DAY_MS;
}

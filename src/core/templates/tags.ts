// Template tags of auto-replies and signatures (R-ARP-5, R-SIG-2): `@{name}` placeholders, checked at
// save time (an unknown tag is a validation error) and filled at send time with HTML-escaped values.
import { localParts, nextWorkingDate, type Hours } from '../hours/hours.js';

export const AUTO_REPLY_TAGS = ['consumer', 'agent', 'date', 'time', 'queue', 'company', 'next_working_date', 'ticket_id'] as const;
export const SIGNATURE_TAGS = ['agent_name', 'agent', 'company', 'alias'] as const;

const TAG = /@\{([^{}\s]{0,64})\}/g;

/** Every tag used in a template, and those not in `allowed` (with their position for the error message). */
export function scanTags(template: string, allowed: readonly string[]): { used: string[]; unknown: { tag: string; index: number }[] } {
  const used: string[] = [];
  const unknown: { tag: string; index: number }[] = [];
  for (const m of template.matchAll(TAG)) {
    const tag = m[1] ?? '';
    if (allowed.includes(tag)) {
      if (!used.includes(tag)) used.push(tag);
    } else unknown.push({ tag, index: m.index ?? 0 });
  }
  // A malformed opener such as "@{consumer" is also refused: it would reach the customer verbatim.
  const opener = /@\{(?![^{}\s]{0,64}\})/g;
  for (const m of template.matchAll(opener)) unknown.push({ tag: template.slice((m.index ?? 0) + 2, (m.index ?? 0) + 20), index: m.index ?? 0 });
  return { used, unknown };
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Fills the tags. Values are escaped for HTML when `html` is true. A tag without a value becomes an
 * empty string — never a raw `@{...}` in a sent mail.
 */
export function renderTags(template: string, values: Record<string, string | null | undefined>, opts: { html: boolean }): string {
  return template.replace(TAG, (_m, tag: string) => {
    const v = values[tag] ?? '';
    return opts.html ? escapeHtml(v) : v;
  });
}

export interface AutoReplyContext {
  consumerFirstName: string | null;
  agentFirstName: string | null;
  queueName: string;
  companyName: string;
  ticketId: string | null;
  now: number;
  /** The queue's hours (time zone and working days); null = UTC, every day a working day. */
  hours: Hours | null;
  /** BCP 47 language of the queue (dates are written the way its readers expect), e.g. `fr`. */
  language: string;
}

/** Values of the auto-reply tags, with dates and times in the queue's time zone (R-ARP-5). */
export function autoReplyValues(ctx: AutoReplyContext): Record<(typeof AUTO_REPLY_TAGS)[number], string> {
  const timeZone = ctx.hours?.timeZone ?? 'UTC';
  let locale = ctx.language;
  try {
    new Intl.DateTimeFormat(locale);
  } catch {
    locale = 'en';
  }
  const date = new Intl.DateTimeFormat(locale, { timeZone, year: 'numeric', month: 'long', day: 'numeric' }).format(ctx.now);
  const time = new Intl.DateTimeFormat(locale, { timeZone, hour: '2-digit', minute: '2-digit' }).format(ctx.now);
  let next = '';
  const nextDay = ctx.hours ? nextWorkingDate(ctx.hours, ctx.now) : null;
  const day = nextDay ?? (ctx.hours ? null : localParts(ctx.now + 86_400_000, 'UTC').date);
  if (day) {
    const [y, m, d] = day.split('-').map(Number) as [number, number, number];
    next = new Intl.DateTimeFormat(locale, { timeZone: 'UTC', weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' }).format(Date.UTC(y, m - 1, d, 12));
  }
  return {
    consumer: ctx.consumerFirstName ?? '',
    agent: ctx.agentFirstName ?? '',
    date,
    time,
    queue: ctx.queueName,
    company: ctx.companyName,
    next_working_date: next,
    ticket_id: ctx.ticketId ?? '',
  };
}

/** A customer's first name from a display name ("Ann Customer" → "Ann", "Doe, John" → "John"). */
export function firstName(displayName: string | undefined | null): string | null {
  if (!displayName) return null;
  const name = displayName.replace(/["']/g, '').trim();
  if (!name || name.includes('@')) return null;
  if (name.includes(',')) return name.split(',')[1]?.trim().split(/\s+/)[0] ?? null;
  return name.split(/\s+/)[0] ?? null;
}

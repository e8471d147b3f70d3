// Queue hours of operation (SPEC §11b): validation, wall-clock time in the queue's IANA zone via Intl, open / next opening / next working day.

/*
 * Model. A queue is open at instant t when the wall clock in `timeZone` at t reads a local date that is
 * not a holiday and a local time inside one of that weekday's ranges [start, end). Everything is
 * decided on the wall clock, so across DST:
 * - spring forward (e.g. Europe/Paris 2026-03-29, 02:00 → 03:00): local times in the gap never happen;
 *   a range starting in the gap opens at the transition (03:00 local);
 * - fall back (e.g. Europe/Paris 2026-10-25, 03:00 → 02:00): local times in the overlap happen twice and
 *   a range covering them is open both times.
 * Offsets come from the ICU time-zone database shipped with the runtime (global Intl); nothing here
 * hard-codes an offset. Local dates are handled as day numbers (days since 1970-01-01) with exact
 * proleptic-Gregorian arithmetic, so only instant ↔ wall-clock conversions touch Intl.
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A local time range `["HH:MM", "HH:MM"]`; the end may be `"24:00"` and is exclusive. */
export type TimeRange = [start: string, end: string];

export interface Hours {
  /** IANA time zone name, e.g. `Europe/Paris`. */
  timeZone: string;
  /** Ranges per weekday in local time, sorted by start, non-overlapping; `[]` = closed all day. */
  weekly: Record<Weekday, TimeRange[]>;
  /** Local dates (`YYYY-MM-DD`, in `timeZone`) closed all day; sorted, unique. */
  holidays: string[];
}

export interface HoursError {
  /** Dotted path of the offending value, e.g. `hours.weekly.mon.0.1`. */
  path: string;
  message: string;
}

export type HoursValidation = { ok: true; hours: Hours } | { ok: false; errors: HoursError[] };

export interface LocalParts {
  /** Local date `YYYY-MM-DD`. */
  date: string;
  weekday: Weekday;
  /** Minutes since local midnight, 0–1439 (seconds dropped). */
  minutes: number;
}

export const MAX_RANGES_PER_DAY = 10;
export const MAX_HOLIDAYS = 366;
/** nextOpening / nextWorkingDate look this many local days ahead before answering null. */
export const SEARCH_DAYS = 400;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const DAY_MINUTES = 1440;
const TIME_RE = /^(\d{2}):(\d{2})$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

// ---------------------------------------------------------------------------------------------
// Validation

/**
 * Checks an hours-of-operation value and returns it normalized (all seven days present, ranges sorted
 * by start, holidays sorted and de-duplicated). Missing days are closed; `holidays` may be omitted.
 * `path` prefixes every error path (default `hours`).
 */
export function validateHours(input: unknown, path = 'hours'): HoursValidation {
  const errors: HoursError[] = [];
  const err = (p: string, message: string) => errors.push({ path: p, message });

  if (!isPlainObject(input)) {
    return { ok: false, errors: [{ path, message: 'must be an object' }] };
  }
  for (const key of Object.keys(input)) {
    if (key !== 'timeZone' && key !== 'weekly' && key !== 'holidays') err(`${path}.${key}`, 'unknown field');
  }

  // timeZone
  let timeZone = '';
  const tz = input['timeZone'];
  const tzPath = `${path}.timeZone`;
  if (tz === undefined) err(tzPath, 'required');
  else if (typeof tz !== 'string') err(tzPath, 'must be a string');
  else if (!isTimeZone(tz)) err(tzPath, `unknown time zone "${tz}"; use an IANA name such as Europe/Paris`);
  else timeZone = tz;

  // weekly
  const weekly = emptyWeek();
  const wPath = `${path}.weekly`;
  const w = input['weekly'];
  if (w === undefined) err(wPath, 'required');
  else if (!isPlainObject(w)) err(wPath, 'must be an object with keys mon…sun');
  else {
    for (const key of Object.keys(w)) {
      if (!(WEEKDAYS as readonly string[]).includes(key)) err(`${wPath}.${key}`, 'unknown day; use mon, tue, wed, thu, fri, sat, sun');
    }
    for (const day of WEEKDAYS) {
      const v = w[day];
      if (v === undefined) continue;
      const ranges = validateDay(v, `${wPath}.${day}`, err);
      if (ranges) weekly[day] = ranges;
    }
  }

  // holidays
  const holidays: string[] = [];
  const hPath = `${path}.holidays`;
  const h = input['holidays'];
  if (h !== undefined) {
    if (!Array.isArray(h)) err(hPath, 'must be an array of dates YYYY-MM-DD');
    else if (h.length > MAX_HOLIDAYS) err(hPath, `at most ${MAX_HOLIDAYS} holidays`);
    else {
      h.forEach((d: unknown, i) => {
        if (typeof d !== 'string' || parseDate(d) === null) err(`${hPath}.${i}`, 'must be a valid date YYYY-MM-DD');
        else holidays.push(d);
      });
    }
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    hours: { timeZone, weekly, holidays: [...new Set(holidays)].sort() },
  };
}

function validateDay(v: unknown, dayPath: string, err: (p: string, m: string) => void): TimeRange[] | null {
  if (!Array.isArray(v)) {
    err(dayPath, 'must be an array of ["HH:MM","HH:MM"] ranges');
    return null;
  }
  if (v.length > MAX_RANGES_PER_DAY) {
    err(dayPath, `at most ${MAX_RANGES_PER_DAY} ranges per day`);
    return null;
  }
  const good: { index: number; start: number; end: number; range: TimeRange }[] = [];
  let failed = false;
  v.forEach((r: unknown, i) => {
    const rPath = `${dayPath}.${i}`;
    if (!Array.isArray(r) || r.length !== 2) {
      err(rPath, 'must be a pair ["HH:MM","HH:MM"]');
      failed = true;
      return;
    }
    const [s, e] = r as unknown[];
    const start = typeof s === 'string' ? parseTime(s) : null;
    const end = typeof e === 'string' ? parseTime(e) : null;
    if (start === null || start === DAY_MINUTES) err(`${rPath}.0`, 'must be a time HH:MM from 00:00 to 23:59');
    if (end === null) err(`${rPath}.1`, 'must be a time HH:MM from 00:01 to 24:00');
    if (start === null || start === DAY_MINUTES || end === null) {
      failed = true;
      return;
    }
    if (end <= start) {
      err(`${rPath}.1`, 'must be after the start (write overnight hours as two ranges on two days)');
      failed = true;
      return;
    }
    good.push({ index: i, start, end, range: [s as string, e as string] });
  });
  good.sort((a, b) => a.start - b.start || a.end - b.end);
  for (let k = 1; k < good.length; k++) {
    const prev = good[k - 1]!;
    const cur = good[k]!;
    if (cur.start < prev.end) {
      const [first, second] = prev.index < cur.index ? [prev, cur] : [cur, prev];
      err(`${dayPath}.${second.index}`, `overlaps range ${first.index}`);
      failed = true;
    }
  }
  return failed ? null : good.map((g) => g.range);
}

function isTimeZone(tz: string): boolean {
  // Offsets such as "+01:00" are accepted by some runtimes but are not IANA names (no DST rules).
  if (tz.length === 0 || tz.length > 64 || /^[+-]/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: tz });
    return true;
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function emptyWeek(): Record<Weekday, TimeRange[]> {
  return { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };
}

/** "HH:MM" → minutes 0–1440 ("24:00" → 1440), or null. */
function parseTime(s: string): number | null {
  const m = TIME_RE.exec(s);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h === 24 && min === 0) return DAY_MINUTES;
  if (h > 23 || min > 59) return null;
  return h * 60 + min;
}

/** "YYYY-MM-DD" → day number (days since 1970-01-01), or null when not a real calendar date. */
function parseDate(s: string): number | null {
  const m = DATE_RE.exec(s);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return null;
  return daysFromCivil(y, mo, d);
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian; H. Hinnant's days_from_civil / civil_from_days)

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

function daysFromCivil(year: number, m: number, d: number): number {
  const y = m <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): { y: number; m: number; d: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

function dateOfDay(days: number): string {
  const { y, m, d } = civilFromDays(days);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function weekdayOfDay(days: number): Weekday {
  // Day 0 (1970-01-01) was a Thursday, index 3 in WEEKDAYS.
  return WEEKDAYS[(((days + 3) % 7) + 7) % 7]!;
}

// ---------------------------------------------------------------------------------------------
// Instant ↔ wall clock (Intl)

const MAX_CACHED_ZONES = 1000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= MAX_CACHED_ZONES) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

interface Wall {
  days: number;
  /** Milliseconds since local midnight. */
  msOfDay: number;
}

function wallOf(epochMs: number, timeZone: string): Wall {
  if (!Number.isFinite(epochMs)) throw new RangeError(`not a valid instant: ${epochMs}`);
  let y = 1970;
  let mo = 1;
  let d = 1;
  let h = 0;
  let mi = 0;
  let s = 0;
  for (const p of formatterFor(timeZone).formatToParts(epochMs)) {
    switch (p.type) {
      case 'year': y = Number(p.value); break;
      case 'month': mo = Number(p.value); break;
      case 'day': d = Number(p.value); break;
      case 'hour': h = Number(p.value) % 24; break; // some engines say "24" for midnight despite h23
      case 'minute': mi = Number(p.value); break;
      case 'second': s = Number(p.value); break;
      default: break;
    }
  }
  const ms = ((epochMs % 1000) + 1000) % 1000;
  return { days: daysFromCivil(y, mo, d), msOfDay: ((h * 60 + mi) * 60 + s) * 1000 + ms };
}

/** The local wall clock at an instant, as "milliseconds since 1970 if the wall clock were UTC". */
function wallMs(epochMs: number, timeZone: string): number {
  const w = wallOf(epochMs, timeZone);
  return w.days * DAY_MS + w.msOfDay;
}

function offsetAt(epochMs: number, timeZone: string): number {
  return wallMs(epochMs, timeZone) - epochMs;
}

/** Every instant whose wall clock reads `local` (0 in a DST gap, 2 in an overlap), ascending. */
function instantsOf(local: number, timeZone: string): number[] {
  const offsets = new Set<number>([offsetAt(local - DAY_MS, timeZone), offsetAt(local + DAY_MS, timeZone)]);
  for (const o of [...offsets]) offsets.add(offsetAt(local - o, timeZone)); // correct each guess once more
  const found = new Set<number>();
  for (const o of offsets) {
    const t = local - o;
    if (wallMs(t, timeZone) === local) found.add(t);
  }
  return [...found].sort((a, b) => a - b);
}

/** In a DST gap: the first instant whose wall clock is past `local` (the transition instant). */
function gapForward(local: number, timeZone: string): number {
  const offsets = [offsetAt(local - DAY_MS, timeZone), offsetAt(local + DAY_MS, timeZone)];
  let lo = Math.floor((local - Math.max(...offsets)) / 1000);
  let hi = Math.ceil((local - Math.min(...offsets)) / 1000);
  if (!(wallMs(lo * 1000, timeZone) < local && wallMs(hi * 1000, timeZone) > local)) {
    return local - offsets[0]!; // not a simple gap (never seen in tzdb): read the time with the earlier offset
  }
  // Transitions fall on whole seconds; binary search the first second past the gap.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallMs(mid * 1000, timeZone) > local) hi = mid;
    else lo = mid;
  }
  return hi * 1000;
}

/** The instant at which the wall clock jumps backwards during local day `days`, if it does. */
function backwardJump(days: number, timeZone: string): number | null {
  const a = (days * DAY_MS) - offsetAt(days * DAY_MS, timeZone);
  const b = ((days + 1) * DAY_MS) - offsetAt((days + 1) * DAY_MS, timeZone);
  const oa = offsetAt(a, timeZone);
  if (!(offsetAt(b, timeZone) < oa)) return null;
  let lo = Math.floor(a / 1000);
  let hi = Math.ceil(b / 1000);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(mid * 1000, timeZone) === oa) lo = mid;
    else hi = mid;
  }
  return hi * 1000;
}

/** Local date, weekday and minute of the day at an instant in `timeZone`. */
export function localParts(epochMs: number, timeZone: string): LocalParts {
  const w = wallOf(epochMs, timeZone);
  return { date: dateOfDay(w.days), weekday: weekdayOfDay(w.days), minutes: Math.floor(w.msOfDay / MINUTE_MS) };
}

/** The local date at an instant in `timeZone` (the day daily assignment limits count in). */
export function localDay(epochMs: number, timeZone: string): string {
  return dateOfDay(wallOf(epochMs, timeZone).days);
}

/**
 * The instant at which the wall clock in `timeZone` reads `date` + `minutes` (minutes may exceed 1439:
 * 1440 is the next midnight). A time skipped by a DST gap maps to the first valid instant after it
 * (the transition); a time that happens twice maps to the earlier instant. Throws RangeError on a bad
 * date or zone.
 */
export function zonedToEpoch(date: string, minutes: number, timeZone: string): number {
  const days = parseDate(date);
  if (days === null) throw new RangeError(`not a valid date YYYY-MM-DD: ${date}`);
  if (!Number.isFinite(minutes)) throw new RangeError(`not a valid minute count: ${minutes}`);
  return instantOfLocal(days * DAY_MS + minutes * MINUTE_MS, timeZone);
}

function instantOfLocal(local: number, timeZone: string): number {
  const all = instantsOf(local, timeZone);
  return all[0] ?? gapForward(local, timeZone);
}

// ---------------------------------------------------------------------------------------------
// Open / next opening / next working day

interface Compiled {
  timeZone: string;
  weekly: Record<Weekday, [number, number][]>;
  holidays: Set<string>;
  anyRange: boolean;
}

function compile(hours: Hours): Compiled {
  const weekly = {} as Record<Weekday, [number, number][]>;
  let anyRange = false;
  for (const day of WEEKDAYS) {
    const ranges: [number, number][] = [];
    for (const [s, e] of hours.weekly[day] ?? []) {
      const start = parseTime(s);
      const end = parseTime(e);
      if (start !== null && end !== null && end > start) ranges.push([start, end]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    weekly[day] = ranges;
    if (ranges.length > 0) anyRange = true;
  }
  return { timeZone: hours.timeZone, weekly, holidays: new Set(hours.holidays), anyRange };
}

function openAt(c: Compiled, epochMs: number): boolean {
  const p = localParts(epochMs, c.timeZone);
  if (c.holidays.has(p.date)) return false;
  return c.weekly[p.weekday].some(([s, e]) => p.minutes >= s && p.minutes < e);
}

/** Whether the queue is open at `epochMs` (a holiday closes the whole local day). */
export function isOpen(hours: Hours, epochMs: number): boolean {
  return openAt(compile(hours), epochMs);
}

/**
 * `epochMs` when open; otherwise the instant the queue next opens, looking {@link SEARCH_DAYS} local
 * days ahead; null when it never opens in that window.
 */
export function nextOpening(hours: Hours, epochMs: number): number | null {
  const c = compile(hours);
  if (openAt(c, epochMs)) return epochMs;
  if (!c.anyRange) return null;
  const tz = c.timeZone;
  const today = wallOf(epochMs, tz).days;
  let best: number | null = null;
  let bestDay = 0;
  // Start a day early and look one day past the first hit: a wall clock that jumps back across
  // midnight can make a later local day's opening come first.
  for (let day = today - 1; day <= today + SEARCH_DAYS; day++) {
    if (best !== null && day > bestDay + 1) break;
    const ranges = c.weekly[weekdayOfDay(day)];
    if (ranges.length === 0 || c.holidays.has(dateOfDay(day))) continue;
    const candidates: number[] = [];
    for (const [start] of ranges) {
      const local = day * DAY_MS + start * MINUTE_MS;
      const at = instantsOf(local, tz);
      if (at.length === 0) candidates.push(gapForward(local, tz));
      else candidates.push(...at); // both occurrences in a fall-back overlap
    }
    const jump = backwardJump(day, tz); // the wall clock may fall back into a range
    if (jump !== null) candidates.push(jump);
    for (const t of candidates) {
      if (t > epochMs && (best === null || t < best) && openAt(c, t)) {
        if (best === null) bestDay = day;
        best = t;
      }
    }
  }
  return best;
}

/**
 * The next local date strictly after today (in the queue's zone) that has at least one range and is
 * not a holiday, for `@{next_working_date}`; null when none within {@link SEARCH_DAYS} days.
 */
export function nextWorkingDate(hours: Hours, epochMs: number): string | null {
  const c = compile(hours);
  if (!c.anyRange) return null;
  const today = wallOf(epochMs, c.timeZone).days;
  for (let day = today + 1; day <= today + SEARCH_DAYS; day++) {
    const date = dateOfDay(day);
    if (c.weekly[weekdayOfDay(day)].length > 0 && !c.holidays.has(date)) return date;
  }
  return null;
}

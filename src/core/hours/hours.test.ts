// Unit tests of queue hours: validation paths, Intl wall-clock conversion across zones and DST, open / next opening / next working day.
import { describe, expect, it } from 'vitest';
import {
  MAX_HOLIDAYS,
  type Hours,
  isOpen,
  localDay,
  localParts,
  nextOpening,
  nextWorkingDate,
  validateHours,
  zonedToEpoch,
} from './hours.js';

const utc = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function hours(partial: Partial<Hours['weekly']>, timeZone = 'Europe/Paris', holidays: string[] = []): Hours {
  return { timeZone, weekly: { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [], ...partial }, holidays };
}

const office: Hours = hours(
  {
    mon: [['09:00', '12:00'], ['13:00', '17:00']],
    tue: [['09:00', '12:00'], ['13:00', '17:00']],
    wed: [['09:00', '12:00'], ['13:00', '17:00']],
    thu: [['09:00', '12:00'], ['13:00', '17:00']],
    fri: [['09:00', '12:00'], ['13:00', '17:00']],
  },
  'Europe/Paris',
  ['2026-12-25'],
);

describe('localParts / localDay', () => {
  it('reads the wall clock in Paris, New York, Kolkata (+05:30) and Chatham (+12:45/+13:45)', () => {
    // 2026-01-15 is a Thursday.
    expect(localParts(utc('2026-01-15T08:00:00Z'), 'Europe/Paris')).toEqual({ date: '2026-01-15', weekday: 'thu', minutes: 540 });
    expect(localParts(utc('2026-07-15T07:00:00Z'), 'Europe/Paris')).toEqual({ date: '2026-07-15', weekday: 'wed', minutes: 540 });
    expect(localParts(utc('2026-01-15T14:00:00Z'), 'America/New_York')).toEqual({ date: '2026-01-15', weekday: 'thu', minutes: 540 });
    expect(localParts(utc('2026-07-15T13:00:00Z'), 'America/New_York')).toEqual({ date: '2026-07-15', weekday: 'wed', minutes: 540 });
    expect(localParts(utc('2026-01-15T03:30:00Z'), 'Asia/Kolkata')).toEqual({ date: '2026-01-15', weekday: 'thu', minutes: 540 });
    expect(localParts(utc('2026-01-14T19:15:00Z'), 'Pacific/Chatham')).toEqual({ date: '2026-01-15', weekday: 'thu', minutes: 540 });
    expect(localParts(utc('2026-07-14T20:15:00Z'), 'Pacific/Chatham')).toEqual({ date: '2026-07-15', weekday: 'wed', minutes: 540 });
  });

  it('rolls the day over in the zone, not in UTC (23:30 UTC is already tomorrow in Paris)', () => {
    const t = utc('2026-01-15T23:30:00Z');
    expect(localParts(t, 'Europe/Paris')).toEqual({ date: '2026-01-16', weekday: 'fri', minutes: 30 });
    expect(localDay(t, 'Europe/Paris')).toBe('2026-01-16');
    expect(localDay(t, 'UTC')).toBe('2026-01-15');
    expect(localDay(utc('2026-01-16T02:00:00Z'), 'America/New_York')).toBe('2026-01-15');
  });

  it('drops seconds and handles midnight as minute 0', () => {
    expect(localParts(utc('2026-01-15T22:59:59.999Z'), 'Europe/Paris')).toEqual({ date: '2026-01-15', weekday: 'thu', minutes: 1439 });
    expect(localParts(utc('2026-01-15T23:00:00Z'), 'Europe/Paris')).toEqual({ date: '2026-01-16', weekday: 'fri', minutes: 0 });
  });
});

describe('zonedToEpoch', () => {
  it('converts ordinary local times in several zones', () => {
    expect(iso(zonedToEpoch('2026-01-15', 540, 'Europe/Paris'))).toBe('2026-01-15T08:00:00.000Z');
    expect(iso(zonedToEpoch('2026-07-15', 540, 'Europe/Paris'))).toBe('2026-07-15T07:00:00.000Z');
    expect(iso(zonedToEpoch('2026-01-15', 540, 'America/New_York'))).toBe('2026-01-15T14:00:00.000Z');
    expect(iso(zonedToEpoch('2026-01-15', 540, 'Asia/Kolkata'))).toBe('2026-01-15T03:30:00.000Z');
    expect(iso(zonedToEpoch('2026-01-15', 540, 'Pacific/Chatham'))).toBe('2026-01-14T19:15:00.000Z');
    expect(iso(zonedToEpoch('2026-07-15', 540, 'Pacific/Chatham'))).toBe('2026-07-14T20:15:00.000Z');
    expect(iso(zonedToEpoch('2026-01-15', 1440, 'Europe/Paris'))).toBe('2026-01-15T23:00:00.000Z'); // 24:00
  });

  it('maps a time in the spring-forward gap to the transition (Paris 2026-03-29 02:30 does not exist)', () => {
    expect(iso(zonedToEpoch('2026-03-29', 119, 'Europe/Paris'))).toBe('2026-03-29T00:59:00.000Z'); // 01:59 CET
    expect(iso(zonedToEpoch('2026-03-29', 150, 'Europe/Paris'))).toBe('2026-03-29T01:00:00.000Z'); // 02:30 → 03:00 CEST
    expect(iso(zonedToEpoch('2026-03-29', 120, 'Europe/Paris'))).toBe('2026-03-29T01:00:00.000Z');
    expect(iso(zonedToEpoch('2026-03-29', 180, 'Europe/Paris'))).toBe('2026-03-29T01:00:00.000Z'); // 03:00 CEST
    expect(iso(zonedToEpoch('2026-03-08', 150, 'America/New_York'))).toBe('2026-03-08T07:00:00.000Z');
  });

  it('maps a time in the fall-back overlap to the earlier instant (Paris 2026-10-25 02:30 happens twice)', () => {
    const first = zonedToEpoch('2026-10-25', 150, 'Europe/Paris');
    expect(iso(first)).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST
    // Both instants read 02:30 on the wall.
    expect(localParts(first, 'Europe/Paris').minutes).toBe(150);
    expect(localParts(utc('2026-10-25T01:30:00Z'), 'Europe/Paris').minutes).toBe(150);
    expect(iso(zonedToEpoch('2026-11-01', 90, 'America/New_York'))).toBe('2026-11-01T05:30:00.000Z'); // 01:30 EDT
  });

  it('round-trips every minute-aligned instant through the wall clock', () => {
    const zones = ['Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham', 'Australia/Lord_Howe', 'America/Santiago', 'UTC'];
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const from = utc('2025-01-01T00:00:00Z');
    const span = 3 * 365 * 86_400_000;
    for (const tz of zones) {
      for (let i = 0; i < 300; i++) {
        const t = Math.floor((from + rand() * span) / 60_000) * 60_000;
        const p = localParts(t, tz);
        const back = zonedToEpoch(p.date, p.minutes, tz);
        expect(localParts(back, tz)).toEqual(p);
        // Equal, or t is the second occurrence of an overlapped wall time (then back is the first).
        if (back !== t) expect(back).toBeLessThan(t);
      }
    }
  });

  it('refuses a bad date', () => {
    expect(() => zonedToEpoch('2026-02-30', 0, 'Europe/Paris')).toThrow(RangeError);
    expect(() => zonedToEpoch('26-01-01', 0, 'Europe/Paris')).toThrow(RangeError);
    expect(() => zonedToEpoch('2026-01-01', 0, 'Nowhere/City')).toThrow(RangeError);
  });
});

describe('isOpen', () => {
  it('follows several ranges per day with exclusive ends', () => {
    expect(isOpen(office, utc('2026-01-15T07:59:59Z'))).toBe(false); // 08:59:59
    expect(isOpen(office, utc('2026-01-15T08:00:00Z'))).toBe(true); // 09:00
    expect(isOpen(office, utc('2026-01-15T10:59:00Z'))).toBe(true); // 11:59
    expect(isOpen(office, utc('2026-01-15T11:00:00Z'))).toBe(false); // 12:00 lunch
    expect(isOpen(office, utc('2026-01-15T12:00:00Z'))).toBe(true); // 13:00
    expect(isOpen(office, utc('2026-01-15T16:00:00Z'))).toBe(false); // 17:00
    expect(isOpen(office, utc('2026-01-17T10:00:00Z'))).toBe(false); // Saturday
  });

  it('uses summer time in summer', () => {
    expect(isOpen(office, utc('2026-07-15T07:00:00Z'))).toBe(true); // 09:00 CEST
    expect(isOpen(office, utc('2026-07-15T06:59:00Z'))).toBe(false);
  });

  it('closes the whole local day on a holiday, in the queue zone', () => {
    expect(isOpen(office, utc('2026-12-25T10:00:00Z'))).toBe(false); // a Friday
    expect(isOpen(office, utc('2026-12-24T10:00:00Z'))).toBe(true);
    const ny = hours({ thu: [['00:00', '24:00']], fri: [['00:00', '24:00']] }, 'America/New_York', ['2026-12-25']);
    expect(isOpen(ny, utc('2026-12-26T03:00:00Z'))).toBe(false); // still Dec 25, 22:00 in New York
    expect(isOpen(ny, utc('2026-12-25T04:59:00Z'))).toBe(true); // Dec 24, 23:59
  });

  it('accepts 24:00 as the end of the day', () => {
    const late = hours({ sat: [['20:00', '24:00']], sun: [['00:00', '02:00']] });
    expect(isOpen(late, utc('2026-01-17T22:59:59Z'))).toBe(true); // Sat 23:59:59
    expect(isOpen(late, utc('2026-01-17T23:00:00Z'))).toBe(true); // Sun 00:00 (overnight written as two ranges)
    expect(isOpen(late, utc('2026-01-18T01:00:00Z'))).toBe(false); // Sun 02:00
  });

  it('works in a half-hour zone', () => {
    const india = hours({ thu: [['09:00', '17:30']] }, 'Asia/Kolkata');
    expect(isOpen(india, utc('2026-01-15T03:29:00Z'))).toBe(false);
    expect(isOpen(india, utc('2026-01-15T03:30:00Z'))).toBe(true);
    expect(isOpen(india, utc('2026-01-15T11:59:00Z'))).toBe(true); // 17:29
    expect(isOpen(india, utc('2026-01-15T12:00:00Z'))).toBe(false); // 17:30
  });

  it('is open during both occurrences of an overlapped hour', () => {
    const night = hours({ sun: [['02:15', '02:45']] });
    expect(isOpen(night, utc('2026-10-25T00:20:00Z'))).toBe(true); // 02:20 CEST
    expect(isOpen(night, utc('2026-10-25T00:50:00Z'))).toBe(false); // 02:50 CEST
    expect(isOpen(night, utc('2026-10-25T01:20:00Z'))).toBe(true); // 02:20 CET
  });
});

describe('nextOpening', () => {
  it('is now when open', () => {
    const t = utc('2026-01-15T09:00:00Z');
    expect(nextOpening(office, t)).toBe(t);
  });

  it('finds the afternoon range after lunch', () => {
    expect(iso(nextOpening(office, utc('2026-01-15T11:30:00Z')))).toBe('2026-01-15T12:00:00.000Z');
  });

  it('skips a weekend', () => {
    // Friday 17:30 Paris → Monday 09:00 Paris.
    expect(iso(nextOpening(office, utc('2026-01-16T16:30:00Z')))).toBe('2026-01-19T08:00:00.000Z');
  });

  it('skips a holiday and the weekend after it', () => {
    // Thursday Dec 24 18:00 → Friday 25 holiday, weekend → Monday Dec 28 09:00 CET.
    expect(iso(nextOpening(office, utc('2026-12-24T17:00:00Z')))).toBe('2026-12-28T08:00:00.000Z');
  });

  it('crosses the DST change in the right offset', () => {
    // Friday 2026-03-27 18:00 CET → Monday 2026-03-30 09:00 CEST.
    expect(iso(nextOpening(office, utc('2026-03-27T17:00:00Z')))).toBe('2026-03-30T07:00:00.000Z');
  });

  it('opens at the transition when a range starts inside the spring-forward gap', () => {
    const h = hours({ sun: [['02:30', '04:00']] });
    expect(iso(nextOpening(h, utc('2026-03-29T00:00:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    // A range wholly inside the gap never opens that day: next Sunday.
    const gapOnly = hours({ sun: [['02:00', '02:30']] });
    expect(iso(nextOpening(gapOnly, utc('2026-03-29T00:00:00Z')))).toBe('2026-04-05T00:00:00.000Z');
  });

  it('finds the second occurrence of an overlapped opening time', () => {
    const h = hours({ sun: [['02:15', '02:45']] });
    expect(iso(nextOpening(h, utc('2026-10-25T00:50:00Z')))).toBe('2026-10-25T01:15:00.000Z'); // 02:15 CET
    // A wall clock falling back into a range reopens it at the transition.
    const h2 = hours({ sun: [['01:30', '02:30']] });
    expect(iso(nextOpening(h2, utc('2026-10-25T00:40:00Z')))).toBe('2026-10-25T01:00:00.000Z'); // 03:00 CEST → 02:00 CET
  });

  it('works in Chatham and New York', () => {
    const chatham = hours({ fri: [['09:00', '17:00']] }, 'Pacific/Chatham');
    expect(iso(nextOpening(chatham, utc('2026-01-15T00:00:00Z')))).toBe('2026-01-15T19:15:00.000Z'); // Fri 16 09:00 +13:45
    const ny = hours({ mon: [['08:00', '20:00']] }, 'America/New_York');
    expect(iso(nextOpening(ny, utc('2026-03-07T12:00:00Z')))).toBe('2026-03-09T12:00:00.000Z'); // 08:00 EDT
  });

  it('is null when never open', () => {
    expect(nextOpening(hours({}), utc('2026-01-15T00:00:00Z'))).toBeNull();
    // Every Monday in the next 400+ days is a holiday.
    const mondays: string[] = [];
    for (let t = utc('2026-01-19T12:00:00Z'); mondays.length < 60; t += 7 * 86_400_000) mondays.push(new Date(t).toISOString().slice(0, 10));
    expect(nextOpening(hours({ mon: [['09:00', '17:00']] }, 'Europe/Paris', mondays), utc('2026-01-15T00:00:00Z'))).toBeNull();
  });
});

describe('nextWorkingDate', () => {
  const sixDays = hours(
    {
      mon: [['09:00', '17:00']],
      tue: [['09:00', '17:00']],
      wed: [['09:00', '17:00']],
      thu: [['09:00', '17:00']],
      fri: [['09:00', '17:00']],
      sat: [['10:00', '14:00']],
    },
    'Europe/Paris',
    ['2026-12-28'],
  );

  it('is the next day after today with hours', () => {
    expect(nextWorkingDate(sixDays, utc('2026-01-14T10:00:00Z'))).toBe('2026-01-15'); // Wed → Thu
  });

  it('skips an empty Sunday and a holiday', () => {
    // Saturday Dec 26 → Sunday empty, Monday Dec 28 holiday → Tuesday Dec 29.
    expect(nextWorkingDate(sixDays, utc('2026-12-26T11:00:00Z'))).toBe('2026-12-29');
  });

  it('counts "today" in the queue zone', () => {
    // Thursday 23:30 UTC is Friday 00:30 in Paris: the next working date is Saturday.
    expect(nextWorkingDate(sixDays, utc('2026-01-15T23:30:00Z'))).toBe('2026-01-17');
    expect(nextWorkingDate(office, utc('2026-01-15T23:30:00Z'))).toBe('2026-01-19');
  });

  it('is null when no day has hours', () => {
    expect(nextWorkingDate(hours({}), utc('2026-01-15T00:00:00Z'))).toBeNull();
  });
});

describe('validateHours', () => {
  it('accepts and normalizes a valid value', () => {
    const r = validateHours({
      timeZone: 'Asia/Kolkata',
      weekly: { mon: [['13:00', '17:00'], ['09:00', '12:00']], sat: [['20:00', '24:00']], sun: [] },
      holidays: ['2026-12-25', '2026-01-26', '2026-12-25'],
    });
    expect(r).toEqual({
      ok: true,
      hours: {
        timeZone: 'Asia/Kolkata',
        weekly: { mon: [['09:00', '12:00'], ['13:00', '17:00']], tue: [], wed: [], thu: [], fri: [], sat: [['20:00', '24:00']], sun: [] },
        holidays: ['2026-01-26', '2026-12-25'],
      },
    });
  });

  it('accepts touching ranges and omitted holidays', () => {
    const r = validateHours({ timeZone: 'UTC', weekly: { mon: [['09:00', '12:00'], ['12:00', '17:00']] } });
    expect(r.ok).toBe(true);
  });

  const errorsOf = (input: unknown, path?: string) => {
    const r = validateHours(input, path);
    return r.ok ? [] : r.errors;
  };

  it('refuses a non-object and unknown fields', () => {
    expect(errorsOf(null)).toEqual([{ path: 'hours', message: 'must be an object' }]);
    expect(errorsOf([])).toEqual([{ path: 'hours', message: 'must be an object' }]);
    expect(errorsOf({ timeZone: 'UTC', weekly: {}, extra: 1 }).map((e) => e.path)).toEqual(['hours.extra']);
  });

  it('refuses a missing, unknown or offset time zone', () => {
    expect(errorsOf({ weekly: {} }).map((e) => e.path)).toEqual(['hours.timeZone']);
    expect(errorsOf({ timeZone: 'Mars/Olympus', weekly: {} })).toEqual([
      { path: 'hours.timeZone', message: expect.stringContaining('unknown time zone') },
    ]);
    expect(errorsOf({ timeZone: '+01:00', weekly: {} }).map((e) => e.path)).toEqual(['hours.timeZone']);
    expect(errorsOf({ timeZone: 42, weekly: {} }).map((e) => e.path)).toEqual(['hours.timeZone']);
  });

  it('refuses bad weekly shapes with paths', () => {
    expect(errorsOf({ timeZone: 'UTC' }).map((e) => e.path)).toEqual(['hours.weekly']);
    expect(errorsOf({ timeZone: 'UTC', weekly: { monday: [] } }).map((e) => e.path)).toEqual(['hours.weekly.monday']);
    expect(errorsOf({ timeZone: 'UTC', weekly: { mon: 'all day' } }).map((e) => e.path)).toEqual(['hours.weekly.mon']);
    expect(errorsOf({ timeZone: 'UTC', weekly: { mon: [['09:00']] } }).map((e) => e.path)).toEqual(['hours.weekly.mon.0']);
  });

  it('refuses bad times, end before start and 24:00 as a start', () => {
    const errs = errorsOf({
      timeZone: 'Europe/Paris',
      weekly: {
        mon: [['9:00', '17:00']],
        tue: [['09:00', '25:00']],
        wed: [['17:00', '09:00']],
        thu: [['24:00', '24:00']],
        fri: [['10:00', '10:00']],
        sat: [['09:60', '10:00']],
      },
    });
    expect(errs.map((e) => e.path)).toEqual([
      'hours.weekly.mon.0.0',
      'hours.weekly.tue.0.1',
      'hours.weekly.wed.0.1',
      'hours.weekly.thu.0.0',
      'hours.weekly.fri.0.1',
      'hours.weekly.sat.0.0',
    ]);
    expect(errs[2]!.message).toMatch(/after the start/);
  });

  it('refuses overlapping ranges, naming the later one', () => {
    expect(errorsOf({ timeZone: 'UTC', weekly: { mon: [['13:00', '18:00'], ['08:00', '12:00'], ['11:00', '14:00']] } })).toEqual([
      { path: 'hours.weekly.mon.2', message: 'overlaps range 1' },
      { path: 'hours.weekly.mon.2', message: 'overlaps range 0' },
    ]);
  });

  it('limits ranges per day and holidays', () => {
    const many = Array.from({ length: 11 }, (_, i) => [`${String(i).padStart(2, '0')}:00`, `${String(i).padStart(2, '0')}:30`]);
    expect(errorsOf({ timeZone: 'UTC', weekly: { mon: many } }).map((e) => e.path)).toEqual(['hours.weekly.mon']);
    const days = Array.from({ length: MAX_HOLIDAYS + 1 }, (_, i) => new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10));
    expect(errorsOf({ timeZone: 'UTC', weekly: {}, holidays: days }).map((e) => e.path)).toEqual(['hours.holidays']);
    expect(validateHours({ timeZone: 'UTC', weekly: {}, holidays: days.slice(0, MAX_HOLIDAYS) }).ok).toBe(true);
  });

  it('refuses invalid holiday dates with their index', () => {
    expect(errorsOf({ timeZone: 'UTC', weekly: {}, holidays: ['2026-12-25', '2026-02-30', '25/12/2026', 20261225] }).map((e) => e.path)).toEqual([
      'hours.holidays.1',
      'hours.holidays.2',
      'hours.holidays.3',
    ]);
    expect(errorsOf({ timeZone: 'UTC', weekly: {}, holidays: '2026-12-25' }).map((e) => e.path)).toEqual(['hours.holidays']);
    expect(validateHours({ timeZone: 'UTC', weekly: {}, holidays: ['2028-02-29'] }).ok).toBe(true);
  });

  it('prefixes paths as asked and reports every error at once', () => {
    expect(errorsOf({ timeZone: 'X/Y', weekly: { sun: [['10:00', '09:00']] }, holidays: ['x'] }, 'queue.hours').map((e) => e.path)).toEqual([
      'queue.hours.timeZone',
      'queue.hours.weekly.sun.0.1',
      'queue.hours.holidays.0',
    ]);
  });
});

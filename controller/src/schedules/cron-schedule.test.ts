import { describe, expect, it } from 'vitest';
import { CronScheduleError, parseCronSchedule } from './cron-schedule.ts';

/** The next `count` due times after `from`, as ISO strings. */
function nextTimes(expression: string, from: string, count: number, timeZone?: string): string[] {
  const schedule = parseCronSchedule(expression, timeZone);
  const times: string[] = [];
  let after = new Date(from);
  for (let i = 0; i < count; i++) {
    const next = schedule.next(after);
    if (next === undefined) break;
    times.push(next.toISOString());
    after = next;
  }
  return times;
}

describe('parseCronSchedule: next due times', () => {
  it.each([
    ['every 15 minutes', '*/15 * * * *', '2026-01-01T10:07:00Z', ['2026-01-01T10:15:00.000Z', '2026-01-01T10:30:00.000Z', '2026-01-01T10:45:00.000Z', '2026-01-01T11:00:00.000Z']],
    ['a time exactly due is not "after" itself', '0 * * * *', '2026-01-01T10:00:00Z', ['2026-01-01T11:00:00.000Z', '2026-01-01T12:00:00.000Z']],
    ['a list', '5,35 2 * * *', '2026-01-01T00:00:00Z', ['2026-01-01T02:05:00.000Z', '2026-01-01T02:35:00.000Z', '2026-01-02T02:05:00.000Z']],
    ['a range with a step', '10-40/15 8 * * *', '2026-01-01T00:00:00Z', ['2026-01-01T08:10:00.000Z', '2026-01-01T08:25:00.000Z', '2026-01-01T08:40:00.000Z', '2026-01-02T08:10:00.000Z']],
    ['weekdays only (2026-01-02 is a Friday)', '0 9 * * 1-5', '2026-01-02T12:00:00Z', ['2026-01-05T09:00:00.000Z', '2026-01-06T09:00:00.000Z']],
    ['7 is Sunday, as 0 is', '0 0 * * 7', '2026-01-01T00:00:00Z', ['2026-01-04T00:00:00.000Z', '2026-01-11T00:00:00.000Z']],
    ['day of month OR day of week when both are restricted (the 13th, and Fridays)', '0 0 13 * 5', '2026-01-01T00:00:00Z', ['2026-01-02T00:00:00.000Z', '2026-01-09T00:00:00.000Z', '2026-01-13T00:00:00.000Z', '2026-01-16T00:00:00.000Z']],
    ['the 31st skips the months without one', '0 0 31 * *', '2026-01-31T12:00:00Z', ['2026-03-31T00:00:00.000Z', '2026-05-31T00:00:00.000Z']],
    ['February 29th waits for a leap year', '0 0 29 2 *', '2026-01-01T00:00:00Z', ['2028-02-29T00:00:00.000Z']],
    ['across the end of the year', '30 23 31 12 *', '2026-12-31T23:30:00Z', ['2027-12-31T23:30:00.000Z']],
  ])('%s', (_, expression, from, expected) => {
    expect(nextTimes(expression, from, expected.length)).toEqual(expected);
  });

  it('has no next time for a date that never comes', () => {
    expect(parseCronSchedule('0 0 30 2 *').next(new Date('2026-01-01T00:00:00Z'))).toBeUndefined();
  });

  it('reads the schedule in its time zone', () => {
    // 02:00 in New York is 07:00 UTC in winter (EST) and 06:00 UTC in summer (EDT).
    expect(nextTimes('0 2 * * *', '2026-01-10T00:00:00Z', 1, 'America/New_York')).toEqual(['2026-01-10T07:00:00.000Z']);
    expect(nextTimes('0 2 * * *', '2026-07-10T00:00:00Z', 1, 'America/New_York')).toEqual(['2026-07-10T06:00:00.000Z']);
  });

  it('runs a daily time that the spring-forward gap skips once, just after the gap, and on the days around it as usual', () => {
    // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day.
    expect(nextTimes('30 2 * * *', '2026-03-28T00:00:00Z', 3, 'Europe/Berlin')).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('runs a daily time that the fall-back hour repeats once', () => {
    // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET, so 02:30 happens twice.
    expect(nextTimes('30 2 * * *', '2026-10-24T00:00:00Z', 3, 'Europe/Berlin')).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });
});

describe('parseCronSchedule: the latest due time (missed runs)', () => {
  const hourly = parseCronSchedule('0 * * * *');

  it('is the latest time at or before now, however many were missed', () => {
    expect(hourly.latestDue(new Date('2026-01-01T10:20:00Z'), new Date('2026-01-01T07:00:00Z'))?.toISOString()).toBe('2026-01-01T10:00:00.000Z');
  });

  it('counts a time due exactly now', () => {
    expect(hourly.latestDue(new Date('2026-01-01T10:00:00Z'), new Date('2026-01-01T09:30:00Z'))?.toISOString()).toBe('2026-01-01T10:00:00.000Z');
  });

  it('is none when the latest time is not after the given one (it ran already)', () => {
    expect(hourly.latestDue(new Date('2026-01-01T10:20:00Z'), new Date('2026-01-01T10:00:00Z'))).toBeUndefined();
    expect(hourly.latestDue(new Date('2026-01-01T10:59:59Z'), new Date('2026-01-01T10:30:00Z'))).toBeUndefined();
  });
});

describe('parseCronSchedule: refusals say what is wrong and what is accepted', () => {
  it.each([
    ['four fields', '0 * * *', /has 4 fields; it needs five fields \(minute hour/],
    ['six fields (seconds)', '0 0 * * * *', /has 6 fields/],
    ['a minute out of range', '60 * * * *', /minute field "60": 60 is out of range 0-59/],
    ['an hour out of range in a range', '0 20-24 * * *', /hour field "20-24": 24 is out of range 0-23/],
    ['day of month 0', '0 0 0 * *', /day of month field "0": 0 is out of range 1-31/],
    ['month 13', '0 0 1 13 *', /month field "13": 13 is out of range 1-12/],
    ['day of week 8', '0 0 * * 8', /day of week field "8": 8 is out of range 0-7/],
    ['a backwards range', '0 0 * * 5-1', /the range 5-1 runs backwards/],
    ['a step of 0', '*/0 * * * *', /a step of 0 never advances/],
    ['a step after a single number', '5/15 * * * *', /a step needs \* or a range before it: write "5-59\/15" or "\*\/15"/],
    ['month names', '0 0 1 JAN *', /"JAN" is not \*, a number, a range or a step \(names and \?, L, W, # are not supported\)/],
    ['Quartz ?', '0 0 ? * MON', /names and \?, L, W, # are not supported/],
    ['an empty list element', '0,,5 * * * *', /minute field "0,,5": "" is not \*, a number/],
    ['a macro', '@daily', /has 1 field; it needs five fields/],
  ])('refuses %s', (_, expression, message) => {
    expect(() => parseCronSchedule(expression)).toThrow(CronScheduleError);
    expect(() => parseCronSchedule(expression)).toThrow(message);
  });

  it('refuses a time zone Intl does not know, naming it', () => {
    expect(() => parseCronSchedule('0 * * * *', 'Mars/Olympus_Mons')).toThrow(/timeZone "Mars\/Olympus_Mons" is not an IANA time zone name/);
  });
});

/**
 * A CheckpointSchedule's spec.schedule, read in its spec.timeZone: the times it is due. The
 * syntax is checked here, field by field, to the subset the CRD documents (numbers, `*`, ranges,
 * steps, lists; five fields), so a schedule behaves as it reads in any cron; croner (no
 * dependencies, IANA zones through Intl) computes the times, including across DST changes.
 */
import { Cron } from 'croner';

export class CronScheduleError extends Error {}

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  // 7 is Sunday too, as in every cron.
  { name: 'day of week', min: 0, max: 7 },
] as const;

/** One list element: `*`, `n`, `a-b`, `*\/s` or `a-b/s` (a step only after `*` or a range). */
const ELEMENT = /^(?:\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/;

const SYNTAX_HELP = 'five fields (minute hour day-of-month month day-of-week), each *, a number, a range a-b, a step */n or a-b/n, or a comma list of those, e.g. "0 */6 * * *" or "30 2 * * 1-5"';

export interface CronSchedule {
  readonly expression: string;
  readonly timeZone: string;
  /** The first due time strictly after `after`; undefined when there is none (`0 0 30 2 *`). */
  next(after: Date): Date | undefined;
  /** The latest due time at or before `at`, if one is after `notBefore` (exclusive). */
  latestDue(at: Date, notBefore: Date): Date | undefined;
}

/** Checks one field, throwing what is wrong with it. */
function checkField(text: string, field: (typeof FIELDS)[number]): void {
  for (const element of text.split(',')) {
    const match = ELEMENT.exec(element);
    const where = `${field.name} field "${text}"`;
    if (match === null) {
      const unsupported = /[A-Za-z?#]/.test(element) ? ' (names and ?, L, W, # are not supported)' : '';
      throw new CronScheduleError(`${where}: "${element}" is not *, a number, a range or a step${unsupported}`);
    }
    const [, first, last, step] = match;
    if (first !== undefined && step !== undefined && last === undefined) {
      throw new CronScheduleError(`${where}: a step needs * or a range before it: write "${first}-${field.max}/${step}" or "*/${step}"`);
    }
    for (const value of [first, last]) {
      if (value !== undefined && (Number(value) < field.min || Number(value) > field.max)) {
        throw new CronScheduleError(`${where}: ${value} is out of range ${field.min}-${field.max}`);
      }
    }
    if (first !== undefined && last !== undefined && Number(first) > Number(last)) {
      throw new CronScheduleError(`${where}: the range ${first}-${last} runs backwards`);
    }
    if (step !== undefined && Number(step) === 0) throw new CronScheduleError(`${where}: a step of 0 never advances`);
  }
}

/** True for a name Intl knows as a time zone. */
function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Parses and checks a schedule; throws CronScheduleError saying what is wrong and what is accepted. */
export function parseCronSchedule(expression: string, timeZone = 'UTC'): CronSchedule {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== FIELDS.length) {
    throw new CronScheduleError(`schedule "${expression}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; it needs ${SYNTAX_HELP}`);
  }
  try {
    fields.forEach((text, i) => checkField(text, FIELDS[i]));
  } catch (error) {
    throw new CronScheduleError(`schedule "${expression}": ${(error as Error).message}; a schedule is ${SYNTAX_HELP}`);
  }
  if (!isTimeZone(timeZone)) throw new CronScheduleError(`timeZone "${timeZone}" is not an IANA time zone name (e.g. "Europe/Berlin", "America/New_York", "UTC")`);
  // domAndDow false: a day matches on day-of-month OR day-of-week when both are restricted, as in cron.
  const cron = new Cron(fields.join(' '), { mode: '5-part', timezone: timeZone, domAndDow: false });
  return {
    expression,
    timeZone,
    next: (after) => cron.nextRun(after) ?? undefined,
    latestDue(at, notBefore) {
      // previousRuns answers times strictly before its reference; a run due exactly at `at` counts.
      const [latest] = cron.previousRuns(1, new Date(at.getTime() + 1));
      return latest !== undefined && latest.getTime() > notBefore.getTime() ? latest : undefined;
    },
  };
}

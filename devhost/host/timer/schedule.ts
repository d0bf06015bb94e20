/**
 * Timer schedules as the host reads them: a 6-field NCRONTAB expression
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`, evaluated in UTC unless
 * `WEBSITE_TIME_ZONE` names a zone) or a TimeSpan interval such as `00:05:00`.
 */
import { Cron } from 'croner';
import { parseTimeSpanSeconds } from '../app-config';

export interface Schedule {
  /** The first occurrence strictly after `after`, or undefined if there is none. */
  next(after: Date): Date | undefined;
  readonly text: string;
  readonly adjustForDST: boolean;
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

export function parseSchedule(text: string, timeZone?: string): Schedule {
  const trimmed = text.trim();
  if (/^(\d+\.)?\d{1,2}:\d{1,2}:\d{1,2}(\.\d+)?$/.test(trimmed)) {
    const ms = parseTimeSpanSeconds(trimmed, `schedule "${trimmed}"`) * 1000;
    if (ms <= 0) throw new ScheduleError(`schedule "${trimmed}": the interval must be positive`);
    return { text: trimmed, adjustForDST: false, next: (after) => new Date(after.getTime() + ms) };
  }
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 6) {
    throw new ScheduleError(
      `schedule "${trimmed}" must have 6 fields ({second} {minute} {hour} {day} {month} {day-of-week})`,
    );
  }
  let cron: Cron;
  try {
    cron = new Cron(trimmed, { paused: true, timezone: timeZone ?? 'UTC' });
  } catch (error) {
    throw new ScheduleError(
      `schedule "${trimmed}" is not a valid NCRONTAB expression: ${(error as Error).message}`,
    );
  }
  return {
    text: trimmed,
    adjustForDST: true,
    next(after) {
      return cron.nextRun(after) ?? undefined;
    },
  };
}

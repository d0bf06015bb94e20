/**
 * The period of a simple 6-field NCRONTAB schedule (`*\/10 * * * * *`: 10 s), so the timer-driven
 * fleet can start each device with the tick as its telemetry interval. Schedules that are not a
 * plain "every N seconds / minutes / hours" give undefined and the caller uses its default.
 */
const units: readonly number[] = [1, 60, 3600];

function everyN(field: string): number | undefined {
  if (field === '*') return 1;
  const match = /^\*\/(\d+)$/.exec(field);
  return match ? Number(match[1]) : undefined;
}

export function scheduleIntervalSeconds(schedule: string): number | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 6 || fields.slice(3).some((f) => f !== '*')) return undefined;
  // The first non-zero field from the left repeats; the fields before it must be 0.
  for (let i = 0; i < units.length; i += 1) {
    const field = fields[i] ?? '';
    if (field === '0' && i < units.length - 1) continue;
    const n = everyN(field);
    if (n === undefined || n === 0) return undefined;
    if (fields.slice(i + 1, 3).some((f) => f !== '*')) return undefined;
    return n * (units[i] ?? 1);
  }
  return undefined;
}

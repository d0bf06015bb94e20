import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSchedule, ScheduleError } from '../../../../devhost/host/timer/schedule';
import type { TimerInfo } from '../../../../devhost/host/timer/timer-runner';
import { TimerRunner } from '../../../../devhost/host/timer/timer-runner';

describe('timer schedules', () => {
  it('reads 6-field NCRONTAB expressions in UTC, seconds first', () => {
    const every10s = parseSchedule('*/10 * * * * *');
    expect(every10s.next(new Date('2026-01-01T00:00:05Z'))?.toISOString()).toBe(
      '2026-01-01T00:00:10.000Z',
    );
    const weekdays = parseSchedule('0 30 9 * * 1-5');
    expect(weekdays.next(new Date('2026-01-03T12:00:00Z'))?.toISOString()).toBe(
      '2026-01-05T09:30:00.000Z',
    );
  });

  it('reads TimeSpan intervals', () => {
    const schedule = parseSchedule('00:05:00');
    expect(schedule.next(new Date('2026-01-01T00:00:00Z'))?.toISOString()).toBe(
      '2026-01-01T00:05:00.000Z',
    );
  });

  it('rejects expressions that are not 6-field NCRONTAB', () => {
    expect(() => parseSchedule('*/5 * * * *')).toThrow(ScheduleError);
    expect(() => parseSchedule('0 0 25 * * *')).toThrow(/not a valid NCRONTAB/);
  });
});

describe('timer runner', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'devhost-timer-'));
    jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00.500Z') });
  });
  afterEach(() => {
    jest.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  });

  function runner(options: {
    runOnStartup?: boolean;
    durationMs?: number;
    runs: TimerInfo[];
    starts?: number[];
  }) {
    return new TimerRunner({
      name: 'tick',
      schedule: parseSchedule('*/10 * * * * *'),
      runOnStartup: options.runOnStartup ?? false,
      useMonitor: true,
      statusDir: dir,
      run: async (info) => {
        options.runs.push(info);
        options.starts?.push(Date.now());
        if (options.durationMs) await new Promise((done) => setTimeout(done, options.durationMs));
      },
    });
  }

  it('fires on each occurrence with the schedule status', async () => {
    const runs: TimerInfo[] = [];
    const timer = runner({ runs });
    timer.start();
    expect(runs).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(9_500);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '0001-01-01T00:00:00',
        Next: '2026-01-01T00:00:10.000Z',
        LastUpdated: '2026-01-01T00:00:00.500Z',
      },
      IsPastDue: false,
    });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(2);
    expect(runs[1]?.ScheduleStatus?.Last).toBe('2026-01-01T00:00:10.000Z');
    await timer.stop();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(runs).toHaveLength(2);
  });

  it('runs at start with runOnStartup', async () => {
    const runs: TimerInfo[] = [];
    const timer = runner({ runs, runOnStartup: true });
    timer.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.IsPastDue).toBe(false);
    await timer.stop();
  });

  it('never overlaps runs: occurrences during a long run are skipped', async () => {
    const runs: TimerInfo[] = [];
    const starts: number[] = [];
    const timer = runner({ runs, starts, durationMs: 25_000 });
    timer.start();
    await jest.advanceTimersByTimeAsync(60_000);
    // Starts at :10, runs until :35, next occurrence :40, runs until 1:05.
    expect(starts.map((t) => new Date(t).toISOString())).toEqual([
      '2026-01-01T00:00:10.000Z',
      '2026-01-01T00:00:40.000Z',
    ]);
    expect(timer.trigger()).toBe(false);
    const stopping = timer.stop();
    await jest.advanceTimersByTimeAsync(30_000);
    await stopping;
    expect(starts).toHaveLength(2);
  });

  it('skips a scheduled tick while a manual run is going', async () => {
    const runs: TimerInfo[] = [];
    const starts: number[] = [];
    const timer = runner({ runs, starts, durationMs: 12_000 });
    timer.start();
    expect(timer.trigger()).toBe(true);
    await jest.advanceTimersByTimeAsync(19_000);
    expect(starts.map((t) => new Date(t).toISOString())).toEqual(['2026-01-01T00:00:00.500Z']);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(starts.map((t) => new Date(t).toISOString())).toEqual([
      '2026-01-01T00:00:00.500Z',
      '2026-01-01T00:00:20.000Z',
    ]);
    const stopping = timer.stop();
    await jest.advanceTimersByTimeAsync(30_000);
    await stopping;
  });

  it('runs once with IsPastDue after a restart that missed an occurrence', async () => {
    const first: TimerInfo[] = [];
    const before = runner({ runs: first });
    before.start();
    await jest.advanceTimersByTimeAsync(10_000);
    await before.stop();
    expect(first).toHaveLength(1);

    jest.setSystemTime(new Date('2026-01-01T00:05:00.500Z'));
    const second: TimerInfo[] = [];
    const after = runner({ runs: second });
    after.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({
      IsPastDue: true,
      ScheduleStatus: { Last: '2026-01-01T00:00:10.000Z' },
    });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(second).toHaveLength(2);
    expect(second[1]?.IsPastDue).toBe(false);
    await after.stop();
  });

  it('waits for a run in progress when stopped', async () => {
    const runs: TimerInfo[] = [];
    const timer = runner({ runs, runOnStartup: true, durationMs: 5_000 });
    timer.start();
    await jest.advanceTimersByTimeAsync(0);
    let stopped = false;
    const stopping = timer.stop().then(() => {
      stopped = true;
    });
    await jest.advanceTimersByTimeAsync(4_000);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1_000);
    await stopping;
    expect(stopped).toBe(true);
  });
});

import { createAppOutput, isVerbose, statusIntervalMs } from '../../../../devhost/stack/output';

const at = '[2026-11-29T20:00:00.000Z]';
const listing = [
  '[app] Host started: http://127.0.0.1:7071',
  '[app] Functions:',
  '[app]   feedback: timer (*/10 * * * * *)',
  '[app]   simulator: timer (*/10 * * * * *)',
  '[app]   telemetry: eventHub',
  '[app]   health: [GET] http://127.0.0.1:7071/api/health (anonymous)',
];

function run(lines: string[], verbose = false) {
  const written: string[] = [];
  const output = createAppOutput({ verbose, write: (l) => written.push(l), statusIntervalMs: 0 });
  return { output, written, feed: (more: string[]) => more.forEach((l) => output.write(l)), lines };
}

describe('the stack app output', () => {
  it('hides timer Executed lines and idle summaries, shows what matters', () => {
    const { output, written, feed } = run([]);
    feed(listing);
    output.ready();
    const idle = [
      `[app] ${at} Executed 'feedback' (Succeeded, Id=1, Duration=5ms)`,
      `[app] ${at} feedback (0123abcd): feedback: 0 batches, 0 records stored, 0 skipped, 0 malformed`,
      `[app] ${at} simulator (0123abcd): simulator: 3/3 devices connected; 3 sent, 3 acknowledged, 0 C2D received, 0 errors so far`,
      `[app] ${at} Executed 'simulator' (Succeeded, Id=2, Duration=5ms)`,
      `[app] ${at} telemetry (0123abcd): telemetry batch events=3 stored=3 deadLettered=0 alerts=0 devices=3 stateUpdates=3 maxLagMs=10 roundTrips=2`,
      `[app] ${at} simulator (0123abcd): simulator: 3/3 devices connected; 6 sent, 6 acknowledged, 0 C2D received, 0 errors so far`,
    ];
    feed(idle);
    // The first tick is news (devices connected); the same count again is not.
    expect(written).toEqual([idle[2]]);
    const events = [
      `[app] ${at} telemetry (0123abcd): telemetry batch events=2 stored=1 deadLettered=1 (schema:1) alerts=0 devices=1 stateUpdates=1 maxLagMs=10 roundTrips=2`,
      `[app] ${at} simulator (0123abcd): simulator: 2/3 devices connected; 8 sent, 8 acknowledged, 0 C2D received, 1 errors so far`,
      `[app] ${at} Executed 'feedback' (Failed, Id=3, Duration=5ms): Error: boom`,
      `[app] ${at} health (0123abcd): warning: storage did not answer`,
      `[app] ${at} something the filter does not know`,
    ];
    feed(events);
    expect(written).toEqual([idle[2], ...events]);
  });

  it('counts what it held back in the status line', () => {
    jest.useFakeTimers();
    try {
      const written: string[] = [];
      const output = createAppOutput({
        verbose: false,
        write: (l) => written.push(l),
        statusIntervalMs: 60_000,
      });
      listing.forEach((l) => output.write(l));
      output.ready();
      output.write(`[app] ${at} Executed 'simulator' (Succeeded, Id=2, Duration=5ms)`);
      output.write(`[app] ${at} Executed 'health' (Succeeded, Id=4, Duration=5ms)`);
      output.write(
        `[app] ${at} simulator (0123abcd): simulator: 3/3 devices connected; 3 sent, 3 acknowledged, 0 C2D received, 0 errors so far`,
      );
      output.write(
        `[app] ${at} telemetry (0123abcd): telemetry batch events=3 stored=3 deadLettered=0 alerts=0 devices=3 stateUpdates=3 maxLagMs=10 roundTrips=2`,
      );
      jest.advanceTimersByTime(60_000);
      expect(written.at(-1)).toBe(
        '[status] 3/3 simulated devices connected; last 60 s: 3 telemetry events (0 dead-lettered), 0 feedback records, 1 timer runs, 0 warnings or errors',
      );
      output.stop();
    } finally {
      jest.useRealTimers();
    }
  });

  it('relays everything when verbose', () => {
    const { output, written, feed } = run([], true);
    feed(listing);
    output.ready();
    const line = `[app] ${at} Executed 'feedback' (Succeeded, Id=1, Duration=5ms)`;
    feed([line]);
    expect(written).toEqual([...listing, line]);
  });

  it('is verbose with --verbose or LOG_LEVEL=debug, and reads the status interval', () => {
    expect(isVerbose(['node', 'stack.js', '--verbose'], {})).toBe(true);
    expect(isVerbose([], { LOG_LEVEL: 'Debug' })).toBe(true);
    expect(isVerbose([], { LOG_LEVEL: 'information' })).toBe(false);
    expect(statusIntervalMs({})).toBe(60_000);
    expect(statusIntervalMs({ LOCAL_STACK_STATUS_SECONDS: '2' })).toBe(2000);
  });
});

/**
 * `npm start` as users run it: a malformed setting stops it at once with one line naming the
 * setting (before any service starts), and the idle stack is quiet by default.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createStackDataDir,
  removeStackDataDir,
  repoRoot,
  startStackProcess,
  tearDownStack,
  waitFor,
  type StackProcess,
} from './support';

const stackScript = join(repoRoot, 'dist', 'devhost', 'stack', 'stack.js');

describe('npm start with a malformed setting', () => {
  it.each([
    [
      { TELEMETRY_ALERT_THRESHOLD: 'high' },
      'npm start: TELEMETRY_ALERT_THRESHOLD must be a number, got "high" (set in the environment)',
    ],
    [
      { SIMULATOR_SCHEDULE: '*/5 * * * *' },
      'npm start: SIMULATOR_SCHEDULE must be a 6-field NCRONTAB expression ("{s} {m} {h} {d} {M} {dow}"), got "*/5 * * * *" (set in the environment)',
    ],
    [
      { PORT: 'abc', LOCAL_STACK_EPHEMERAL_PORTS: '0' },
      'npm start: PORT must be a port number from 0 to 65535, got "abc" (set in the environment)',
    ],
  ])('%j stops before anything starts, with one line naming it', (settings, expected) => {
    const dataDir = createStackDataDir('e2e-settings-');
    try {
      const run = spawnSync(process.execPath, [stackScript], {
        cwd: repoRoot,
        env: {
          ...process.env,
          LOCAL_DATA_DIR: dataDir,
          LOCAL_STACK_EPHEMERAL_PORTS: '1',
          ...settings,
        },
        encoding: 'utf8',
        // A bound on a failure of this test, not the claim: the claim is the exit and the message.
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim()).toBe(expected);
      expect(run.stdout).toBe('');
      // Nothing was started: no service wrote into the data folder.
      expect(existsSync(join(dataDir, 'iothub', 'connection.json'))).toBe(false);
      expect(readdirSync(dataDir).filter((name) => name !== 'iothub')).toEqual([]);
    } finally {
      removeStackDataDir(dataDir);
    }
  });
});

describe('the idle stack, by default', () => {
  const run: { stack?: StackProcess; dataDir?: string } = {};

  beforeAll(async () => {
    run.dataDir = createStackDataDir('e2e-quiet-');
    run.stack = await startStackProcess(run.dataDir, { LOCAL_STACK_STATUS_SECONDS: '3' });
  }, 180_000);

  afterAll(async () => {
    await tearDownStack(run);
  }, 90_000);

  it('prints the summary, then status lines, and no per-timer Executed lines', async () => {
    const stack = run.stack as StackProcess;
    const afterSummary = () => {
      const lines = stack.lines();
      return lines.slice(lines.indexOf('The local stack is running.'));
    };
    // The window is driven by the stack's own count: wait until its status lines report that
    // both timers (every 10 s) ran at least twice each since the summary.
    const timerRuns = () =>
      afterSummary()
        .map((line) => /^\[status\] .* (\d+) timer runs/.exec(line)?.[1])
        .reduce((sum, runs) => sum + Number(runs ?? 0), 0);
    await waitFor(
      'four timer runs reported by the status lines',
      () => (timerRuns() >= 4 ? true : undefined),
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const lines = afterSummary();
    expect(lines.filter((line) => line.includes("Executed '"))).toEqual([]);
    expect(lines.filter((line) => /feedback: 0 batches/.test(line))).toEqual([]);
    // The simulator's tick is shown only when the number of connected devices changes.
    const ticks = lines.filter((line) => /simulator: \d+\/\d+ devices connected;/.test(line));
    expect(ticks.length).toBeLessThanOrEqual(3);
    expect(lines.filter((line) => / error:|\(Failed,/.test(line))).toEqual([]);
    expect(lines.join('\n')).toMatch(/Service connection: +HostName=\S+ +\(started by the stack\)/);
  });
});

/**
 * The app's console output under `npm start`, quiet by default. Idle, the app logs a few lines
 * every few seconds (each timer's `Executed` line, the simulator's tick, the feedback drain), which
 * scrolled the summary away within a minute. By default this relays only what matters — errors
 * and warnings, a change in how many simulated devices are connected, a telemetry batch with dead
 * letters, C2D traffic, lines it does not recognise — plus one status line per interval built
 * from the lines it held back. `--verbose` (or `LOG_LEVEL=debug`) relays everything.
 *
 * It reads devhost's line format (`[time] function (id): message`) and the app's own summary lines
 * (`simulator: …`, `telemetry batch …`, `feedback: …`); an unrecognised line is always shown.
 */

export interface AppOutputOptions {
  verbose: boolean;
  write: (line: string) => void;
  /** Status line interval; 0 turns it off. */
  statusIntervalMs: number;
}

export interface AppOutput {
  /** Takes one relayed line (`[app] …`). */
  write(line: string): void;
  /** The summary is printed: from now on events are relayed and status lines printed. */
  ready(): void;
  stop(): void;
}

interface Counters {
  timerRuns: number;
  events: number;
  deadLettered: number;
  feedbackRecords: number;
  problems: number;
}

const invocationLine = /^\[[^\]]+\] (\S+) \([0-9a-f]{8}\): (.*)$/;
const executedLine = /^\[[^\]]+\] Executed '([^']+)' \((Succeeded|Failed)/;
const problemLine = /^\[[^\]]+\] (?:\S+ \([0-9a-f]{8}\): )?(?:warning|error|critical):/;
const functionListing = /^ {2}([^\s:]+): (timer|eventHub)\b/;

/** What the held-back line says, and whether it is worth showing by default. */
type Verdict = 'show' | 'hide';

/** What the status line reports: the simulator's last count and the counters since the last one. */
interface OutputState {
  connected: string | undefined;
  devices: string;
  counters: Counters;
}

/** Reads the app's own summary lines into `state`; returns a verdict when it recognised one. */
function summaryVerdict(message: string, state: OutputState): Verdict | undefined {
  const tick = /^simulator: (\d+)\/(\d+) devices connected;/.exec(message);
  if (tick) {
    const changed = tick[1] !== state.connected;
    state.connected = tick[1];
    state.devices = tick[2] ?? '?';
    return changed ? 'show' : 'hide';
  }
  const batch = /^telemetry batch events=(\d+) stored=\d+ deadLettered=(\d+)/.exec(message);
  if (batch) {
    state.counters.events += Number(batch[1]);
    state.counters.deadLettered += Number(batch[2]);
    return Number(batch[2]) > 0 ? 'show' : 'hide';
  }
  const feedback = /^feedback: \d+ batches, (\d+) records stored, \d+ skipped, (\d+) malformed/;
  const drained = feedback.exec(message);
  if (drained) {
    state.counters.feedbackRecords += Number(drained[1]);
    return Number(drained[1]) > 0 || Number(drained[2]) > 0 ? 'show' : 'hide';
  }
  if (/^simulator: disabled/.test(message)) return 'hide';
  return undefined;
}

const freshCounters = (): Counters => ({
  timerRuns: 0,
  events: 0,
  deadLettered: 0,
  feedbackRecords: 0,
  problems: 0,
});

export function createAppOutput(options: AppOutputOptions): AppOutput {
  let isReady = false;
  const state: OutputState = { connected: undefined, devices: '?', counters: freshCounters() };
  const timers = new Set<string>();
  let ticker: NodeJS.Timeout | undefined;

  function verdict(line: string): Verdict {
    const listing = functionListing.exec(line);
    if (listing?.[1]) timers.add(listing[1]);
    if (problemLine.test(line)) {
      state.counters.problems += 1;
      return 'show';
    }
    const executed = executedLine.exec(line);
    if (executed) {
      if (executed[1] && timers.has(executed[1])) state.counters.timerRuns += 1;
      if (executed[2] === 'Failed') {
        state.counters.problems += 1;
        return 'show';
      }
      return 'hide';
    }
    const invocation = invocationLine.exec(line);
    if (invocation?.[2]) {
      const known = summaryVerdict(invocation[2], state);
      if (known) return known;
    }
    // Before the summary, the host's start-up listing is noise; a failed start prints the
    // child's recent lines anyway.
    return isReady ? 'show' : 'hide';
  }

  function status(): void {
    const c = state.counters;
    state.counters = freshCounters();
    const seconds = Math.round(options.statusIntervalMs / 1000);
    options.write(
      `[status] ${state.connected ?? '0'}/${state.devices} simulated devices connected; last ${seconds} s: ${c.events} telemetry events (${c.deadLettered} dead-lettered), ${c.feedbackRecords} feedback records, ${c.timerRuns} timer runs, ${c.problems} warnings or errors`,
    );
  }

  return {
    write(line) {
      const body = line.replace(/^\[app\] /, '');
      const shown = verdict(body) === 'show';
      if (options.verbose || shown) options.write(line);
    },
    ready() {
      isReady = true;
      if (options.statusIntervalMs > 0 && !ticker) {
        ticker = setInterval(status, options.statusIntervalMs);
        ticker.unref();
      }
    },
    stop() {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
    },
  };
}

/** `--verbose`, or `LOG_LEVEL` debug/trace. */
export function isVerbose(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const level = (env.LOG_LEVEL ?? '').toLowerCase();
  return argv.includes('--verbose') || level === 'debug' || level === 'trace';
}

/** The status interval: `LOCAL_STACK_STATUS_SECONDS` (tests shorten it), default 60. */
export function statusIntervalMs(env: NodeJS.ProcessEnv): number {
  const raw = env.LOCAL_STACK_STATUS_SECONDS;
  const seconds = raw === undefined || !/^\d+(\.\d+)?$/.test(raw.trim()) ? 60 : Number(raw);
  return Math.round(seconds * 1000);
}

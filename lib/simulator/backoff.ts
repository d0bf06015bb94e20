/**
 * Exponential backoff with full jitter for device (re)connection: a device that fails waits
 * longer each time (up to a cap), so a hub outage does not turn into a reconnect storm.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private failures = 0;
  constructor(private readonly options: BackoffOptions) {}

  /** Delay before the next attempt after one more failure. */
  fail(): number {
    this.failures += 1;
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** (this.failures - 1));
    const random = this.options.random ?? Math.random;
    return Math.max(this.options.initialMs / 2, Math.round(ceiling * random()));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

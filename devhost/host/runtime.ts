/**
 * The running host's state, explicit: the function registry (`FunctionsCore`), the invocations in
 * flight, the started trigger sources and the HTTP server, and the one order they stop in.
 */
import type { Server } from 'node:http';
import type { RegisteredFunction } from './core-api';
import { activateCore, FunctionsCore } from './core-api';
import type { EventHubListener } from './eventhub/listener';
import type { InvocationInput, InvocationResult } from './invoke';
import { invokeFunction } from './invoke';
import type { HostLog } from './log';
import type { TimerRunner } from './timer/timer-runner';

export class HostRuntime {
  readonly core: FunctionsCore;
  readonly timers: TimerRunner[] = [];
  readonly listeners: EventHubListener[] = [];
  server: Server | undefined;
  readonly #inFlight = new Set<Promise<InvocationResult>>();
  readonly #deactivate: () => void;
  #accepting = true;
  #stopping: Promise<void> | undefined;

  constructor(readonly log: HostLog) {
    this.core = new FunctionsCore((level, message) => {
      if (level === 'warning' || level === 'error' || level === 'critical') log.warn(message);
    });
    this.#deactivate = activateCore(this.core);
  }

  /** False once stopping: no new HTTP requests, no further retries. */
  get accepting(): boolean {
    return this.#accepting;
  }

  /** Runs one invocation and tracks it, so that stopping waits for it. */
  readonly invoke = (fn: RegisteredFunction, input: InvocationInput): Promise<InvocationResult> => {
    const work = invokeFunction(this.core, fn, input, this.log);
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  };

  /** A retry delay that ends early (with false: give up) when the host stops. */
  readonly retrySleep = (ms: number): Promise<boolean> =>
    new Promise((done) => {
      if (!this.#accepting) return done(false);
      setTimeout(() => done(this.#accepting), ms);
    });

  async startTriggers(): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.start()));
    this.timers.forEach((t) => t.start());
  }

  /** Stops once (later calls share the first): see `#shutdown`. */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#shutdown());
  }

  /**
   * New requests are refused, idle connections closed, triggers stopped; the invocations in flight
   * finish, the app's appTerminate hooks run, then the last connections close.
   */
  async #shutdown(): Promise<void> {
    this.#accepting = false;
    const server = this.server;
    const closed = server
      ? new Promise<void>((done) => server.close(() => done()))
      : Promise.resolve();
    server?.closeIdleConnections();
    await Promise.allSettled(this.timers.map((t) => t.stop()));
    await Promise.allSettled(this.listeners.map((l) => l.stop()));
    await Promise.allSettled([...this.#inFlight]);
    await this.#runAppTerminate();
    server?.closeAllConnections();
    await closed;
    this.#deactivate();
  }

  async #runAppTerminate(): Promise<void> {
    try {
      await this.core.runHooks('appTerminate', {
        hookData: this.core.appLevelHookData,
        appHookData: this.core.appHookData,
      });
    } catch (error) {
      this.log.warn(`appTerminate hook failed: ${(error as Error).message}`);
    }
  }
}

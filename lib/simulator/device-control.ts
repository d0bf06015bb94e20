/**
 * What a simulated device does when it is controlled, as the "Control a device" quickstart's
 * device does: it reports its telemetry interval, firmware version and start time when it
 * connects; applies a desired `telemetryIntervalSeconds` and acknowledges it in its reported
 * properties the IoT Plug and Play way (`{value, ac, av, ad}`: the value in force, a status code,
 * the desired `$version` it answers, a description); and answers the direct method
 * `SetTelemetryInterval` (payload: seconds). Pure state and decisions, no SDK: `device-link.ts`
 * wires it to a device client.
 */

export const setIntervalMethod = 'SetTelemetryInterval';

/** Accepted intervals: whole seconds from 1 s to one day. */
export const intervalRange = { minSeconds: 1, maxSeconds: 86_400 } as const;

export const simulatorFirmwareVersion = '1.0.0';

/** The IoT Plug and Play acknowledgement of a writable property. */
export interface WritableAck {
  value: number;
  ac: number;
  av: number;
  ad: string;
}

export type ReportedPatch = Record<string, unknown>;

export interface MethodAnswer {
  status: number;
  payload: unknown;
  /** What to report after answering (the interval changed). */
  report?: ReportedPatch;
}

/** The problem with `value` as an interval, or undefined when it is one. */
export function intervalProblem(value: unknown): string | undefined {
  const { minSeconds, maxSeconds } = intervalRange;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return 'telemetryIntervalSeconds must be a whole number of seconds';
  }
  if (value < minSeconds || value > maxSeconds) {
    return `telemetryIntervalSeconds must be between ${minSeconds} and ${maxSeconds}`;
  }
  return undefined;
}

/** The answer to a method the device does not have. */
export function unknownMethodAnswer(methodName: string): MethodAnswer {
  return { status: 404, payload: { error: `unknown method '${methodName}'` } };
}

export class DeviceControl {
  /** The desired `$version` last acknowledged (0: none yet). */
  private acknowledgedVersion = 0;
  private seconds: number;
  /** What the device last reported for its interval, reported again on every reconnect. */
  private lastAck: WritableAck;

  constructor(
    defaultIntervalSeconds: number,
    private readonly startTime: string,
  ) {
    this.seconds = defaultIntervalSeconds;
    this.lastAck = this.ack(203, 'the device default');
  }

  get intervalSeconds(): number {
    return this.seconds;
  }

  /**
   * The report on (every) connect: firmware, start time, and the interval — acknowledging the
   * desired value when there is one the device has not answered yet, else what it last reported
   * (at first its default: status 203, version 0, as Plug and Play reports a value no one asked
   * for).
   */
  connectReport(desired: Record<string, unknown>): ReportedPatch {
    return {
      firmwareVersion: simulatorFirmwareVersion,
      startTime: this.startTime,
      telemetryIntervalSeconds: this.applyDesired(desired) ?? this.lastAck,
    };
  }

  /**
   * A desired-properties patch (or the whole desired document): the acknowledgement to report,
   * or undefined when it does not touch the interval or was already answered.
   */
  onDesired(desired: Record<string, unknown>): ReportedPatch | undefined {
    const ack = this.applyDesired(desired);
    return ack ? { telemetryIntervalSeconds: ack } : undefined;
  }

  /** A direct method call: `SetTelemetryInterval` changes the interval; anything else is 404. */
  onMethod(methodName: string, payload: unknown): MethodAnswer {
    if (methodName !== setIntervalMethod) return unknownMethodAnswer(methodName);
    const problem = intervalProblem(payload);
    if (problem) return { status: 400, payload: { error: problem } };
    this.seconds = payload as number;
    return {
      status: 200,
      payload: { telemetryIntervalSeconds: this.seconds },
      report: {
        telemetryIntervalSeconds: this.ack(200, `set by the direct method ${setIntervalMethod}`),
      },
    };
  }

  private applyDesired(desired: Record<string, unknown>): WritableAck | undefined {
    const version = desired.$version;
    if (!('telemetryIntervalSeconds' in desired) || typeof version !== 'number') return undefined;
    if (version <= this.acknowledgedVersion) return undefined;
    this.acknowledgedVersion = version;
    // A removed desired value leaves the interval as it is; there is nothing to acknowledge.
    if (desired.telemetryIntervalSeconds === null) return undefined;
    const problem = intervalProblem(desired.telemetryIntervalSeconds);
    if (problem) return this.ack(400, `${problem}; keeping ${this.seconds}`);
    this.seconds = desired.telemetryIntervalSeconds as number;
    return this.ack(200, 'applied');
  }

  private ack(code: number, description: string): WritableAck {
    this.lastAck = { value: this.seconds, ac: code, av: this.acknowledgedVersion, ad: description };
    return this.lastAck;
  }
}

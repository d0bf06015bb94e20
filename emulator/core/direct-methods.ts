/**
 * Direct methods: a service call waits (up to its connect timeout) for the device to be listening,
 * hands the request to the device's connection, and waits (up to its response timeout) for the
 * device's answer with the same request id. Nothing is stored: a call in flight is lost with the
 * process, as on IoT Hub. Timeouts run on the core's clock.
 */
import { randomBytes } from 'node:crypto';
import type {
  Clock,
  ClockTimer,
  DirectMethods,
  MethodInvocation,
  MethodRequest,
  MethodResult,
  Registry,
} from './contracts';
import { HubError } from './contracts';

/** IoT Hub's limit for a method's request and response payloads. */
export const maxMethodPayloadBytes = 128 * 1024;

interface PendingCall {
  deviceId: string;
  timer: ClockTimer;
  resolve(result: MethodResult): void;
}

type Deliver = (request: MethodRequest) => void;

export class DeviceMethods implements DirectMethods {
  private readonly listeners = new Map<string, Deliver>();
  /** Calls waiting for a device to start listening, per device. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly pending = new Map<string, PendingCall>();
  private readonly requestPrefix = randomBytes(4).toString('hex');
  private nextRequest = 1;

  constructor(
    private readonly clock: Clock,
    private readonly registry: Registry,
  ) {}

  async invoke(deviceId: string, invocation: MethodInvocation): Promise<MethodResult> {
    if (!this.registry.get(deviceId)) {
      throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    }
    const body = JSON.stringify(invocation.payload ?? null);
    if (Buffer.byteLength(body, 'utf8') > maxMethodPayloadBytes) {
      throw new HubError(
        'MessageTooLarge',
        `the method payload exceeds IoT Hub's limit of ${maxMethodPayloadBytes} bytes`,
      );
    }
    const deliver = await this.listenerWithin(deviceId, invocation.connectTimeoutMs);
    const requestId = `${this.requestPrefix}${(this.nextRequest++).toString(16)}`;
    const answer = new Promise<MethodResult>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new HubError(
            'GatewayTimeout',
            `Timed out waiting for the response from device ${deviceId} to ${invocation.methodName}`,
          ),
        );
      }, invocation.responseTimeoutMs);
      this.pending.set(requestId, { deviceId, timer, resolve });
    });
    deliver({ requestId, methodName: invocation.methodName, body });
    return answer;
  }

  listen(deviceId: string, deliver: Deliver): () => void {
    this.listeners.set(deviceId, deliver);
    for (const wake of [...(this.waiting.get(deviceId) ?? [])]) wake();
    return () => {
      if (this.listeners.get(deviceId) === deliver) this.listeners.delete(deviceId);
    };
  }

  respond(deviceId: string, requestId: string, status: number, body: Buffer): boolean {
    const call = this.pending.get(requestId);
    if (!call || call.deviceId !== deviceId) return false;
    this.pending.delete(requestId);
    this.clock.clearTimeout(call.timer);
    call.resolve({ status, payload: parsePayload(body) });
    return true;
  }

  /** The device's listener, waiting up to `timeoutMs` for one; DeviceNotOnline after that. */
  private listenerWithin(deviceId: string, timeoutMs: number): Promise<Deliver> {
    const offline = () =>
      new HubError('DeviceNotOnline', `Device ${deviceId} is not online for direct methods`);
    const now = this.listeners.get(deviceId);
    if (now) return Promise.resolve(now);
    if (timeoutMs <= 0) return Promise.reject(offline());
    return new Promise((resolve, reject) => {
      const set = this.waiting.get(deviceId) ?? new Set<() => void>();
      this.waiting.set(deviceId, set);
      const done = (): void => {
        set.delete(wake);
        if (set.size === 0) this.waiting.delete(deviceId);
      };
      const wake = (): void => {
        const deliver = this.listeners.get(deviceId);
        if (!deliver) return;
        this.clock.clearTimeout(timer);
        done();
        resolve(deliver);
      };
      const timer = this.clock.setTimeout(() => {
        done();
        reject(offline());
      }, timeoutMs);
      set.add(wake);
    });
  }
}

/** The device's answer is JSON on IoT Hub; anything else is passed on as text. */
function parsePayload(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

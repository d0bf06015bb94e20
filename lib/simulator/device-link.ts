/**
 * Connects a simulated device's `DeviceControl` to its `azure-iot-device` client: the direct
 * method handler, the twin's desired-property events and the reported-property updates.
 *
 * The device SDK only dispatches methods that have a handler (`onDeviceMethod(name)`) and drops
 * the others silently, so the caller would wait for its timeout. IoT Hub's guidance is that a
 * device answers every method; `ControlledMqtt` answers the unhandled ones with 404 by catching
 * the transport's `method_<name>` event when nothing listens for it (the SDK's own dispatch
 * event, see azure-iot-device-mqtt `_onDeviceMethod`), covered by the simulator conformance test.
 */
import type { Client as DeviceClient, DeviceMethodRequest, Twin } from 'azure-iot-device';
import { DeviceMethodResponse } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { withHubTimeout } from '../iothub/errors';
import {
  setIntervalMethod,
  unknownMethodAnswer,
  type DeviceControl,
  type ReportedPatch,
} from './device-control';

/** A hub that never answers the twin request must not hold the device's connect forever. */
const twinTimeoutMs = 15_000;

interface MethodMessage {
  requestId?: string;
  methods?: { methodName?: string };
}

/** The MQTT transport, answering 404 to methods no handler was registered for. */
export class ControlledMqtt extends Mqtt {
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (
      typeof event === 'string' &&
      event.startsWith('method_') &&
      this.listenerCount(event) === 0
    ) {
      const message = (args[0] ?? {}) as MethodMessage;
      if (message.requestId) {
        const answer = unknownMethodAnswer(
          message.methods?.methodName ?? event.slice('method_'.length),
        );
        new DeviceMethodResponse(message.requestId, this)
          .send(answer.status, answer.payload)
          .catch(() => undefined);
      }
      return false;
    }
    return super.emit(event, ...args);
  }
}

export interface LinkOptions {
  deviceId: string;
  log: (line: string) => void;
  /** Counts a failure (a report or answer that could not be sent). */
  onError: () => void;
}

function reportedOf(twin: Twin): {
  update(patch: ReportedPatch, done: (error?: Error) => void): void;
} {
  return twin.properties.reported as never;
}

function report(twin: Twin, patch: ReportedPatch, options: LinkOptions): Promise<void> {
  return new Promise((resolve) => {
    reportedOf(twin).update(patch, (error) => {
      if (error) {
        options.onError();
        options.log(
          `simulator: ${options.deviceId} could not update reported properties (${error.name})`,
        );
      }
      resolve();
    });
  });
}

/**
 * Registers the method handler, reads the twin, reports the connect-time properties and follows
 * desired-property changes. Resolves after the connect report; the method subscription is an MQTT
 * SUBSCRIBE the SDK sends on its own, moments after registration.
 */
export async function linkDeviceControl(
  client: DeviceClient,
  control: DeviceControl,
  options: LinkOptions,
): Promise<void> {
  // Methods first, so that a hub without twins still gets answers; reports wait for the twin.
  const linked: { twin?: Twin } = {};
  client.onDeviceMethod(setIntervalMethod, (request: DeviceMethodRequest, response) => {
    const answer = control.onMethod(request.methodName, request.payload);
    options.log(
      `simulator: ${options.deviceId} ${request.methodName} → ${answer.status}; interval ${control.intervalSeconds} s`,
    );
    response.send(answer.status, answer.payload).catch(() => options.onError());
    if (answer.report && linked.twin) void report(linked.twin, answer.report, options);
  });
  const twin = await withHubTimeout('Reading the twin', twinTimeoutMs, client.getTwin());
  linked.twin = twin;
  await report(twin, control.connectReport(twin.properties.desired), options);
  twin.on('properties.desired', (desired: Record<string, unknown>) => {
    const patch = control.onDesired(desired);
    if (!patch) return;
    options.log(
      `simulator: ${options.deviceId} desired telemetryIntervalSeconds → interval ${control.intervalSeconds} s`,
    );
    void report(twin, patch, options);
  });
}

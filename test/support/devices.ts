/**
 * Devices for tests that drive the emulator with the official SDKs: registered through the
 * `azure-iothub` Registry, connected with the `azure-iot-device` MQTT transport.
 */
import { NoRetry, type Message } from 'azure-iot-common';
import { Client as DeviceClient, type Twin as DeviceTwin } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import type { Registry } from 'azure-iothub';

export interface TestDevice {
  deviceId: string;
  key: string;
}

/** Registers `deviceId` through the official Registry and returns its primary key. */
export async function registerDevice(
  registry: Registry,
  deviceId: string,
  status: 'enabled' | 'disabled' = 'enabled',
): Promise<TestDevice> {
  const { responseBody } = await registry.create({ deviceId, status });
  const key = responseBody.authentication?.symmetricKey?.primaryKey;
  if (!key) throw new Error('the registry returned no key');
  return { deviceId, key };
}

/**
 * An MQTT device client that fails fast: the SDK's default policy retries for minutes, and the
 * tests assert the first answer.
 */
export function mqttDeviceClient(connectionString: string): DeviceClient {
  const client = DeviceClient.fromConnectionString(connectionString, Mqtt);
  client.setRetryPolicy(new NoRetry());
  return client;
}

/** Opens `client`, completing (PUBACKing) every C2D message; returns what arrives, in order. */
export async function openCompleting(client: DeviceClient): Promise<Message[]> {
  const received: Message[] = [];
  client.on('message', (message: Message) => {
    received.push(message);
    void client.complete(message);
  });
  await client.open();
  return received;
}

/** A device SDK message's body as text. */
export function dataText(message: Message | undefined): string {
  const data: unknown = message?.getData();
  return Buffer.isBuffer(data) ? data.toString('utf8') : typeof data === 'string' ? data : '';
}

/** The device SDK types `properties.reported` loosely; its `update` reports a patch. */
/**
 * Collects every `properties.desired` event of a device twin, from when the hub has desired
 * notifications on: the SDK subscribes in the background when the listener is added, so a change
 * made at once could reach the hub first; enabling them again resolves once they are on.
 */
export async function desiredEvents(twin: DeviceTwin): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  twin.on('properties.desired', (delta: Record<string, unknown>) => events.push(delta));
  await new Promise<void>((resolve, reject) =>
    twin.enableTwinDesiredPropertiesUpdates((error) => (error ? reject(error) : resolve())),
  );
  return events;
}

export function report(twin: DeviceTwin, patch: object): Promise<void> {
  const reported = twin.properties.reported as unknown as {
    update(patch: object, done: (error?: Error) => void): void;
  };
  return new Promise((resolve, reject) =>
    reported.update(patch, (error?: Error) => (error ? reject(error) : resolve())),
  );
}

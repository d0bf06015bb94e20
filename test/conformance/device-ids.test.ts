/**
 * Device ids exactly as IoT Hub allows them, end to end: the official `azure-iothub` Registry
 * creates them on the local IoT Hub, the unmodified device SDK (`azure-iot-device` over
 * `azure-iot-device-mqtt`) sends telemetry and receives C2D with them, and both the API and the
 * hub's registry refuse ids outside the rule — above all one that would inject fields into the
 * device connection string (`x;HostName=evil:443;DeviceId=sim-1`).
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { HttpRequest } from '@azure/functions';
import type { Message as CommonMessage } from 'azure-iot-common';
import { Message, type Client as DeviceClient } from 'azure-iot-device';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import { createDeviceHandlers, type DeviceHandlers } from '../../lib/devices/device-handlers';
import { createApiServicesFromSettings, type ApiServices } from '../../lib/app/services';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { loadSettings } from '../../lib/settings';
import { dataText, mqttDeviceClient, registerDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { contextLoggingTo, header, json, problemType } from '../support/http';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let eventLog: EventLog;
let services: ApiServices;
let handlers: DeviceHandlers;
const openClients: DeviceClient[] = [];
const logs: string[] = [];

const injection = 'x;HostName=evil:443;DeviceId=sim-1';
const refusedIds: [string, string][] = [
  ['connection string injection', injection],
  ['a semicolon', 'a;b'],
  ['a space', 'has space'],
  ['129 characters', 'x'.repeat(129)],
  ['non-ASCII', 'café'],
  ['a slash', 'a/b'],
];

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  await service.open();
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
  services = createApiServicesFromSettings(
    loadSettings({
      IOTHUB_CONNECTION_STRING: emulator.connection.serviceConnectionString,
      IOTHUB_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    }),
  );
  handlers = createDeviceHandlers(() => services);
});

afterEach(async () => {
  await Promise.allSettled(openClients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await services?.close();
  await eventLog?.close();
  await service?.close();
  await emulator?.stop();
});

function deviceClient(deviceId: string, key: string): DeviceClient {
  const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  openClients.push(client);
  return client;
}

function bodyText(body: unknown): string {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  return typeof body === 'string' ? body : JSON.stringify(body);
}

/** The rejection of `promise` (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Record<string, unknown>;
  }
  throw new Error('expected a failure');
}

describe('ids with the special characters IoT Hub allows, over MQTT with the device SDK', () => {
  test.each([['e%f'], ['g=h'], ["i'j(k)"], ['l:m.n-o_p*q?r!s,t@u$v']])(
    '%s: telemetry arrives from it and C2D reaches it',
    async (deviceId) => {
      const { key } = await registerDevice(registry, deviceId);
      expect((await registry.get(deviceId)).responseBody.deviceId).toBe(deviceId);

      const client = deviceClient(deviceId, key);
      const received: CommonMessage[] = [];
      client.on('message', (message: CommonMessage) => {
        received.push(message);
        void client.complete(message);
      });
      await client.open();

      await client.sendEvent(new Message(`reading from ${deviceId}`));
      const event = await until('the telemetry event', () => eventLog.from(deviceId)[0]);
      expect(bodyText(event.body)).toBe(`reading from ${deviceId}`);

      await service.send(deviceId, new Message(`command for ${deviceId}`));
      const [message] = await until('the C2D message', () =>
        received.length > 0 ? received : undefined,
      );
      expect(dataText(message)).toBe(`command for ${deviceId}`);
    },
  );
});

/**
 * IoT Hub's rule allows `+` and `#`, but they are MQTT wildcards: the SDK puts the id into topics
 * unencoded, and IoT Hub reads topic levels literally (no URL-decoding), so over MQTT such a
 * device can connect but neither subscribe for C2D nor publish. The emulator behaves the same
 * (docs/emulator.md, "Device ids").
 */
describe('ids with + or #: legal in the registry, unusable as MQTT topic levels', () => {
  test.each([['a+b'], ['c#d']])(
    '%s: created and connected, but the SDK cannot subscribe and the hub drops its publish',
    async (deviceId) => {
      const { key } = await registerDevice(registry, deviceId);
      expect((await registry.get(deviceId)).responseBody.deviceId).toBe(deviceId);
      const client = deviceClient(deviceId, key);
      const errors: unknown[] = [];
      client.on('error', (error: unknown) => errors.push(error));
      await client.open();

      // Listening for C2D makes the SDK subscribe; its MQTT client refuses the filter itself.
      client.on('message', () => undefined);
      const refused = await until('the subscription error', () => errors[0]);
      expect(String(refused)).toContain(`Invalid topic devices/${deviceId}/messages/devicebound/#`);

      // A wildcard in a PUBLISH topic breaks MQTT 3.1.1 (MQTT-3.3.2-2): the hub closes the link.
      await expect(client.sendEvent(new Message('reading'))).rejects.toHaveProperty(
        'name',
        'NotConnectedError',
      );
      expect(eventLog.from(deviceId)).toEqual([]);
    },
  );
});

describe('ids outside the rule', () => {
  test.each(refusedIds)(
    'the API refuses an id with %s: 400 problem+json, nothing created',
    async (_what, deviceId) => {
      const response = await handlers.create(
        new HttpRequest({
          method: 'POST',
          url: 'http://localhost:7071/api/devices',
          body: { string: JSON.stringify({ deviceId }) },
          headers: { 'content-type': 'application/json' },
        }),
        contextLoggingTo(logs),
      );
      expect(response.status).toBe(400);
      expect(header(response, 'Content-Type')).toBe('application/problem+json');
      expect(problemType(response)).toBe('invalid-device-id');
      expect(json(response)).not.toHaveProperty('connectionString');
      expect(response.body as string).not.toContain('HostName=evil');
      const error = await failure(registry.get(deviceId));
      expect(error.name).toBe('DeviceNotFoundError');
    },
  );

  test.each(refusedIds)(
    "the hub's registry refuses an id with %s: 400 ArgumentInvalid",
    async (_what, deviceId) => {
      const error = await failure(registry.create({ deviceId }));
      expect(error.name).toBe('ArgumentError');
      expect((error.response as { statusCode?: number } | undefined)?.statusCode).toBe(400);
      expect(JSON.parse(String(error.responseBody))).toEqual({
        Message: expect.stringMatching(/^ErrorCode:ArgumentInvalid;/),
        ExceptionMessage: expect.stringContaining('ErrorCode:ArgumentInvalid'),
      });
    },
  );
});

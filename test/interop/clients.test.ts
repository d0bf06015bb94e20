/**
 * The local IoT Hub with clients that are not Node: Python azure-eventhub (pure-Python AMQP over
 * TLS, on the AMQPS port), a paho-mqtt device and the mosquitto command-line clients, each used
 * as its documentation shows. Run with `npm run test:interop` (Debian packages `python3-azure`,
 * `python3-paho-mqtt`, `mosquitto-clients`).
 */
import { Message as CommonMessage } from 'azure-iot-common';
import { Message as DeviceMessage, SharedAccessSignature } from 'azure-iot-device';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { registerDevice, mqttDeviceClient, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';
import { requireClients, run as runProgram, runPython as runScript, type Program } from './support';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let eventLog: EventLog;

beforeAll(async () => {
  requireClients();
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  await service.open();
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
});

const programs: Program[] = [];
function run(command: string, args: readonly string[]): Program {
  const program = runProgram(command, args);
  programs.push(program);
  return program;
}
function runPython(script: string, args: readonly string[]): Program {
  const program = runScript(script, args);
  programs.push(program);
  return program;
}

afterEach(() => {
  // A client left waiting by a failed expectation must not outlive its test.
  for (const program of programs.splice(0)) program.kill();
});

afterAll(async () => {
  await eventLog?.close();
  await service?.close();
  await emulator?.stop();
});

function tokenFor(device: TestDevice): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  return SharedAccessSignature.create(
    emulator.connection.hostName,
    device.deviceId,
    device.key,
    expiry,
  ).toString();
}

function mqttPort(): string {
  const port = emulator.connection.ports.mqtt;
  if (port === null) throw new Error('the emulator serves no standard MQTT port');
  return String(port);
}

function eventsFrom(deviceId: string, count: number) {
  return until(`${count} event(s) from ${deviceId}`, () => {
    const mine = eventLog.from(deviceId);
    return mine.length >= count ? mine : undefined;
  });
}

/** mosquitto_pub / mosquitto_sub as a device: the doc's user name, a SAS token, TLS with the CA. */
function mosquittoDeviceArgs(device: TestDevice): string[] {
  return [
    ...['-h', 'localhost', '-p', mqttPort(), '--cafile', emulator.connection.caFile],
    ...['-i', device.deviceId, '-P', tokenFor(device)],
    ...['-u', `${emulator.connection.hostName}/${device.deviceId}/?api-version=2021-04-12`],
  ];
}

function mosquittoPubArgs(device: TestDevice, topicTail: string, message: string): string[] {
  return [
    ...mosquittoDeviceArgs(device),
    ...['-t', `devices/${device.deviceId}/messages/events/${topicTail}`, '-m', message, '-q', '1'],
  ];
}

describe('paho-mqtt device', () => {
  it('sends telemetry with properties and receives a cloud-to-device message', async () => {
    const device = await registerDevice(registry, 'paho-device');
    const paho = runPython('paho_device.py', [
      emulator.connection.hostName,
      mqttPort(),
      emulator.connection.caFile,
      device.deviceId,
      tokenFor(device),
    ]);
    await until(
      'paho subscribed',
      () => paho.records().find((r) => r.event === 'ready'),
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${paho.output()}`);
    });
    const [event] = await eventsFrom(device.deviceId, 1);
    // Sent with content type application/json, so @azure/event-hubs hands over the parsed body.
    expect(event?.body).toEqual({ temperature: 21.5 });
    expect(event?.properties).toMatchObject({ sensor: 'paho' });
    expect(event?.contentType).toBe('application/json');

    await service.send(device.deviceId, new CommonMessage('hello paho'));
    expect(await paho.exited).toBe(0);
    const c2d = paho.records().find((r) => r.event === 'c2d');
    expect(c2d?.payload).toBe('hello paho');
    expect(c2d?.topic).toMatch(new RegExp(`^devices/${device.deviceId}/messages/devicebound/`));
  });
});

describe('mosquitto clients', () => {
  it('mosquitto_pub sends telemetry; a retained one arrives marked mqtt-retain', async () => {
    const device = await registerDevice(registry, 'mosquitto-device');
    const plain = run('mosquitto_pub', mosquittoPubArgs(device, 'source=cli', 'from mosquitto'));
    expect(await plain.exited).toBe(0);
    const retained = run('mosquitto_pub', [...mosquittoPubArgs(device, '', 'retained'), '-r']);
    expect(await retained.exited).toBe(0);
    const [first, second] = await eventsFrom(device.deviceId, 2);
    expect(Buffer.from(first?.body as Uint8Array).toString()).toBe('from mosquitto');
    expect(first?.properties).toEqual({ source: 'cli' });
    expect(second?.properties).toEqual({ 'mqtt-retain': 'true' });
  });

  it('mosquitto_sub receives a cloud-to-device message queued for the device', async () => {
    const device = await registerDevice(registry, 'mosquitto-sub');
    await service.send(device.deviceId, new CommonMessage('queued for mosquitto'));
    const sub = run('mosquitto_sub', [
      ...mosquittoDeviceArgs(device),
      ...['-t', `devices/${device.deviceId}/messages/devicebound/#`, '-q', '1', '-C', '1', '-v'],
    ]);
    expect(await sub.exited).toBe(0);
    expect(sub.output()).toMatch(
      new RegExp(`^devices/${device.deviceId}/messages/devicebound/\\S* queued for mosquitto`),
    );
  });

  it('mosquitto_pub over MQTT 3.1 is refused: IoT Hub speaks 3.1.1 only', async () => {
    const device = await registerDevice(registry, 'mosquitto-v31');
    const old = run('mosquitto_pub', [...mosquittoPubArgs(device, '', 'old'), '-V', 'mqttv31']);
    expect(await old.exited).not.toBe(0);
    expect(old.output()).toMatch(/unacceptable protocol version/i);
  });
});

describe('Python azure-eventhub', () => {
  it('reads partition properties and device events over TLS on the AMQPS port', async () => {
    const device = await registerDevice(registry, 'for-python');
    const client = mqttDeviceClient(
      emulator.connection.deviceConnectionString(device.deviceId, device.key),
    );
    await client.open();
    const message = new DeviceMessage(JSON.stringify({ humidity: 40 }));
    message.properties.add('level', 'info');
    await client.sendEvent(message);
    await client.close();
    await eventsFrom(device.deviceId, 1);
    const total = eventLog.events.length;

    const amqpPort = emulator.connection.ports.amqp;
    if (amqpPort === null) throw new Error('the emulator serves no standard AMQPS port');
    const python = runPython('eventhub_receive.py', [
      emulator.connection.eventsTlsConnectionString,
      emulator.connection.caFile,
      String(amqpPort),
      String(total),
      '60',
    ]);
    const code = await python.exited;
    expect({ code, output: code === 0 ? '' : python.output() }).toEqual({ code: 0, output: '' });
    const [result] = python.records() as {
      hub: { name: string; partitionIds: string[] };
      partitions: { id: string; lastSequenceNumber: number }[];
      events: {
        partition: string;
        body: string;
        properties: Record<string, string>;
        system: Record<string, unknown>;
      }[];
    }[];
    expect(result?.hub).toEqual({
      name: emulator.connection.eventsName,
      partitionIds: ['0', '1', '2', '3'],
    });
    expect(result?.partitions.map((p) => p.id)).toEqual(['0', '1', '2', '3']);
    // Sequence numbers start at 0 in every partition: the last ones account for every event.
    const counted = result?.partitions.reduce((sum, p) => sum + p.lastSequenceNumber + 1, 0);
    expect(counted).toBe(total);
    expect(result?.events).toHaveLength(total);
    const mine = result?.events.filter(
      (e) => e.system['iothub-connection-device-id'] === device.deviceId,
    );
    expect(mine).toHaveLength(1);
    expect(mine?.[0]?.body).toBe('{"humidity":40}');
    expect(mine?.[0]?.properties).toEqual({ level: 'info' });
  });
});

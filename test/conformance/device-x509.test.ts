/**
 * X.509 devices on the local IoT Hub, with the unmodified SDKs: the registry (`azure-iothub`
 * `Registry`) creates `selfSigned` and `certificateAuthority` devices, and `azure-iot-device`
 * connects them with `x509=true` in the connection string and `setOptions({ cert, key })` over
 * MQTT (`Mqtt`), HTTPS (`Http`), AMQP (`Amqp`) and the WebSocket variants (`MqttWs`, `AmqpWs`,
 * through the hub's port with their `webSocketAgent` option). The scenarios that work (telemetry,
 * C2D, twin, methods) run for every transport in device-transports.test.ts; this file holds the
 * registry side and the refusals. Certificates are made per run with `selfsigned`; the CA of
 * the CA-signed devices is handed to the hub with `--trusted-device-ca`.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Message, NoRetry } from 'azure-iot-common';
import { Client as DeviceClient } from 'azure-iot-device';
import { Http } from 'azure-iot-device-http';
import { Amqp, AmqpWs } from 'azure-iot-device-amqp';
import { Mqtt, MqttWs } from 'azure-iot-device-mqtt';
import type { Registry } from 'azure-iothub';
import { createRegistry, HostPortAgent, splitHostPort } from '../../lib/iothub/registry-agent';
import {
  expiredPeriod,
  makeCertificate,
  x509AuthMethod,
  type TestCertificate as Credential,
} from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';
import { webSocketAgent } from '../support/websockets';

let emulator: EmulatorInstance;
let registry: Registry;
let events: EventLog;
let deviceCa: Credential;
const clients: DeviceClient[] = [];
let nextDevice = 0;

function nextId(prefix: string): string {
  nextDevice += 1;
  return `${prefix}-${nextDevice}`;
}

async function createSelfSigned(deviceId: string, primary: string, secondary?: string) {
  const { responseBody } = await registry.create({
    deviceId,
    status: 'enabled',
    authentication: {
      type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: primary, secondaryThumbprint: secondary },
    },
  });
  return responseBody;
}

async function createCaDevice(deviceId: string) {
  const { responseBody } = await registry.create({
    deviceId,
    status: 'enabled',
    authentication: { type: 'certificateAuthority' },
  });
  return responseBody;
}

type Transport = typeof Mqtt | typeof MqttWs | typeof Amqp | typeof AmqpWs | typeof Http;

/** The transport's own options besides the certificate: the HTTP agent, or the WebSocket agent. */
function transportOptions(transport: Transport): Record<string, unknown> {
  // The Http transport dials a bare host on 443; the agent honours `host:port` (see device-http).
  // Its setOptions only calls back when the http options carry a receivePolicy.
  if (transport === Http) {
    return {
      http: { agent: new HostPortAgent({ keepAlive: true }), receivePolicy: { interval: 1 } },
    };
  }
  // The WebSocket transports dial 443; their agent supplies the hub's port (../support/websockets).
  const agent = webSocketAgent(emulator.connection.hostName);
  if (transport === MqttWs && agent) return { mqtt: { webSocketAgent: agent } };
  if (transport === AmqpWs && agent) return { amqp: { webSocketAgent: agent } };
  return {};
}

/** An X.509 device client as the SDK's samples make one; not yet opened. */
async function x509Client(
  deviceId: string,
  credential: Credential,
  transport: Transport,
): Promise<DeviceClient> {
  const webSocket = transport === MqttWs || transport === AmqpWs;
  const host = emulator.connection.hostName;
  const client = DeviceClient.fromConnectionString(
    `HostName=${webSocket ? splitHostPort(host).host : host};DeviceId=${deviceId};x509=true`,
    transport,
  );
  client.setRetryPolicy(new NoRetry());
  clients.push(client);
  await client.setOptions({
    cert: credential.cert,
    key: credential.key,
    ...transportOptions(transport),
  });
  return client;
}

/**
 * Opens `client` and sends one event, expecting UnauthorizedError: MQTT refuses the CONNECT; the
 * AMQP transports skip CBS for X.509, so the hub refuses the first link they attach; HTTPS
 * answers the first request 401. `reason`, where the refusal carries the hub's words (the AMQP
 * detach's description, the HTTPS body; a CONNACK has none): refused for the right cause.
 */
async function expectRefused(client: DeviceClient, reason: RegExp | undefined): Promise<void> {
  const attempt = async () => {
    await client.open();
    await client.sendEvent(new Message('refused'));
  };
  const error = await attempt().then(
    () => undefined,
    (caught: unknown) => caught as RefusalError,
  );
  expect(error).toMatchObject({ name: 'UnauthorizedError' });
  if (reason) expect(error?.amqpError?.description ?? error?.responseBody).toMatch(reason);
}

interface RefusalError extends Error {
  amqpError?: { description?: string };
  responseBody?: string;
}

/** The SDK's `Authentication` type leaves `type` out, though the service sends it. */
function authType(device: { authentication?: object }): unknown {
  return (device.authentication as { type?: unknown } | undefined)?.type;
}

async function sendAndRead(client: DeviceClient, deviceId: string, messageId: string) {
  const message = new Message(JSON.stringify({ via: messageId }));
  message.messageId = messageId;
  await client.sendEvent(message);
  return until(`event ${messageId}`, () =>
    events.from(deviceId).find((event) => event.messageId === messageId),
  );
}

beforeAll(async () => {
  deviceCa = await makeCertificate('Local test device CA', { isCa: true });
  const caDir = await fs.mkdtemp(path.join(tmpdir(), 'device-ca-'));
  const caFile = path.join(caDir, 'device-ca.pem');
  await fs.writeFile(caFile, deviceCa.cert);
  emulator = await startEmulator({ inMemory: true, args: ['--trusted-device-ca', caFile] });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  events = collectEvents(emulator.connection.eventsConnectionString);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await events?.close();
  await emulator?.stop();
});

describe('registry: X.509 authentication', () => {
  it('creates and reads back a selfSigned device with both thumbprints, and no keys', async () => {
    const deviceId = nextId('reg-self');
    const sha1 = 'ab'.repeat(20);
    const sha256 = 'CD'.repeat(32);
    await createSelfSigned(deviceId, sha1, sha256);
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.authentication).toEqual({
      type: 'selfSigned',
      symmetricKey: { primaryKey: null, secondaryKey: null },
      x509Thumbprint: { primaryThumbprint: sha1.toUpperCase(), secondaryThumbprint: sha256 },
    });
    const { responseBody: twin } = await registry.getTwin(deviceId);
    expect(twin).toMatchObject({
      authenticationType: 'selfSigned',
      x509Thumbprint: { primaryThumbprint: sha1.toUpperCase(), secondaryThumbprint: sha256 },
    });
  });

  it('creates and reads back a certificateAuthority device', async () => {
    const deviceId = nextId('reg-ca');
    await createCaDevice(deviceId);
    const { responseBody } = await registry.get(deviceId);
    expect(authType(responseBody)).toBe('certificateAuthority');
    expect(responseBody.authentication?.x509Thumbprint).toEqual({
      primaryThumbprint: null,
      secondaryThumbprint: null,
    });
  });

  it('updates a SAS device to selfSigned and back to SAS with new keys', async () => {
    const deviceId = nextId('reg-switch');
    await registry.create({ deviceId, status: 'enabled' });
    const thumbprint = 'EF'.repeat(20);
    const { responseBody: x509 } = await registry.update({
      deviceId,
      status: 'enabled',
      authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: thumbprint } },
    });
    expect(x509.authentication?.x509Thumbprint?.primaryThumbprint).toBe(thumbprint);
    expect(x509.authentication?.symmetricKey?.primaryKey).toBeNull();
    const { responseBody: sas } = await registry.update({ deviceId, status: 'enabled' });
    expect(authType(sas)).toBe('sas');
    expect(sas.authentication?.symmetricKey?.primaryKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('refuses a thumbprint that is not SHA-1 or SHA-256 hex (400) and creates nothing', async () => {
    const deviceId = nextId('reg-bad');
    await expect(createSelfSigned(deviceId, 'not-a-thumbprint')).rejects.toMatchObject({
      responseBody: expect.stringContaining('thumbprint') as unknown,
    });
    await expect(registry.get(deviceId)).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
  });
});

describe('self-signed devices', () => {
  it('send telemetry over MQTT, stamped with the x509 auth method', async () => {
    const deviceId = nextId('self-mqtt');
    const credential = await makeCertificate(deviceId);
    await createSelfSigned(deviceId, credential.sha1);
    const client = await x509Client(deviceId, credential, Mqtt);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-mqtt-1');
    expect(event.systemProperties).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-connection-auth-method': x509AuthMethod,
    });
  });

  it('lose a live MQTT connection when the registry stops listing their thumbprint', async () => {
    const deviceId = nextId('self-rotated');
    const credential = await makeCertificate(deviceId);
    await createSelfSigned(deviceId, credential.sha1);
    const client = await x509Client(deviceId, credential, Mqtt);
    await client.open();
    const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    await registry.update({
      deviceId,
      status: 'enabled',
      authentication: {
        type: 'selfSigned',
        x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20) },
      },
    });
    await disconnected;
    await expect(client.sendEvent(new Message('after rotation'))).rejects.toBeDefined();
  });

  it('send telemetry over HTTPS, matched by a SHA-256 secondary thumbprint', async () => {
    const deviceId = nextId('self-http');
    const credential = await makeCertificate(deviceId);
    await createSelfSigned(deviceId, 'AB'.repeat(20), credential.sha256);
    const client = await x509Client(deviceId, credential, Http);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-http-1');
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(x509AuthMethod);
  });
});

describe('CA-signed devices', () => {
  it('send telemetry over MQTT with a certificate the trusted CA issued for the device id', async () => {
    const deviceId = nextId('ca-mqtt');
    const credential = await makeCertificate(deviceId, { ca: deviceCa });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-ca-mqtt-1');
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(x509AuthMethod);
  });

  it('send telemetry over HTTPS with a CA-issued certificate', async () => {
    const deviceId = nextId('ca-http');
    const credential = await makeCertificate(deviceId, { ca: deviceCa });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Http);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-ca-http-1');
    expect(event.systemProperties?.['iothub-connection-device-id']).toBe(deviceId);
  });
});

describe.each([
  { name: 'Mqtt', transport: Mqtt },
  { name: 'Amqp', transport: Amqp },
  { name: 'AmqpWs', transport: AmqpWs },
  { name: 'MqttWs', transport: MqttWs },
  { name: 'Http', transport: Http },
])('X.509 over $name: what IoT Hub refuses, it refuses', ({ name, transport }) => {
  const prefix = name.toLowerCase();
  // MQTT's CONNACK 5 carries no reason; the other transports state it.
  const why = (reason: RegExp): RegExp | undefined =>
    name.startsWith('Mqtt') ? undefined : reason;

  it('a self-signed certificate whose thumbprint is not registered', async () => {
    const deviceId = nextId(`${prefix}-self-wrong`);
    const registered = await makeCertificate(deviceId);
    await createSelfSigned(deviceId, registered.sha1);
    const other = await makeCertificate(deviceId);
    await expectRefused(
      await x509Client(deviceId, other, transport),
      why(/thumbprint is not registered/),
    );
  });

  it('an expired self-signed certificate, though its thumbprint is registered', async () => {
    const deviceId = nextId(`${prefix}-self-expired`);
    const expired = await makeCertificate(deviceId, expiredPeriod());
    await createSelfSigned(deviceId, expired.sha1);
    await expectRefused(await x509Client(deviceId, expired, transport), why(/has expired/));
  });

  it('a certificate from a CA the hub does not trust', async () => {
    const deviceId = nextId(`${prefix}-ca-untrusted`);
    const stranger = await makeCertificate('Untrusted CA', { isCa: true });
    await createCaDevice(deviceId);
    const credential = await makeCertificate(deviceId, { ca: stranger });
    await expectRefused(
      await x509Client(deviceId, credential, transport),
      why(/trusted device CA/),
    );
  });

  it('a trusted CA certificate issued for another device id', async () => {
    const deviceId = nextId(`${prefix}-ca-other`);
    await createCaDevice(deviceId);
    const credential = await makeCertificate('some-other-device', { ca: deviceCa });
    await expectRefused(await x509Client(deviceId, credential, transport), why(/common name/));
  });

  it('an expired certificate from the trusted CA', async () => {
    const deviceId = nextId(`${prefix}-ca-expired`);
    await createCaDevice(deviceId);
    const credential = await makeCertificate(deviceId, { ca: deviceCa, ...expiredPeriod() });
    await expectRefused(await x509Client(deviceId, credential, transport), why(/has expired/));
  });

  it('a SAS device presenting a certificate and no token', async () => {
    const deviceId = nextId(`${prefix}-sas-with-cert`);
    await registry.create({ deviceId, status: 'enabled' });
    const credential = await makeCertificate(deviceId);
    await expectRefused(
      await x509Client(deviceId, credential, transport),
      why(/no valid token|no Authorization header/),
    );
  });
});

describe.each([
  { name: 'Amqp', transport: Amqp },
  { name: 'AmqpWs', transport: AmqpWs },
  { name: 'MqttWs', transport: MqttWs },
  { name: 'Http', transport: Http },
])('a self-signed device over $name', ({ name, transport }) => {
  it('is refused once the registry stops listing its thumbprint', async () => {
    const deviceId = nextId(`${name.toLowerCase()}-rotated`);
    const credential = await makeCertificate(deviceId);
    await createSelfSigned(deviceId, credential.sha1);
    const client = await x509Client(deviceId, credential, transport);
    await client.open();
    const event = await sendAndRead(client, deviceId, `x509-${name}-rotated-1`);
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(x509AuthMethod);
    await registry.update({
      deviceId,
      status: 'enabled',
      authentication: {
        type: 'selfSigned',
        x509Thumbprint: { primaryThumbprint: 'AB'.repeat(20) },
      },
    });
    // Live links and connections are closed; whatever the SDK opens next is refused. A send
    // caught by the close itself fails with NotConnectedError (the SDK saw the drop, not a
    // refusal); the next one reconnects, and that is what must be refused.
    const refusal = await until('a refused send after the rotation', () =>
      client.sendEvent(new Message('after rotation')).then(
        () => undefined,
        (error: unknown) =>
          (error as Error).name === 'NotConnectedError' ? undefined : (error as Error),
      ),
    );
    expect(refusal).toMatchObject({ name: 'UnauthorizedError' });
  });
});

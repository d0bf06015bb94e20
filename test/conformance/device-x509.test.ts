/**
 * X.509 devices on the local IoT Hub, with the unmodified SDKs: the registry (`azure-iothub`
 * `Registry`) creates `selfSigned` and `certificateAuthority` devices, and `azure-iot-device`
 * connects them with `x509=true` in the connection string and `setOptions({ cert, key })` over
 * MQTT (`Mqtt`) and HTTPS (`Http`). Certificates are made per run with `selfsigned`; the CA of
 * the CA-signed devices is handed to the hub with `--trusted-device-ca`.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Message, NoRetry } from 'azure-iot-common';
import { Client as DeviceClient } from 'azure-iot-device';
import { Http } from 'azure-iot-device-http';
import { Mqtt } from 'azure-iot-device-mqtt';
import type { Registry } from 'azure-iothub';
import { generate } from 'selfsigned';
import { createRegistry, HostPortAgent } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';

const dayMs = 24 * 60 * 60 * 1000;
const x509AuthMethod =
  '{"scope":"device","type":"x509","issuer":"iothub","acceptingIpFilterRule":null}';

interface Credential {
  cert: string;
  key: string;
  /** SHA-1 thumbprint, upper-case hex (as the portal shows it). */
  sha1: string;
  sha256: string;
}

interface CertOptions {
  ca?: { cert: string; key: string };
  isCa?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

async function makeCert(commonName: string, options: CertOptions = {}): Promise<Credential> {
  const now = Date.now();
  const result = await generate([{ name: 'commonName', value: commonName }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: options.notBefore ?? new Date(now - dayMs),
    notAfterDate: options.notAfter ?? new Date(now + 30 * dayMs),
    ...(options.ca ? { ca: options.ca } : {}),
    extensions: options.isCa
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'extKeyUsage', clientAuth: true },
        ],
  });
  const parsed = new X509Certificate(result.cert);
  const hex = (fingerprint: string) => fingerprint.replace(/:/g, '').toUpperCase();
  return {
    cert: result.cert,
    key: result.private,
    sha1: hex(parsed.fingerprint),
    sha256: hex(parsed.fingerprint256),
  };
}

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

/** An X.509 device client as the SDK's samples make one; not yet opened. */
async function x509Client(
  deviceId: string,
  credential: Credential,
  transport: typeof Mqtt | typeof Http,
): Promise<DeviceClient> {
  const client = DeviceClient.fromConnectionString(
    `HostName=${emulator.connection.hostName};DeviceId=${deviceId};x509=true`,
    transport,
  );
  client.setRetryPolicy(new NoRetry());
  clients.push(client);
  // The Http transport dials a bare host on 443; the agent honours `host:port` (see device-http).
  // Its setOptions only calls back when the http options carry a receivePolicy.
  const agent = new HostPortAgent({ keepAlive: true });
  const http = transport === Http ? { http: { agent, receivePolicy: { interval: 1 } } } : {};
  await client.setOptions({ cert: credential.cert, key: credential.key, ...http });
  return client;
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
  deviceCa = await makeCert('Local test device CA', { isCa: true });
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
    const credential = await makeCert(deviceId);
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
    const credential = await makeCert(deviceId);
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
    const credential = await makeCert(deviceId);
    await createSelfSigned(deviceId, 'AB'.repeat(20), credential.sha256);
    const client = await x509Client(deviceId, credential, Http);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-http-1');
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(x509AuthMethod);
  });

  it('with a certificate whose thumbprint is not registered is refused over MQTT (CONNACK 5)', async () => {
    const deviceId = nextId('self-wrong');
    const registered = await makeCert(deviceId);
    const other = await makeCert(deviceId);
    await createSelfSigned(deviceId, registered.sha1);
    const client = await x509Client(deviceId, other, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('with a certificate whose thumbprint is not registered gets 401 over HTTPS', async () => {
    const deviceId = nextId('self-wrong-http');
    const registered = await makeCert(deviceId);
    const other = await makeCert(deviceId);
    await createSelfSigned(deviceId, registered.sha1);
    const client = await x509Client(deviceId, other, Http);
    await client.open();
    await expect(client.sendEvent(new Message('refused'))).rejects.toMatchObject({
      name: 'UnauthorizedError',
    });
  });

  it('with an expired certificate is refused even though its thumbprint is registered', async () => {
    const deviceId = nextId('self-expired');
    const expired = await makeCert(deviceId, {
      notBefore: new Date(Date.now() - 10 * dayMs),
      notAfter: new Date(Date.now() - dayMs),
    });
    await createSelfSigned(deviceId, expired.sha1);
    const client = await x509Client(deviceId, expired, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('a SAS device presenting a certificate and no token is refused', async () => {
    const deviceId = nextId('sas-with-cert');
    await registry.create({ deviceId, status: 'enabled' });
    const credential = await makeCert(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });
});

describe('CA-signed devices', () => {
  it('send telemetry over MQTT with a certificate the trusted CA issued for the device id', async () => {
    const deviceId = nextId('ca-mqtt');
    const credential = await makeCert(deviceId, { ca: deviceCa });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-ca-mqtt-1');
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(x509AuthMethod);
  });

  it('send telemetry over HTTPS with a CA-issued certificate', async () => {
    const deviceId = nextId('ca-http');
    const credential = await makeCert(deviceId, { ca: deviceCa });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Http);
    await client.open();
    const event = await sendAndRead(client, deviceId, 'x509-ca-http-1');
    expect(event.systemProperties?.['iothub-connection-device-id']).toBe(deviceId);
  });

  it('refuse a trusted CA certificate issued for another device id', async () => {
    const deviceId = nextId('ca-other');
    const credential = await makeCert('some-other-device', { ca: deviceCa });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('refuse a certificate from a CA the hub does not trust', async () => {
    const deviceId = nextId('ca-untrusted');
    const stranger = await makeCert('Untrusted CA', { isCa: true });
    const credential = await makeCert(deviceId, { ca: stranger });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });

  it('refuse an expired certificate from the trusted CA', async () => {
    const deviceId = nextId('ca-expired');
    const credential = await makeCert(deviceId, {
      ca: deviceCa,
      notBefore: new Date(Date.now() - 10 * dayMs),
      notAfter: new Date(Date.now() - dayMs),
    });
    await createCaDevice(deviceId);
    const client = await x509Client(deviceId, credential, Mqtt);
    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });
  });
});

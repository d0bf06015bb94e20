/**
 * The same device scenarios over every transport × authentication the official device SDK
 * (azure-iot-device 1.18.4) offers, unmodified: transports `Mqtt`, `MqttWs`, `Amqp`, `AmqpWs`
 * and `Http`; a SAS key (connection string), a SAS token (`fromSharedAccessSignature`), an X.509
 * self-signed certificate (thumbprint in the registry) and an X.509 certificate a trusted device
 * CA issued (`--trusted-device-ca`), both given with `x509=true` and `setOptions({ cert, key })`.
 * Telemetry is read back through the Event Hub-compatible endpoint with `@azure/event-hubs`; C2D
 * is sent and its feedback read with `azure-iothub`'s `Client`, which also invokes methods; twins
 * are checked with `Registry`. A scenario a transport does not offer (MQTT cannot reject or
 * abandon; HTTPS has no twin or methods in the SDK) is left out of its row, as the SDK itself
 * refuses it. The WebSocket transports always dial 443: the hub here is on an ephemeral port,
 * reached with the transports' `webSocketAgent` option (../support/websockets.ts).
 *
 * Transport-specific behaviour (authentication refusals, limits, host:port recipes) stays in
 * `mqtt*.test.ts`, `device-amqp.test.ts`, `device-http.test.ts`, `device-x509.test.ts` and
 * `websockets.test.ts`. docs/emulator.md's feature × transport table names these tests.
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ReceivedEventData } from '@azure/event-hubs';
import { Message, NoRetry } from 'azure-iot-common';
import { Client as DeviceClient, ModuleClient, SharedAccessSignature } from 'azure-iot-device';
import { Amqp, AmqpWs } from 'azure-iot-device-amqp';
import { Http } from 'azure-iot-device-http';
import { Mqtt, MqttWs } from 'azure-iot-device-mqtt';
import { JobClient, type Client as ServiceClient, type Registry } from 'azure-iothub';
import {
  HostPortAgent,
  installHostPortAgent,
  splitHostPort,
} from '../../lib/iothub/registry-agent';
import {
  dataText,
  desiredEvents,
  makeCertificate,
  registerCaSigned,
  registerDevice,
  registerSelfSigned,
  report,
  sasAuthMethod,
  x509AuthMethod,
  type TestCertificate,
} from '../support/devices';
import {
  c2dMessage,
  inbox,
  nthMessage,
  startC2dService,
  type C2dService,
} from '../support/c2d-service';
import type { EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';
import { webSocketAgent } from '../support/websockets';

type Protocol = typeof Mqtt | typeof MqttWs | typeof Amqp | typeof AmqpWs | typeof Http;

interface Transport {
  name: string;
  protocol: Protocol;
  /** Where its options go: the WebSocket agent, or the HTTP agent and polling. */
  family: 'mqtt' | 'amqp' | 'http';
  webSocket: boolean;
  /** The SDK offers reject and abandon for C2D. */
  settles: boolean;
  /** The SDK offers twins and direct methods. */
  twinAndMethods: boolean;
}

const transports: Transport[] = [
  { name: 'Mqtt', protocol: Mqtt, family: 'mqtt', webSocket: false },
  { name: 'MqttWs', protocol: MqttWs, family: 'mqtt', webSocket: true },
  { name: 'Amqp', protocol: Amqp, family: 'amqp', webSocket: false },
  { name: 'AmqpWs', protocol: AmqpWs, family: 'amqp', webSocket: true },
  { name: 'Http', protocol: Http, family: 'http', webSocket: false },
].map((t) => ({
  ...(t as Pick<Transport, 'name' | 'protocol' | 'family' | 'webSocket'>),
  settles: t.family !== 'mqtt',
  twinAndMethods: t.family !== 'http',
}));

type AuthKind = 'SAS key' | 'SAS token' | 'X.509 self-signed' | 'X.509 CA-signed';
const auths: AuthKind[] = ['SAS key', 'SAS token', 'X.509 self-signed', 'X.509 CA-signed'];

const rows = transports.flatMap((transport) =>
  auths.map((auth) => ({ transport, auth, name: `${transport.name} with ${auth}` })),
);

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let events: EventLog;
let hub: C2dService;
let deviceCa: TestCertificate;
const clients: DeviceClient[] = [];
let nextDevice = 0;

/** What a device of `auth` is registered with and connects with. */
type Credential = { key: string } | { certificate: TestCertificate };

async function registerFor(auth: AuthKind, deviceId: string): Promise<Credential> {
  if (auth === 'SAS key' || auth === 'SAS token') {
    return { key: (await registerDevice(registry, deviceId)).key };
  }
  if (auth === 'X.509 self-signed') {
    const certificate = await makeCertificate(deviceId);
    await registerSelfSigned(registry, deviceId, certificate.sha1);
    return { certificate };
  }
  const certificate = await makeCertificate(deviceId, { ca: deviceCa });
  await registerCaSigned(registry, deviceId);
  return { certificate };
}

/** The unopened client, as the SDK's samples make one for this authentication. */
function clientFor(transport: Transport, auth: AuthKind, deviceId: string, credential: Credential) {
  // The WebSocket transports dial 443 on the bare host; their agent supplies the port.
  const hubHost = emulator.connection.hostName;
  const host = transport.webSocket ? splitHostPort(hubHost).host : hubHost;
  if (!('key' in credential)) {
    return DeviceClient.fromConnectionString(
      `HostName=${host};DeviceId=${deviceId};x509=true`,
      transport.protocol,
    );
  }
  if (auth === 'SAS token') {
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    const token = SharedAccessSignature.create(host, deviceId, credential.key, String(expiry));
    return DeviceClient.fromSharedAccessSignature(token.toString(), transport.protocol);
  }
  return DeviceClient.fromConnectionString(
    `HostName=${host};DeviceId=${deviceId};SharedAccessKey=${credential.key}`,
    transport.protocol,
  );
}

/** The transport's options: certificate, WebSocket agent, or the HTTP agent and polling. */
function optionsFor(transport: Transport, credential: Credential): Record<string, unknown> {
  const options: Record<string, unknown> =
    'certificate' in credential
      ? { cert: credential.certificate.cert, key: credential.certificate.key }
      : {};
  if (transport.webSocket) {
    const agent = webSocketAgent(emulator.connection.hostName);
    if (agent) options[transport.family] = { webSocketAgent: agent };
  }
  if (transport.family === 'http') {
    // The Http transport needs an agent that honours host:port (see device-http.test.ts), and
    // polls for C2D every 200 ms here (setOptions only calls back with a receivePolicy).
    options.http = {
      agent: new HostPortAgent({ keepAlive: true }),
      receivePolicy: { interval: 0.2 },
    };
  }
  return options;
}

/** A new device of `auth` connected over `transport`, failing fast (no retries), opened. */
async function connectedDevice(
  transport: Transport,
  auth: AuthKind,
): Promise<{ deviceId: string; client: DeviceClient }> {
  nextDevice += 1;
  const deviceId = `${transport.name.toLowerCase()}-${auth.replace(/\W+/g, '-').toLowerCase()}-${nextDevice}`;
  const credential = await registerFor(auth, deviceId);
  const client = clientFor(transport, auth, deviceId, credential);
  client.setRetryPolicy(new NoRetry());
  clients.push(client);
  const options = optionsFor(transport, credential);
  if (Object.keys(options).length > 0) await client.setOptions(options);
  await client.open();
  return { deviceId, client };
}

const feedbackFor = (messageId: string) => hub.feedbackArrived(messageId);

/** The SDK throws some refusals synchronously and rejects others: a promise either way. */
function settled<T>(call: () => Promise<T>): Promise<T> {
  return Promise.resolve().then(call);
}

function eventWithId(deviceId: string, messageId: string): Promise<ReceivedEventData> {
  return until(`event ${messageId}`, () =>
    events.from(deviceId).find((event) => event.messageId === messageId),
  );
}

beforeAll(async () => {
  deviceCa = await makeCertificate('Local test device CA', { isCa: true });
  const caDir = await fs.mkdtemp(path.join(tmpdir(), 'device-ca-'));
  const caFile = path.join(caDir, 'device-ca.pem');
  await fs.writeFile(caFile, deviceCa.cert);
  hub = await startC2dService({ args: ['--trusted-device-ca', caFile] });
  ({ emulator, registry, service } = hub);
  events = collectEvents(emulator.connection.eventsConnectionString);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await events?.close();
  await hub?.stop();
});

describe.each(rows)('device scenarios over $name', ({ transport, auth }) => {
  const row = `${transport.name}-${auth}`.replace(/\W+/g, '-').toLowerCase();
  const id = (what: string): string => `${row}-${what}`;

  it('telemetry lands in the Event Hub-compatible endpoint with its properties', async () => {
    const { deviceId, client } = await connectedDevice(transport, auth);
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.messageId = id('telemetry');
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('Alert', 'high');
    await client.sendEvent(message);
    const event = await eventWithId(deviceId, id('telemetry'));
    expect(event.body).toEqual({ temperature: 21.5 });
    expect(event.correlationId).toBe('corr-1');
    expect(event.contentType).toBe('application/json');
    expect(event.properties).toEqual({ Alert: 'high' });
    expect(event.getRawAmqpMessage().properties?.contentEncoding).toBe('utf-8');
    expect(event.systemProperties).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-connection-auth-method': auth.startsWith('X.509') ? x509AuthMethod : sasAuthMethod,
    });
  });

  it('C2D complete: the message arrives with its properties; the service gets Success', async () => {
    const { deviceId, client } = await connectedDevice(transport, auth);
    const received = inbox(client);
    const message = c2dMessage(id('complete'));
    message.correlationId = 'c2d-corr';
    await service.send(deviceId, message);
    const delivered = await nthMessage(received, 1);
    expect(delivered.messageId).toBe(id('complete'));
    expect(delivered.correlationId).toBe('c2d-corr');
    expect(dataText(delivered)).toBe(`body of ${id('complete')}`);
    await client.complete(delivered);
    expect(await feedbackFor(id('complete'))).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  if (transport.settles) {
    it('C2D reject: Rejected feedback, and the message is not delivered again', async () => {
      const { deviceId, client } = await connectedDevice(transport, auth);
      const received = inbox(client);
      await service.send(deviceId, c2dMessage(id('reject')));
      await client.reject(await nthMessage(received, 1));
      expect(await feedbackFor(id('reject'))).toMatchObject({ deviceId, statusCode: 'Rejected' });
      await service.send(deviceId, c2dMessage(id('after-reject'), 'none'));
      expect((await nthMessage(received, 2)).messageId).toBe(id('after-reject'));
    });

    it('C2D abandon: the message comes back; completing it then gives Success', async () => {
      const { deviceId, client } = await connectedDevice(transport, auth);
      const received = inbox(client);
      await service.send(deviceId, c2dMessage(id('abandon')));
      await client.abandon(await nthMessage(received, 1));
      const again = await nthMessage(received, 2);
      expect(again.messageId).toBe(id('abandon'));
      await client.complete(again);
      expect(await feedbackFor(id('abandon'))).toMatchObject({ deviceId, statusCode: 'Success' });
    });
  }
});

// What the SDK itself leaves out of a transport: refused on the device, the hub never asked.
describe.each(rows.filter((r) => !r.transport.settles || !r.transport.twinAndMethods))(
  'what the SDK leaves out over $name',
  ({ transport, auth }) => {
    const row = `${transport.name}-${auth}`.replace(/\W+/g, '-').toLowerCase();
    const id = (what: string): string => `${row}-${what}`;

    if (!transport.settles) {
      it('C2D reject and abandon: not in the SDK over MQTT (NotImplementedError); complete still works', async () => {
        const { deviceId, client } = await connectedDevice(transport, auth);
        const received = inbox(client);
        await service.send(deviceId, c2dMessage(id('no-reject')));
        const delivered = await nthMessage(received, 1);
        const notImplemented = { name: 'NotImplementedError' };
        await expect(settled(() => client.reject(delivered))).rejects.toMatchObject(notImplemented);
        await expect(settled(() => client.abandon(delivered))).rejects.toMatchObject(
          notImplemented,
        );
        await client.complete(delivered);
        expect(await feedbackFor(id('no-reject'))).toMatchObject({
          deviceId,
          statusCode: 'Success',
        });
      });
    }

    if (!transport.twinAndMethods) {
      it('twin and methods: not in the SDK over HTTPS (NotImplementedError)', async () => {
        const { client } = await connectedDevice(transport, auth);
        const notImplemented = { name: 'NotImplementedError' };
        await expect(settled(() => client.getTwin())).rejects.toMatchObject(notImplemented);
        expect(() => client.onDeviceMethod('m', () => undefined)).toThrow(
          expect.objectContaining(notImplemented) as Error,
        );
      });
    }
  },
);

// HTTPS has neither twins nor methods in the SDK: its rows leave these out.
describe.each(rows.filter((r) => r.transport.twinAndMethods))(
  'twin and methods over $name',
  ({ transport, auth }) => {
    it('twin: get, a reported patch the registry sees, and a desired patch pushed', async () => {
      const { deviceId, client } = await connectedDevice(transport, auth);
      await registry.updateTwin(deviceId, { properties: { desired: { interval: 5 } } }, '*');
      const twin = await client.getTwin();
      expect(twin.properties.desired).toMatchObject({ interval: 5 });
      await report(twin, { firmware: '1.2.3' });
      const { responseBody } = await registry.getTwin(deviceId);
      expect(responseBody.properties.reported).toMatchObject({ firmware: '1.2.3' });
      const patches = await desiredEvents(twin);
      await registry.updateTwin(deviceId, { properties: { desired: { interval: 9 } } }, '*');
      await until('desired patch with interval 9', () => patches.find((p) => p.interval === 9));
    });

    it('a direct method invoked through the service client is answered', async () => {
      const { deviceId, client } = await connectedDevice(transport, auth);
      const seen: unknown[] = [];
      client.onDeviceMethod('SetInterval', (request, response) => {
        seen.push(request.payload);
        void response.send(201, { applied: request.payload });
      });
      // The SDK subscribes or attaches after onDeviceMethod returns; the connect timeout lets
      // the hub wait for it, as IoT Hub does.
      const { result } = await service.invokeDeviceMethod(deviceId, {
        methodName: 'SetInterval',
        payload: { seconds: 7 },
        connectTimeoutInSeconds: 10,
      });
      expect(result).toEqual({ status: 201, payload: { applied: { seconds: 7 } } });
      expect(seen).toEqual([{ seconds: 7 }]);
    });
  },
);

/** The error a promise rejects with (the SDKs' REST errors carry the response). */
async function failure(promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected a failure');
}

interface SdkError extends Error {
  response?: { statusCode?: number };
  responseBody?: string;
}

/** A module client (azure-iot-device `ModuleClient`) with the device's key, failing fast. */
async function moduleClient(transport: Transport): Promise<ModuleClient> {
  nextDevice += 1;
  const { deviceId, key } = await registerDevice(registry, `module-host-${nextDevice}`);
  const hubHost = emulator.connection.hostName;
  const host = transport.webSocket ? splitHostPort(hubHost).host : hubHost;
  const client = ModuleClient.fromConnectionString(
    `HostName=${host};DeviceId=${deviceId};ModuleId=m1;SharedAccessKey=${key}`,
    transport.protocol,
  );
  client.setRetryPolicy(new NoRetry());
  const options = optionsFor(transport, { key });
  if (Object.keys(options).length > 0) await client.setOptions(options);
  return client;
}

const byName = (name: string): Transport => {
  const transport = transports.find((t) => t.name === name);
  if (!transport) throw new Error(`no transport ${name}`);
  return transport;
};

describe('what the local hub does not serve says so, never a misleading 401', () => {
  it.each(['Amqp', 'AmqpWs'])(
    'a module over %s: put-token answered 501, not implemented',
    async (name) => {
      const client = await moduleClient(byName(name));
      // The SDK names every failed put-token UnauthorizedError; the hub's description says why.
      const error = await failure(client.open());
      expect(error.message).toMatch(/module identities \(IoT Edge\) are not supported/);
      await client.close().catch(() => undefined);
    },
  );

  it.each(['Mqtt', 'MqttWs'])(
    'a module over %s: CONNACK 2 (identifier rejected), not 5 (not authorized)',
    async (name) => {
      const client = await moduleClient(byName(name));
      // The SDK names both UnauthorizedError; its message keeps the CONNACK's words.
      const error = await failure(client.open());
      expect(error.message).toMatch(/Connection refused: Identifier rejected/);
      expect(error.message).not.toMatch(/Connection refused: Not authorized/);
      await client.close().catch(() => undefined);
    },
  );

  it('a module over Http: its telemetry is answered 501 NotImplemented', async () => {
    const client = await moduleClient(byName('Http'));
    await client.open();
    const error = await failure(client.sendEvent(new Message('from a module')));
    expect(error.response?.statusCode).toBe(501);
    expect(error.responseBody).toContain('ErrorCode:NotImplemented;');
    await client.close().catch(() => undefined);
  });

  it.each([
    ['module identities', () => registry.addModule({ deviceId: 'any', moduleId: 'm1' })],
    ['configurations', () => registry.getConfigurations()],
    [
      'IoT Edge devices',
      () => registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } }),
    ],
    ['jobs', () => jobClient().getJob('job-1')],
  ])('%s in the registry API: 501 NotImplemented', async (_what, call) => {
    const error = await failure(call());
    expect(error.response?.statusCode).toBe(501);
    expect(error.responseBody).toContain('ErrorCode:NotImplemented;');
  });
});

/** azure-iothub's `JobClient`, pointed at `host:port` like the Registry. */
function jobClient(): JobClient {
  const { serviceConnectionString } = emulator.connection;
  const jobs = JobClient.fromConnectionString(serviceConnectionString);
  installHostPortAgent(jobs as unknown as Registry, emulator.connection.hostName);
  return jobs;
}

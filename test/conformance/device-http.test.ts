/**
 * Devices over HTTPS: the unmodified `azure-iot-device` client with the official
 * `azure-iot-device-http` transport (`Http`), SAS keys. Telemetry is read back through the Event
 * Hub-compatible endpoint with `@azure/event-hubs`; C2D is sent and its feedback read with the
 * official `azure-iothub` `Client`.
 *
 * The transport dials `HostName` as a bare host on 443, so a `host:port` hub needs an agent that
 * honours the port (`HostPortAgent`, passed through the documented `http.agent` option).
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import https from 'node:https';
import type { ReceivedEventData } from '@azure/event-hubs';
import { Message, NoRetry, SharedAccessSignature as PolicySignature } from 'azure-iot-common';
import { Client as DeviceClient, SharedAccessSignature } from 'azure-iot-device';
import { Http } from 'azure-iot-device-http';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import { wellKnownHubIdentity } from '@iot-hub-functions/local-iothub';
import { HostPortAgent } from '../../lib/iothub/registry-agent';
import { dataText, registerDevice, type TestDevice } from '../support/devices';
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

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let events: EventLog;
let hub: C2dService;
const clients: DeviceClient[] = [];
let nextDevice = 0;

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `http-device-${nextDevice}`);
}

/** An `Http` device client on the local hub, polling for C2D every 200 ms. */
async function httpDevice(deviceId: string, key: string): Promise<DeviceClient> {
  const client = DeviceClient.fromConnectionString(
    emulator.connection.deviceConnectionString(deviceId, key),
    Http,
  );
  client.setRetryPolicy(new NoRetry());
  // One call: the transport replaces all its HTTP options on every setOptions.
  await client.setOptions({
    http: { agent: new HostPortAgent({ keepAlive: true }), receivePolicy: { interval: 0.2 } },
  });
  clients.push(client);
  await client.open();
  return client;
}

const feedbackFor = (messageId: string) => hub.feedbackArrived(messageId);

function eventWithId(deviceId: string, messageId: string): Promise<ReceivedEventData> {
  return until(`event ${messageId}`, () =>
    events.from(deviceId).find((event) => event.messageId === messageId),
  );
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A hand-made request to the gateway, for what the SDK never sends. */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: emulator.connection.ports.gateway,
        method,
        path,
        headers,
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function deviceToken(deviceId: string, key: string, host = emulator.connection.hostName): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  return SharedAccessSignature.create(host, deviceId, key, expiry).toString();
}

beforeAll(async () => {
  hub = await startC2dService({ manualClock: true });
  ({ emulator, registry, service } = hub);
  events = collectEvents(emulator.connection.eventsConnectionString);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await events?.close();
  await hub?.stop();
});

describe('telemetry over Http', () => {
  it('lands in the Event Hub-compatible endpoint with system and application properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.messageId = 'http-telemetry-1';
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('Alert', 'high');
    await client.sendEvent(message);
    const event = await eventWithId(deviceId, 'http-telemetry-1');
    expect(event.body).toEqual({ temperature: 21.5 });
    expect(event.correlationId).toBe('corr-1');
    expect(event.contentType).toBe('application/json');
    expect(event.properties).toEqual({ Alert: 'high' });
    expect(event.getRawAmqpMessage().properties?.contentEncoding).toBe('utf-8');
    expect(event.systemProperties).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-connection-auth-method':
        '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    });
  });

  it('sends a batch (sendEventBatch) as separate events in order, each with its properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const batch = ['first', 'second', 'third'].map((text, index) => {
      const message = new Message(text);
      message.properties.add('index', String(index));
      return message;
    });
    await client.sendEventBatch(batch);
    const received = await until('three batched events', () => {
      const from = events.from(deviceId);
      return from.length >= 3 ? from : undefined;
    });
    expect(received.map((event) => Buffer.from(event.body as Uint8Array).toString())).toEqual([
      'first',
      'second',
      'third',
    ]);
    expect(received.map((event) => event.properties)).toEqual([
      { index: '0' },
      { index: '1' },
      { index: '2' },
    ]);
  });

  it('refuses a message over 256 KB with MessageTooLargeError and stores nothing', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const error = await client.sendEvent(new Message(Buffer.alloc(256 * 1024 + 1))).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('MessageTooLargeError');
    const marker = new Message('after');
    marker.messageId = 'after-too-large';
    await client.sendEvent(marker);
    await eventWithId(deviceId, 'after-too-large');
    expect(events.from(deviceId)).toHaveLength(1);
  });
});

describe('reaching a host:port hub', () => {
  it('works with the documented recipe: a stock https.Agent pinned to the port, and the CA file', async () => {
    const { deviceId, key } = await createDevice();
    const client = DeviceClient.fromConnectionString(
      emulator.connection.deviceConnectionString(deviceId, key),
      Http,
    );
    client.setRetryPolicy(new NoRetry());
    clients.push(client);
    // Node's Agent lays its own options over every request's, so host and port win over the
    // `localhost:<port>` the transport passes as the host.
    const agent = new https.Agent({ host: 'localhost', port: emulator.connection.ports.gateway });
    // `receivePolicy` (here the SDK's default) is not optional in practice: without it the
    // transport's setOptions never calls back (azure-iot-device-http 1.14.4).
    await client.setOptions({
      ca: emulator.connection.caFile,
      http: { agent, receivePolicy: { interval: 1 } },
    });
    const message = new Message('via a stock agent');
    message.messageId = 'stock-agent';
    await client.sendEvent(message);
    await eventWithId(deviceId, 'stock-agent');
  });

  it('fails without an agent: the transport dials the whole host:port as a host name', async () => {
    const { deviceId, key } = await createDevice();
    const client = DeviceClient.fromConnectionString(
      emulator.connection.deviceConnectionString(deviceId, key),
      Http,
    );
    client.setRetryPolicy(new NoRetry());
    clients.push(client);
    const error = await client.sendEvent(new Message('x')).then(
      () => undefined,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(error?.code).toBe('ENOTFOUND');
  });
});

describe('authentication over Http', () => {
  it('answers a wrong key with 401 before parsing the body (a non-JSON body is not a 400)', async () => {
    const { deviceId } = await createDevice();
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    const response = await rawRequest(
      'POST',
      `/devices/${deviceId}/messages/events?api-version=2021-04-12`,
      {
        authorization: deviceToken(deviceId, wrongKey),
        'content-type': 'application/vnd.microsoft.iothub.json',
      },
      'this is { not JSON',
    );
    expect(response.status).toBe(401);
    expect(response.body).toContain('IotHubUnauthorizedAccess');
  });

  it('refuses a token signed with the right key for the same device on another hub (401)', async () => {
    const { deviceId, key } = await createDevice();
    const response = await rawRequest(
      'POST',
      `/devices/${deviceId}/messages/events?api-version=2021-04-12`,
      { authorization: deviceToken(deviceId, key, 'other-hub.azure-devices.net') },
      '{"n":1}',
    );
    expect(response.status).toBe(401);
    expect(response.body).toContain('IotHubUnauthorizedAccess');
  });

  it('the registry routes too: a bad service token with a non-JSON body is 401, not 400', async () => {
    const response = await rawRequest(
      'PUT',
      '/devices/http-registry-probe?api-version=2021-04-12',
      {
        authorization: `SharedAccessSignature sr=localhost&sig=${encodeURIComponent(Buffer.alloc(32).toString('base64'))}&se=4102444800&skn=iothubowner`,
        'content-type': 'application/json',
      },
      'this is { not JSON',
    );
    expect(response.status).toBe(401);
  });

  it('accepts a policy token with DeviceConnect (auth method scope hub), refuses one without', async () => {
    const { deviceId } = await createDevice();
    const policyToken = (name: string): string => {
      const policy = wellKnownHubIdentity.policies.find((p) => p.name === name);
      if (!policy) throw new Error(`no policy ${name}`);
      const expiry = Math.floor(Date.now() / 1000) + 3600;
      const resource = encodeURIComponent(emulator.connection.hostName);
      return PolicySignature.create(resource, name, policy.primaryKey, expiry).toString();
    };
    const send = (token: string) =>
      rawRequest(
        'POST',
        `/devices/${deviceId}/messages/events?api-version=2021-04-12`,
        { authorization: token, 'iothub-messageid': 'via-policy' },
        'from the hub owner',
      );
    expect((await send(policyToken('service'))).status).toBe(401);
    expect((await send(policyToken('iothubowner'))).status).toBe(204);
    const event = await eventWithId(deviceId, 'via-policy');
    expect(event.systemProperties?.['iothub-connection-auth-method']).toBe(
      '{"scope":"hub","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    );
  });

  it('a wrong key through the SDK is an UnauthorizedError', async () => {
    const { deviceId } = await createDevice();
    const client = await httpDevice(deviceId, Buffer.alloc(32, 9).toString('base64'));
    const error = await client.sendEvent(new Message('x')).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('UnauthorizedError');
  });

  it('an unknown device is DeviceNotFoundError (404)', async () => {
    const key = Buffer.alloc(32, 3).toString('base64');
    const client = await httpDevice('http-never-registered', key);
    const error = await client.sendEvent(new Message('x')).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('DeviceNotFoundError');
  });

  it('file upload with a valid device token is 501 NotImplemented, not a misleading 401', async () => {
    const { deviceId, key } = await createDevice();
    const response = await rawRequest(
      'POST',
      `/devices/${deviceId}/files?api-version=2021-04-12`,
      { authorization: deviceToken(deviceId, key), 'content-type': 'application/json' },
      '{"blobName":"a.txt"}',
    );
    expect(response.status).toBe(501);
  });

  it('a disabled device is DeviceNotFoundError (404), as IoT Hub answers over HTTPS', async () => {
    const { deviceId, key } = await registerDevice(registry, 'http-disabled', 'disabled');
    const client = await httpDevice(deviceId, key);
    const error = await client.sendEvent(new Message('x')).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('DeviceNotFoundError');
  });

  it('a valid token with a malformed batch is a 400, after authentication', async () => {
    const { deviceId, key } = await createDevice();
    const response = await rawRequest(
      'POST',
      `/devices/${deviceId}/messages/events?api-version=2021-04-12`,
      {
        authorization: deviceToken(deviceId, key),
        'content-type': 'application/vnd.microsoft.iothub.json',
      },
      'this is { not JSON',
    );
    expect(response.status).toBe(400);
    expect(response.body).toContain('ArgumentInvalid');
  });
});

describe('cloud-to-device over Http', () => {
  it('complete: the message arrives with its properties and the service gets Success feedback', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const received = inbox(client);
    const message = c2dMessage('http-complete');
    message.correlationId = 'c2d-corr';
    message.properties.add('command', 'reboot');
    await service.send(deviceId, message);
    const delivered = await nthMessage(received, 1);
    expect(delivered.messageId).toBe('http-complete');
    expect(delivered.correlationId).toBe('c2d-corr');
    expect(dataText(delivered)).toBe('body of http-complete');
    // azure-iot-http-base keeps the header name as the property name.
    expect(delivered.properties.getValue('iothub-app-command')).toBe('reboot');
    await client.complete(delivered);
    expect(await feedbackFor('http-complete')).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  it('reject: Rejected feedback, and the message is not delivered again', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const received = inbox(client);
    await service.send(deviceId, c2dMessage('http-reject'));
    await client.reject(await nthMessage(received, 1));
    expect(await feedbackFor('http-reject')).toMatchObject({ deviceId, statusCode: 'Rejected' });
    await service.send(deviceId, c2dMessage('http-after-reject', 'none'));
    const next = await nthMessage(received, 2);
    expect(next.messageId).toBe('http-after-reject');
  });

  it('abandon: the message comes back, and completing it then gives Success', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const received = inbox(client);
    await service.send(deviceId, c2dMessage('http-abandon'));
    await client.abandon(await nthMessage(received, 1));
    const again = await nthMessage(received, 2);
    expect(again.messageId).toBe('http-abandon');
    await client.complete(again);
    expect(await feedbackFor('http-abandon')).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  it('a lock token that is no longer held is refused (412) and changes nothing', async () => {
    const { deviceId, key } = await createDevice();
    const client = await httpDevice(deviceId, key);
    const received = inbox(client);
    await service.send(deviceId, c2dMessage('http-twice'));
    const delivered = await nthMessage(received, 1);
    await client.complete(delivered);
    const error = await client.complete(delivered).then(
      () => undefined,
      (e: unknown) => e as Error & { response?: { statusCode: number } },
    );
    expect(error?.response?.statusCode).toBe(412);
  });

  it('raw protocol: 204 when empty, a new ETag lock token per delivery, delivery count rising after an abandon', async () => {
    const { deviceId, key } = await createDevice();
    const auth = () => ({ authorization: deviceToken(deviceId, key) });
    const path = `/devices/${deviceId}/messages/deviceBound?api-version=2021-04-12`;
    expect((await rawRequest('GET', path, auth())).status).toBe(204);
    await service.send(deviceId, c2dMessage('http-raw'));
    const first = await until('the raw delivery', async () => {
      const response = await rawRequest('GET', path, auth());
      return response.status === 200 ? response : undefined;
    });
    expect(first.body).toBe('body of http-raw');
    expect(first.headers['iothub-messageid']).toBe('http-raw');
    expect(first.headers['iothub-deliverycount']).toBe('1');
    const lockToken = String(first.headers.etag).replace(/^"|"$/g, '');
    // Locked: nobody else gets it meanwhile.
    expect((await rawRequest('GET', path, auth())).status).toBe(204);
    const feedbackPath = `/devices/${deviceId}/messages/deviceBound/${lockToken}`;
    const abandoned = await rawRequest(
      'POST',
      `${feedbackPath}/abandon?api-version=2021-04-12`,
      auth(),
    );
    expect(abandoned.status).toBe(204);
    const second = await rawRequest('GET', path, auth());
    expect(second.headers['iothub-deliverycount']).toBe('2');
    const secondLock = String(second.headers.etag).replace(/^"|"$/g, '');
    // Every delivery has its own lock token; the first one no longer settles anything.
    expect(secondLock).not.toBe(lockToken);
    const stale = await rawRequest('DELETE', `${feedbackPath}?api-version=2021-04-12`, auth());
    expect(stale.status).toBe(412);
    const rejected = await rawRequest(
      'DELETE',
      `/devices/${deviceId}/messages/deviceBound/${secondLock}?api-version=2021-04-12&reject`,
      auth(),
    );
    expect(rejected.status).toBe(204);
    expect(await feedbackFor('http-raw')).toMatchObject({ deviceId, statusCode: 'Rejected' });
  });
});

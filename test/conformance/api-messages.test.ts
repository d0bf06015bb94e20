/**
 * Cloud-to-device messages through the API against the local IoT Hub (AMQP service surface,
 * MQTT devices) and Azurite (the `messagestatus` table): the handlers and the feedback timer are
 * called directly with real settings. The emulator closes partial feedback batches after 100 ms
 * (`--feedback-delay-ms`) and gives messages without a TTL one of 3 s (`--c2d-ttl-ms`) so that
 * expiry is observable; the API's own `ttlSeconds` starts at 60 s, as IoT Hub's does.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import {
  HttpRequest,
  type HttpResponseInit,
  type InvocationContext,
  type Timer,
} from '@azure/functions';
import type { Message } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import { createDeviceHandlers, type DeviceHandlers } from '../../lib/devices/device-handlers';
import { createFeedbackTimer } from '../../lib/messages/feedback-timer';
import { createHealthHandler } from '../../lib/app/health';
import { createMessageHandlers, type MessageHandlers } from '../../lib/messages/message-handlers';
import { createApiServicesFromSettings, type ApiServices } from '../../lib/app/services';
import { loadSettings } from '../../lib/settings';
import { startAzurite, type AzuriteInstance } from '../support/azurite';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until, type Probe } from '../support/wait';
import { mqttDeviceClient, openCompleting } from '../support/devices';
import { contextLoggingTo, json, problemType } from '../support/http';

let emulator: EmulatorInstance;
let azurite: AzuriteInstance;
let services: ApiServices;
let devices: DeviceHandlers;
let messages: MessageHandlers;
let feedbackTimer: (timer: Timer, context: InvocationContext) => Promise<void>;
const deviceClients: DeviceClient[] = [];
const logs: string[] = [];
const base = 'http://localhost:7071/api/devices';

const context = () => contextLoggingTo(logs);

async function createDevice(deviceId: string): Promise<string> {
  const response = await devices.create(
    new HttpRequest({
      method: 'POST',
      url: base,
      body: { string: JSON.stringify({ deviceId }) },
      headers: { 'content-type': 'application/json' },
    }),
    context(),
  );
  expect(response.status).toBe(201);
  return json<{ connectionString: string }>(response).connectionString;
}

/** A connected MQTT device that completes everything it receives. */
function connectDevice(connectionString: string): Promise<Message[]> {
  const client = mqttDeviceClient(connectionString);
  deviceClients.push(client);
  return openCompleting(client);
}

function send(deviceId: string, body: unknown, query = ''): Promise<HttpResponseInit> {
  return messages.send(
    new HttpRequest({
      method: 'POST',
      url: `${base}/${encodeURIComponent(deviceId)}/messages${query}`,
      body: { string: JSON.stringify(body) },
      headers: { 'content-type': 'application/json' },
      params: { deviceId },
    }),
    context(),
  );
}

function status(deviceId: string, messageId: string): Promise<HttpResponseInit> {
  return messages.status(
    new HttpRequest({
      method: 'GET',
      url: `${base}/${deviceId}/messages/${encodeURIComponent(messageId)}`,
      params: { deviceId, messageId },
    }),
    context(),
  );
}

/** Polls for up to 20 s, every 100 ms: longer and sparser than `until`'s defaults. */
const eventually = <T>(what: string, probe: Probe<T>): Promise<T> =>
  until(what, probe, 20_000, 100);

/** Run the feedback timer (1 s drains) until the message's status is `expected`. */
async function statusAfterFeedback(deviceId: string, messageId: string, expected: string) {
  return eventually(`status ${expected} for ${messageId}`, async () => {
    await feedbackTimer({} as Timer, context());
    const response = await status(deviceId, messageId);
    if (response.status !== 200) return undefined;
    const body = json<{ status: string }>(response);
    return body.status === expected ? body : undefined;
  });
}

beforeAll(async () => {
  [emulator, azurite] = await Promise.all([
    startEmulator({ inMemory: true, args: ['--feedback-delay-ms', '100', '--c2d-ttl-ms', '3000'] }),
    startAzurite(),
  ]);
  services = createApiServicesFromSettings(
    loadSettings({
      IOTHUB_CONNECTION_STRING: emulator.connection.serviceConnectionString,
      IOTHUB_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
      AzureWebJobsStorage: azurite.connectionString,
      FEEDBACK_DRAIN_SECONDS: '1',
    }),
  );
  devices = createDeviceHandlers(() => services);
  messages = createMessageHandlers(() => services);
  feedbackTimer = createFeedbackTimer(() => services);
});

afterAll(async () => {
  await Promise.allSettled(deviceClients.map((client) => client.close()));
  await services?.close();
  await Promise.allSettled([emulator?.stop(), azurite?.stop()]);
});

afterEach(() => {
  for (const line of logs) expect(line).not.toMatch(/SharedAccessKey=[^[]/);
});

describe('C2D through the API', () => {
  it('delivers to a connected MQTT device and records delivered from ack=full feedback', async () => {
    const received = await connectDevice(await createDevice('c2d-api-1'));
    const accepted = await send('c2d-api-1', {
      payload: { command: 'blink', times: 3 },
      messageId: 'api-msg-1',
      correlationId: 'corr-1',
      properties: { priority: 'high' },
      ack: 'full',
    });
    expect(accepted.status).toBe(202);
    expect(json(accepted)).toEqual({
      messageId: 'api-msg-1',
      status: 'enqueued',
      statusUrl: '/api/devices/c2d-api-1/messages/api-msg-1',
    });
    expect(json(await status('c2d-api-1', 'api-msg-1'))).toMatchObject({
      status: 'enqueued',
      ack: 'full',
    });

    const message = await eventually('the device to receive it', () =>
      Promise.resolve(received.find((m) => m.messageId === 'api-msg-1')),
    );
    expect(JSON.parse((message.getData() as Buffer).toString('utf8'))).toEqual({
      command: 'blink',
      times: 3,
    });
    expect(message.correlationId).toBe('corr-1');
    expect(message.contentType).toBe('application/json');
    expect(message.contentEncoding).toBe('utf-8');
    expect(message.properties.getValue('priority')).toBe('high');

    const final = await statusAfterFeedback('c2d-api-1', 'api-msg-1', 'delivered');
    expect(final).toMatchObject({ deviceId: 'c2d-api-1', messageId: 'api-msg-1', ack: 'full' });
  });

  it('with ?wait answers 200 delivered while the feedback timer runs', async () => {
    await connectDevice(await createDevice('c2d-api-2'));
    let stop = false;
    const timerLoop = (async () => {
      while (!stop) await feedbackTimer({} as Timer, context());
    })();
    try {
      const response = await send(
        'c2d-api-2',
        { payload: 'text body', messageId: 'api-wait-1', ack: 'positive' },
        '?wait=20',
      );
      expect(response.status).toBe(200);
      expect(json(response)).toMatchObject({ messageId: 'api-wait-1', status: 'delivered' });
    } finally {
      stop = true;
      await timerLoop;
    }
  });

  it('records expired when the TTL passes on an offline device', async () => {
    await createDevice('c2d-api-3');
    const accepted = await send('c2d-api-3', { payload: 1, messageId: 'api-exp-1', ack: 'full' });
    expect(accepted.status).toBe(202);
    await statusAfterFeedback('c2d-api-3', 'api-exp-1', 'expired');
  });

  it('answers 404 for an unknown device and records nothing', async () => {
    const response = await send('no-such-device', { payload: 1, messageId: 'lost-1' });
    expect(response.status).toBe(404);
    expect(problemType(response)).toBe('device-not-found');
    const missing = await status('no-such-device', 'lost-1');
    expect(missing.status).toBe(404);
    expect(problemType(missing)).toBe('message-not-found');
  });

  it("answers 409 'queue is full' for the 51st message to an offline device", async () => {
    await createDevice('c2d-api-4');
    for (let i = 0; i < 50; i++) {
      // An explicit TTL: the emulator's 3 s default must not drain the queue mid-test.
      const response = await send('c2d-api-4', {
        payload: i,
        messageId: `q-${i}`,
        ttlSeconds: 600,
      });
      expect(response.status).toBe(202);
    }
    const full = await send('c2d-api-4', { payload: 50, messageId: 'q-50' });
    expect(full.status).toBe(409);
    expect(problemType(full)).toBe('device-queue-full');
    expect(json(full).title).toMatch(/queue is full/);
    expect((await status('c2d-api-4', 'q-50')).status).toBe(404);
  });
});

describe('C2D limits through the API', () => {
  // Counted as IoT Hub does: payload + message id + `to` + content type (text/plain) + encoding
  // (utf-8) + property names and values.
  function atLimit(deviceId: string, messageId: string, extra: number) {
    const to = `/devices/${deviceId}/messages/devicebound`;
    const fixed = messageId.length + to.length + 'text/plain'.length + 'utf-8'.length + 2;
    return { payload: 'x'.repeat(64 * 1024 - fixed + extra), messageId, properties: { k: 'v' } };
  }

  it('delivers a message of exactly 64 KB and refuses one byte more with 413', async () => {
    const received = await connectDevice(await createDevice('c2d-api-limit'));
    const accepted = await send('c2d-api-limit', atLimit('c2d-api-limit', 'at-limit', 0));
    expect(accepted.status).toBe(202);
    const message = await eventually('the 64 KB message at the device', () =>
      Promise.resolve(received.find((m) => m.messageId === 'at-limit')),
    );
    expect((message.getData() as Buffer).length).toBe(
      atLimit('c2d-api-limit', 'at-limit', 0).payload.length,
    );

    const refused = await send('c2d-api-limit', atLimit('c2d-api-limit', 'past-limit', 1));
    expect(refused.status).toBe(413);
    expect(problemType(refused)).toBe('payload-too-large');
    expect(json<{ detail: string }>(refused).detail).toMatch(/65536 bytes/);
    expect((await status('c2d-api-limit', 'past-limit')).status).toBe(404);
  });

  it('refuses properties an MQTT topic cannot hold, so they never block the queue', async () => {
    const received = await connectDevice(await createDevice('c2d-api-topic'));
    const refused = await send('c2d-api-topic', {
      payload: 1,
      messageId: 'long-topic',
      properties: { pad: '%'.repeat(30_000) },
    });
    expect(refused.status).toBe(413);
    expect(json<{ detail: string }>(refused).detail).toMatch(/MQTT topic/);
    expect((await send('c2d-api-topic', { payload: 2, messageId: 'after' })).status).toBe(202);
    await eventually('the next message at the device', () =>
      Promise.resolve(received.find((m) => m.messageId === 'after')),
    );
    expect(received.map((m) => m.messageId)).toEqual(['after']);
  });
});

describe('GET /health on the local stack', () => {
  const call = (target: ApiServices) =>
    createHealthHandler(() => target)(
      new HttpRequest({ method: 'GET', url: 'http://localhost:7071/api/health' }),
      context(),
    );

  it('is healthy when the hub (registry and AMQP) and Azurite answer', async () => {
    const response = await call(services);
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({
      status: 'healthy',
      services: {
        iotHubRegistry: { status: 'up' },
        iotHubService: { status: 'up' },
        storage: { status: 'up' },
      },
    });
  });

  it('answers 503 naming storage when the table endpoint does not answer', async () => {
    const noStorage = createApiServicesFromSettings(
      loadSettings({
        IOTHUB_CONNECTION_STRING: emulator.connection.serviceConnectionString,
        IOTHUB_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
        AzureWebJobsStorage: azurite.connectionString.replace(
          /TableEndpoint=[^;]+/,
          'TableEndpoint=http://127.0.0.1:1/devstoreaccount1',
        ),
      }),
    );
    try {
      const response = await call(noStorage);
      expect(response.status).toBe(503);
      const body = json<{ status: string; services: Record<string, { status: string }> }>(response);
      expect(body.status).toBe('unhealthy');
      expect(body.services.storage?.status).toBe('down');
      expect(body.services.iotHubRegistry?.status).toBe('up');
      expect(body.services.iotHubService?.status).toBe('up');
    } finally {
      await noStorage.close();
    }
  });
});

/**
 * The AMQP service adapter on a plain TCP listener (TLS is server.ts's business), driven by a
 * bare rhea client speaking exactly what azure-iothub's `Client` speaks, over a real in-memory
 * core on a fake clock: TTL expiry and feedback batching happen by advancing time, not sleeping.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Server } from 'node:net';
import {
  create_container,
  message as amqpMessage,
  string_to_uuid,
  type Connection,
  type Delivery,
  type EventContext,
  type Receiver,
  type Sender,
} from 'rhea';
import { SharedAccessSignature } from 'azure-iot-common';
import { createServiceAdapter } from '../../amqp/service-adapter';
import { wellKnownHubIdentity } from '../../config';
import type { ProtocolAdapter } from '../../context';
import { FakeClock } from '../../core/clock';
import type { FeedbackRecord, IotHubCore } from '../../core/contracts';
import { createCore } from '../../core/create-core';
import { until } from '../../../test/support/wait';

const hostName = 'localhost:5671';
const owner = wellKnownHubIdentity.policies.find((p) => p.name === 'iothubowner');
const registryOnly = wellKnownHubIdentity.policies.find((p) => p.name === 'registryReadWrite');
const feedbackDelayMs = 1_000;
const waitMs = 5_000;

let clock: FakeClock;
let core: IotHubCore;
let adapter: ProtocolAdapter;
let server: Server;
let port: number;
let logs: string[];
const clients: Connection[] = [];

function token(policy = owner, expirySeconds = Math.floor(clock.now() / 1000) + 3600): string {
  if (!policy) throw new Error('policy missing');
  return SharedAccessSignature.create(
    hostName,
    policy.name,
    policy.primaryKey,
    expirySeconds,
  ).toString();
}

/** Resolves with the first event `name` on `emitter` that `accept` takes; fails after a bound. */
function nextEvent(
  emitter: Connection | Sender | Receiver,
  name: string,
  accept: (context: EventContext) => boolean = () => true,
): Promise<EventContext> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${waitMs} ms`)), waitMs);
    const listener = (context: EventContext) => {
      if (!accept(context)) return;
      clearTimeout(timer);
      emitter.removeListener(name, listener);
      resolve(context);
    };
    emitter.on(name, listener);
  });
}

async function openConnection(): Promise<Connection> {
  const connection = create_container().connect({ host: '127.0.0.1', port, reconnect: false });
  connection.on('error', () => undefined);
  connection.on('disconnected', () => undefined);
  clients.push(connection);
  await nextEvent(connection, 'connection_open');
  return connection;
}

interface CbsReply {
  statusCode: unknown;
  correlationId: unknown;
}

async function putToken(connection: Connection, tokenText: string): Promise<CbsReply> {
  const receiver = connection.open_receiver({
    source: { address: '$cbs' },
    target: { address: 'cbs' },
  });
  const sender = connection.open_sender({ target: { address: '$cbs' } });
  await nextEvent(sender, 'sendable');
  const replied = nextEvent(receiver, 'message');
  sender.send({
    to: '$cbs',
    reply_to: 'cbs',
    message_id: 'put-token-1',
    application_properties: {
      operation: 'put-token',
      type: 'servicebus.windows.net:sastoken',
      name: hostName,
    },
    body: tokenText,
  });
  const { message } = await replied;
  const reply = message as unknown as {
    correlation_id: unknown;
    application_properties: Record<string, unknown>;
  };
  return {
    statusCode: reply.application_properties['status-code'],
    correlationId: reply.correlation_id,
  };
}

async function authorizedConnection(): Promise<Connection> {
  const connection = await openConnection();
  const reply = await putToken(connection, token());
  expect(reply.statusCode).toBe(200);
  return connection;
}

async function c2dSender(connection: Connection): Promise<Sender> {
  const sender = connection.open_sender({ target: { address: '/messages/devicebound' } });
  // Each send in flight waits on its own outcome listeners.
  sender.setMaxListeners(200);
  await nextEvent(sender, 'sendable');
  return sender;
}

type Outcome = { outcome: 'accepted' } | { outcome: 'rejected'; condition: unknown };

function sendC2D(
  sender: Sender,
  deviceId: string,
  fields: Record<string, unknown> = {},
): Promise<Outcome> {
  const delivery: Delivery = sender.send({
    to: `/devices/${encodeURIComponent(deviceId)}/messages/devicebound`,
    body: amqpMessage.data_section(Buffer.from('payload')),
    ...fields,
  });
  return new Promise<Outcome>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no outcome within ${waitMs} ms`)), waitMs);
    const onAccepted = (context: EventContext) => {
      if (context.delivery === delivery) finish({ outcome: 'accepted' });
    };
    const onRejected = (context: EventContext) => {
      if (context.delivery !== delivery) return;
      const state = context.delivery.remote_state as { error?: { condition?: unknown } };
      finish({ outcome: 'rejected', condition: state.error?.condition });
    };
    function finish(result: Outcome | Error): void {
      clearTimeout(timer);
      sender.removeListener('accepted', onAccepted);
      sender.removeListener('rejected', onRejected);
      if (result instanceof Error) reject(result);
      else resolve(result);
    }
    sender.on('accepted', onAccepted);
    sender.on('rejected', onRejected);
  });
}

async function linkRefusal(link: Sender | Receiver, event: string): Promise<unknown> {
  const context = await nextEvent(link, event);
  const error = (context.sender ?? context.receiver)?.error as { condition?: unknown } | undefined;
  return error?.condition;
}

beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2024, 0, 1));
  core = await createCore({ clock, feedbackBatchDelayMs: feedbackDelayMs });
  logs = [];
  const log = (line: string) => logs.push(line);
  adapter = createServiceAdapter({
    core,
    identity: wellKnownHubIdentity,
    hostName,
    log: { info: log, warn: log, error: log },
  });
  server = createServer((socket) => adapter.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const connection of clients.splice(0)) {
    if (!connection.is_closed()) connection.close();
  }
  await adapter.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await core.close();
});

describe('CBS', () => {
  it('answers a valid put-token with status 200 correlated to the request', async () => {
    const connection = await openConnection();
    const reply = await putToken(connection, token());
    expect(reply).toEqual({ statusCode: 200, correlationId: 'put-token-1' });
  });

  it('also serves clients that start with SASL ANONYMOUS', async () => {
    const connection = create_container().connect({
      host: '127.0.0.1',
      port,
      reconnect: false,
      username: 'anonymous',
    });
    connection.on('error', () => undefined);
    connection.on('disconnected', () => undefined);
    clients.push(connection);
    await nextEvent(connection, 'connection_open');
    expect((await putToken(connection, token())).statusCode).toBe(200);
  });

  it('answers 401 to a wrong key, an expired token and a policy without ServiceConnect', async () => {
    const wrongKey = token().replace(/sig=[^&]+/, 'sig=AAAA');
    const expired = token(owner, Math.floor(clock.now() / 1000) - 1);
    for (const bad of [wrongKey, expired, token(registryOnly)]) {
      const connection = await openConnection();
      const reply = await putToken(connection, bad);
      expect(reply.statusCode).toBe(401);
    }
    expect(logs.join('\n')).not.toContain('sig=');
  });

  it('refuses other links until a token was put', async () => {
    const connection = await openConnection();
    const sender = connection.open_sender({ target: { address: '/messages/devicebound' } });
    expect(await linkRefusal(sender, 'sender_error')).toBe('amqp:unauthorized-access');
  });
});

describe('C2D on /messages/devicebound', () => {
  it('enqueues for a registered device with ids, properties, ack and expiry', async () => {
    await core.registry.create({ deviceId: 'dev#1' });
    const sender = await c2dSender(await authorizedConnection());
    const expiry = new Date(clock.now() + 60_000);
    const outcome = await sendC2D(sender, 'dev#1', {
      message_id: string_to_uuid('1b4e28ba-2fa1-41d2-883f-0016d3cca427'),
      correlation_id: 'corr',
      content_type: 'text/plain',
      absolute_expiry_time: expiry,
      application_properties: { 'iothub-ack': 'positive', color: 'blue' },
    });
    expect(outcome).toEqual({ outcome: 'accepted' });
    const queued = core.c2d.lockNext('dev#1');
    expect(queued).toMatchObject({
      deviceId: 'dev#1',
      messageId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
      correlationId: 'corr',
      contentType: 'text/plain',
      expiryTime: expiry.getTime(),
      ack: 'positive',
      properties: { color: 'blue' },
    });
    expect(queued?.body.toString()).toBe('payload');
  });

  it('rejects an unknown device with amqp:not-found', async () => {
    const sender = await c2dSender(await authorizedConnection());
    expect(await sendC2D(sender, 'nobody')).toEqual({
      outcome: 'rejected',
      condition: 'amqp:not-found',
    });
    expect(logs.some((line) => line.includes('nobody') && line.includes('DeviceNotFound'))).toBe(
      true,
    );
  });

  it('rejects the 51st queued message with amqp:resource-limit-exceeded', async () => {
    await core.registry.create({ deviceId: 'offline' });
    const sender = await c2dSender(await authorizedConnection());
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () => sendC2D(sender, 'offline')),
    );
    expect(outcomes.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(await sendC2D(sender, 'offline')).toEqual({
      outcome: 'rejected',
      condition: 'amqp:resource-limit-exceeded',
    });
    expect(core.c2d.depth('offline')).toBe(50);
  });

  it('rejects a malformed message with amqp:invalid-field', async () => {
    await core.registry.create({ deviceId: 'dev' });
    const sender = await c2dSender(await authorizedConnection());
    expect(
      await sendC2D(sender, 'dev', { application_properties: { 'iothub-ack': 'maybe' } }),
    ).toEqual({ outcome: 'rejected', condition: 'amqp:invalid-field' });
    expect(await sendC2D(sender, 'dev', { to: '/devices/dev/messages/events' })).toEqual({
      outcome: 'rejected',
      condition: 'amqp:invalid-field',
    });
  });
});

describe('feedback on /messages/serviceBound/feedback', () => {
  feedbackBatchTests();
  serviceBoundLinkTests();
});

/** A receiver on the feedback link, settling what it gets itself unless `autoaccept`. */
function feedbackReceiver(connection: Connection, autoaccept: boolean): Receiver {
  return connection.open_receiver({
    source: { address: '/messages/serviceBound/feedback' },
    autoaccept,
  });
}

/** The feedback records in a feedback message's JSON body. */
function records(context: EventContext): FeedbackRecord[] {
  const body = (context.message as unknown as { body: { content: Buffer } }).body;
  return JSON.parse(body.content.toString('utf8')) as FeedbackRecord[];
}

/** Feedback batches delivered, settled once accepted, and handed out again once released. */
function feedbackBatchTests(): void {
  it('delivers Expired feedback for an expired message and forgets the batch once accepted', async () => {
    await core.registry.create({ deviceId: 'dev' });
    const connection = await authorizedConnection();
    const sender = await c2dSender(connection);
    const settle = jest.spyOn(core.feedback, 'settle');
    const receiver = feedbackReceiver(connection, true);
    await nextEvent(receiver, 'receiver_open');
    await sendC2D(sender, 'dev', {
      message_id: 'original-1',
      absolute_expiry_time: new Date(clock.now() + 10_000),
      application_properties: { 'iothub-ack': 'full' },
    });
    const arrived = nextEvent(receiver, 'message');
    clock.advance(10_000 + feedbackDelayMs);
    const context = await arrived;
    expect((context.message as unknown as { content_type: unknown }).content_type).toBe(
      'application/vnd.microsoft.iothub.feedback.json',
    );
    expect(records(context)).toEqual([
      expect.objectContaining({
        originalMessageId: 'original-1',
        deviceId: 'dev',
        statusCode: 'Expired',
      }),
    ]);
    // Accepted by the client (autoaccept): settled in the core for good.
    const batchId = (context.message as unknown as { message_id: unknown }).message_id;
    await waitFor('the batch settled', () => settle.mock.calls.some(([id]) => id === batchId));
  });

  it('hands a released batch out again', async () => {
    await core.registry.create({ deviceId: 'dev' });
    const connection = await authorizedConnection();
    await sendC2D(await c2dSender(connection), 'dev', {
      message_id: 'm-released',
      application_properties: { 'iothub-ack': 'positive' },
    });
    const locked = core.c2d.lockNext('dev');
    if (!locked) throw new Error('nothing queued');
    await core.c2d.complete('dev', locked.lockToken);

    const settle = jest.spyOn(core.feedback, 'settle');
    const release = jest.spyOn(core.feedback, 'release');
    const receiver = feedbackReceiver(connection, false);
    const first = nextEvent(receiver, 'message');
    clock.advance(feedbackDelayMs);
    const firstContext = await first;
    expect(records(firstContext)[0]).toMatchObject({
      originalMessageId: 'm-released',
      statusCode: 'Success',
    });
    const again = nextEvent(receiver, 'message');
    firstContext.delivery?.release();
    const secondContext = await again;
    expect(records(secondContext)[0]?.originalMessageId).toBe('m-released');
    expect(release).toHaveBeenCalledTimes(1);
    secondContext.delivery?.accept();
    await waitFor('one settle', () => settle.mock.calls.length === 1);
  });
}

/** The other service-bound links: file notifications, unknown addresses, device links. */
function serviceBoundLinkTests(): void {
  it('opens file notifications as a link that stays empty, and refuses unknown addresses', async () => {
    const connection = await authorizedConnection();
    const notifications = connection.open_receiver({
      source: { address: '/messages/serviceBound/filenotifications' },
    });
    await nextEvent(notifications, 'receiver_open');
    expect(notifications.error).toBeUndefined();
    const unknown = connection.open_receiver({
      source: { address: '/messages/serviceBound/other' },
    });
    expect(await linkRefusal(unknown, 'receiver_error')).toBe('amqp:not-implemented');
    const unknownTarget = connection.open_sender({
      target: { address: '/devices/x/modules/m/messages/events' },
    });
    expect(await linkRefusal(unknownTarget, 'sender_error')).toBe('amqp:not-implemented');
    // Device links are served, but a policy's token does not open them.
    const deviceLink = connection.open_sender({
      target: { address: '/devices/x/messages/events' },
    });
    expect(await linkRefusal(deviceLink, 'sender_error')).toBe('amqp:unauthorized-access');
    expect(notifications.is_open()).toBe(true);
  });
}

describe('robustness', () => {
  it("refuses frames over the server's smaller limit in its own guard, the stream's only parse", async () => {
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const limited = createServiceAdapter(
      { core, identity: wellKnownHubIdentity, hostName, log: { info: log, warn: log, error: log } },
      { maxFrameBytes: 1024 },
    );
    const limitedServer = createServer((socket) => limited.handle(socket));
    await new Promise<void>((resolve) => limitedServer.listen(0, '127.0.0.1', resolve));
    try {
      const frame = Buffer.alloc(2048);
      frame.writeUInt32BE(2048, 0);
      await new Promise<void>((resolve) => {
        const { port: limitedPort } = limitedServer.address() as AddressInfo;
        const socket = tcpConnect(limitedPort, '127.0.0.1', () =>
          socket.write(Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), frame])),
        );
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
      });
      // The guard logs before it destroys the socket, so the line is there once the socket closed.
      expect(lines).toContainEqual(
        expect.stringContaining('dropping connection: frame of 2048 bytes exceeds 1024'),
      );
    } finally {
      await limited.close();
      await new Promise<void>((resolve) => limitedServer.close(() => resolve()));
    }
  });

  async function sendRaw(bytes: Buffer): Promise<void> {
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1', () => socket.write(bytes));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.setTimeout(waitMs, () => socket.destroy());
    });
  }

  it('drops garbage and oversized frames without disturbing other clients', async () => {
    await core.registry.create({ deviceId: 'dev' });
    const connection = await authorizedConnection();
    const sender = await c2dSender(connection);

    const header = Buffer.from('AMQP\x00\x01\x00\x00', 'latin1');
    const hugeFrame = Buffer.alloc(16);
    hugeFrame.writeUInt32BE(0x7fffffff, 0);
    const garbage = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256));
    await sendRaw(Buffer.concat([header, hugeFrame]));
    await sendRaw(Buffer.concat([header, Buffer.from([0, 0, 0, 16]), garbage]));
    await sendRaw(Buffer.from('AMQP\x09\x09\x09\x09', 'latin1'));

    expect(await sendC2D(sender, 'dev')).toEqual({ outcome: 'accepted' });
    expect(
      logs.some((line) => line.includes('dropping connection: frame of 2147483647 bytes exceeds')),
    ).toBe(true);
  });
});

/** What the adapter does with a frame shows only after it crossed the loopback socket. */
function waitFor(what: string, condition: () => boolean): Promise<true> {
  return until(what, () => condition() || undefined, waitMs, 10);
}

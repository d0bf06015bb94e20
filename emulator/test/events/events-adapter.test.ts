/**
 * The Event Hub-compatible endpoint in process: a real in-memory core, the adapter behind a
 * loopback TCP listener on an ephemeral port, and the unmodified @azure/event-hubs client (plus
 * raw rhea for what the SDK cannot send: MSSBCBS, bad filters, senders, garbage). Events enter
 * straight through `core.d2c.append`; the MQTT path is covered by the conformance suite.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { create_container, types, type Connection, type EventContext, type Message } from 'rhea';
import { laterAttachAnswered } from '../../../test/support/amqp-round-trip';
import { wellKnownHubIdentity } from '../../config';
import type { EmulatorContext, ProtocolAdapter } from '../../context';
import type { IotHubCore, StoredEvent, TelemetryInput } from '../../core/contracts';
import { FakeClock } from '../../core/clock';
import type { CreateCoreOptions } from '../../core/create-core';
import { createCore } from '../../core/create-core';
import { createEventsAdapter } from '../../events/events-adapter';

const hubName = wellKnownHubIdentity.hubName;
const servicePolicy = wellKnownHubIdentity.policies.find((p) => p.name === 'service')!;

interface Endpoint {
  core: IotHubCore;
  /** Starts at the real time (SAS expiry is checked against it); tests move it forward. */
  clock: FakeClock;
  port: number;
  logs: string[];
  adapter: ProtocolAdapter;
  connectionString(key?: string, entityPath?: string): string;
  close(): Promise<void>;
}

async function startEndpoint(
  consumerGroups: string[] = ['processors'],
  coreOptions: CreateCoreOptions = {},
): Promise<Endpoint> {
  const clock = new FakeClock(Date.now());
  const core = await createCore({ clock, partitionCount: 2, ...coreOptions });
  const logs: string[] = [];
  const sockets = new Set<Socket>();
  // The adapter needs the bound port (its host name), so it is created after listening.
  const holder: { adapter?: ProtocolAdapter } = {};
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    holder.adapter?.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ctx: EmulatorContext = {
    core,
    identity: wellKnownHubIdentity,
    hostName: `localhost:${port}`,
    log: {
      info: (m) => logs.push(`info ${m}`),
      warn: (m) => logs.push(`warn ${m}`),
      error: (m) => logs.push(`error ${m}`),
    },
  };
  const adapter = createEventsAdapter(ctx, { consumerGroups });
  holder.adapter = adapter;
  return {
    core,
    clock,
    adapter,
    port,
    logs,
    connectionString: (key = servicePolicy.primaryKey, entityPath = hubName) =>
      `Endpoint=sb://localhost:${port}/;SharedAccessKeyName=service;SharedAccessKey=${key};EntityPath=${entityPath};UseDevelopmentEmulator=true`,
    async close() {
      await adapter.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await core.close();
    },
  };
}

function telemetry(
  deviceId: string,
  text: string,
  extra: Partial<TelemetryInput> = {},
): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from(text, 'utf8'),
    properties: {},
    generationId: '638000000000000000',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    ...extra,
  };
}

/** A device id that the core maps onto the wanted partition. */
function deviceOn(core: IotHubCore, partitionId: string, prefix = 'dev'): string {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    if (core.d2c.partitionOf(id) === partitionId) return id;
  }
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Collector {
  events: ReceivedEventData[];
  errors: Error[];
  /** processEvents calls, empty ones included (one per max wait once the link is reading). */
  batches: number;
  subscription: Subscription;
}

function collect(
  client: EventHubConsumerClient,
  partitionId: string,
  options: Parameters<EventHubConsumerClient['subscribe']>[2],
): Collector {
  const collector = { events: [], errors: [], batches: 0 } as unknown as Collector;
  collector.subscription = client.subscribe(
    partitionId,
    {
      processEvents: (batch) => {
        collector.batches++;
        collector.events.push(...batch);
        return Promise.resolve();
      },
      processError: (error) => {
        collector.errors.push(error);
        return Promise.resolve();
      },
    },
    { maxWaitTimeInSeconds: 1, ...options },
  );
  return collector;
}

describe('Event Hub-compatible endpoint (in process, @azure/event-hubs)', () => {
  const ctx = sdkEndpointEachTest();
  propertiesAndAuthTests(ctx);
  receiveTests(ctx);
  startPositionAndMetricsTests(ctx);
  consumerGroupAndOwnerTests(ctx);
});

/** What a group of SDK tests sees: the current test's endpoint, and clients on it. */
interface SdkContext {
  /** A new endpoint for each test. */
  readonly endpoint: Endpoint;
  /** A consumer client on the endpoint, closed after the test. */
  client(consumerGroup?: string, key?: string, entityPath?: string): EventHubConsumerClient;
}

/** Each test gets its own endpoint; after it, its clients and the endpoint are closed. */
function sdkEndpointEachTest(): SdkContext {
  let endpoint: Endpoint;
  const clients: EventHubConsumerClient[] = [];

  beforeEach(async () => {
    endpoint = await startEndpoint();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await endpoint.close();
  });

  function client(
    consumerGroup = '$Default',
    key?: string,
    entityPath?: string,
  ): EventHubConsumerClient {
    const c = new EventHubConsumerClient(
      consumerGroup,
      endpoint.connectionString(key, entityPath),
      {
        retryOptions: { maxRetries: 0, timeoutInMs: 10_000 },
      },
    );
    clients.push(c);
    return c;
  }
  return {
    get endpoint(): Endpoint {
      return endpoint;
    },
    client,
  };
}

/** Hub and partition properties, unknown entities, and a refused key. */
function propertiesAndAuthTests(ctx: SdkContext): void {
  const { client } = ctx;

  test('hub and partition properties, empty and after an append', async () => {
    const c = client();
    const hub = await c.getEventHubProperties();
    expect(hub.name).toBe(hubName);
    expect(hub.partitionIds).toEqual(['0', '1']);
    expect(hub.createdOn).toBeInstanceOf(Date);

    const empty = await c.getPartitionProperties('0');
    expect(empty).toMatchObject({
      eventHubName: hubName,
      partitionId: '0',
      isEmpty: true,
      lastEnqueuedSequenceNumber: -1,
    });

    const device = deviceOn(ctx.endpoint.core, '1');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'a'));
    const second = await ctx.endpoint.core.d2c.append(telemetry(device, 'b'));
    const filled = await c.getPartitionProperties('1');
    expect(filled).toMatchObject({
      partitionId: '1',
      isEmpty: false,
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 1,
      lastEnqueuedOffset: second.offset,
    });
    expect(filled.lastEnqueuedOnUtc.getTime()).toBe(second.enqueuedTime);
  });

  test('unknown partition and unknown hub answer not found', async () => {
    await expect(client().getPartitionProperties('7')).rejects.toMatchObject({
      code: 'MessagingEntityNotFoundError',
    });
    await expect(
      client('$Default', undefined, 'other-hub').getEventHubProperties(),
    ).rejects.toMatchObject({
      code: 'MessagingEntityNotFoundError',
    });
  });

  test('a wrong key is refused by CBS', async () => {
    const wrongKey = Buffer.from('not the service key at all').toString('base64');
    await expect(client('$Default', wrongKey).getEventHubProperties()).rejects.toMatchObject({
      code: 'UnauthorizedError',
    });
    expect(ctx.endpoint.logs.some((l) => l.startsWith('warn') && l.includes('refused'))).toBe(true);
    expect(ctx.endpoint.logs.join('\n')).not.toContain(wrongKey);
  });
}

/** Reading from the earliest and the latest position. */
function receiveTests(ctx: SdkContext): void {
  const { client } = ctx;

  test('receives from earliest with IoT Hub annotations, properties and body bytes intact', async () => {
    const device = deviceOn(ctx.endpoint.core, '0');
    const body = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    await ctx.endpoint.core.d2c.append(
      telemetry(device, '', {
        body,
        properties: { alert: 'true', 'key with spaces': 'ünïcode & more' },
        messageId: 'msg-1',
        correlationId: 'corr-1',
        userId: 'user-1',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
      }),
    );
    const got = collect(client(), '0', {
      startPosition: earliestEventPosition,
      skipParsingBodyAsJson: true,
    });
    const [event] = await waitFor('the event', () => (got.events.length ? got.events : undefined));
    expect(got.errors).toEqual([]);
    expect(Buffer.from(event!.body as Uint8Array)).toEqual(body);
    expect(event!.properties).toEqual({ alert: 'true', 'key with spaces': 'ünïcode & more' });
    expect(event!.messageId).toBe('msg-1');
    expect(event!.correlationId).toBe('corr-1');
    expect(event!.contentType).toBe('application/json');
    expect(event!.sequenceNumber).toBe(0);
    expect(event!.offset).toBe('0');
    expect(event!.systemProperties).toMatchObject({
      'iothub-connection-device-id': device,
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-message-source': 'Telemetry',
      'iothub-connection-auth-method': expect.stringContaining('"sas"') as unknown,
    });
    expect(typeof event!.systemProperties!['iothub-enqueuedtime']).toBe('number');
    expect(event!.systemProperties).toMatchObject({
      userId: Buffer.from('user-1'),
      contentEncoding: 'utf-8',
    });
    await got.subscription.close();
  });

  test('receives only new events from latest, and wakes when the partition grows', async () => {
    const device = deviceOn(ctx.endpoint.core, '1');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'old'));
    const got = collect(client(), '1', { startPosition: latestEventPosition });
    // An empty batch means the link is attached and reading; only then append.
    await waitFor('an empty batch', () => (got.batches > 0 ? true : undefined));
    expect(got.events).toEqual([]);
    await ctx.endpoint.core.d2c.append(telemetry(device, 'new-1'));
    await ctx.endpoint.core.d2c.append(telemetry(device, 'new-2'));
    await waitFor('two events', () => (got.events.length >= 2 ? true : undefined));
    expect(got.events.map((e) => String(e.body))).toEqual(['new-1', 'new-2']);
    expect(got.events.map((e) => e.sequenceNumber)).toEqual([1, 2]);
    await got.subscription.close();
  });
}

/** Other start positions, and the last enqueued event's properties. */
function startPositionAndMetricsTests(ctx: SdkContext): void {
  const { client } = ctx;

  test('starts from a sequence number (exclusive and inclusive) and from an enqueued time', async () => {
    const device = deviceOn(ctx.endpoint.core, '0');
    const stored: StoredEvent[] = [];
    for (let i = 0; i < 5; i++) {
      stored.push(await ctx.endpoint.core.d2c.append(telemetry(device, `e${i}`)));
      ctx.endpoint.clock.advance(1000);
    }
    const exclusive = collect(client(), '0', { startPosition: { sequenceNumber: 2 } });
    const inclusive = collect(client(), '0', {
      startPosition: { sequenceNumber: 2, isInclusive: true },
    });
    const byOffset = collect(client(), '0', { startPosition: { offset: stored[3]!.offset } });
    await waitFor('exclusive', () => (exclusive.events.length >= 2 ? true : undefined));
    await waitFor('inclusive', () => (inclusive.events.length >= 3 ? true : undefined));
    await waitFor('by offset', () => (byOffset.events.length >= 1 ? true : undefined));
    expect(exclusive.events.map((e) => e.sequenceNumber)).toEqual([3, 4]);
    expect(inclusive.events.map((e) => e.sequenceNumber)).toEqual([2, 3, 4]);
    expect(byOffset.events.map((e) => e.sequenceNumber)).toEqual([4]);

    const byTime = collect(client(), '0', {
      startPosition: { enqueuedOn: new Date(stored[2]!.enqueuedTime) },
    });
    await waitFor('by time', () => (byTime.events.length >= 2 ? true : undefined));
    // The SDK asks for events enqueued strictly after the given time.
    expect(byTime.events.map((e) => e.sequenceNumber)).toEqual([3, 4]);
    await Promise.all([exclusive, inclusive, byOffset, byTime].map((g) => g.subscription.close()));
  });

  test('tracks last enqueued event properties (runtime metrics)', async () => {
    const device = deviceOn(ctx.endpoint.core, '1');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'x'));
    const last = await ctx.endpoint.core.d2c.append(telemetry(device, 'y'));
    const c = client();
    const seen: Array<{
      sequenceNumber?: number;
      offset?: string;
      enqueuedOn?: Date;
      retrievedOn?: Date;
    }> = [];
    const subscription = c.subscribe(
      '1',
      {
        processEvents: (events, context) => {
          if (events.length) seen.push({ ...context.lastEnqueuedEventProperties });
          return Promise.resolve();
        },
        processError: () => Promise.resolve(),
      },
      {
        startPosition: earliestEventPosition,
        trackLastEnqueuedEventProperties: true,
        maxWaitTimeInSeconds: 1,
      },
    );
    const props = await waitFor('runtime metrics', () => seen[0]);
    expect(props.sequenceNumber).toBe(1);
    expect(props.offset).toBe(last.offset);
    expect(props.enqueuedOn?.getTime()).toBe(last.enqueuedTime);
    expect(props.retrievedOn).toBeInstanceOf(Date);
    await subscription.close();
  });
}

/** Consumer groups and owner levels (epochs). */
function consumerGroupAndOwnerTests(ctx: SdkContext): void {
  const { client } = ctx;

  test('consumer groups: configured ones work case-insensitively, unknown ones are not found', async () => {
    const device = deviceOn(ctx.endpoint.core, '0');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'cg'));
    const ok = collect(client('PROCESSORS'), '0', { startPosition: earliestEventPosition });
    await waitFor('event in configured group', () => (ok.events.length ? true : undefined));
    const bad = collect(client('nope'), '0', { startPosition: earliestEventPosition });
    const error = await waitFor('not-found error', () => bad.errors[0]);
    expect(error).toMatchObject({ code: 'MessagingEntityNotFoundError' });
    expect(bad.events).toEqual([]);
    await Promise.all([ok.subscription.close(), bad.subscription.close()]);
  });

  test('a higher owner level steals the partition; a lower one is refused', async () => {
    const device = deviceOn(ctx.endpoint.core, '0');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'one'));
    const first = collect(client(), '0', { startPosition: earliestEventPosition, ownerLevel: 1 });
    await waitFor('first reads', () => (first.events.length ? true : undefined));
    const second = collect(client(), '0', { startPosition: earliestEventPosition, ownerLevel: 2 });
    const stolen = await waitFor('stolen error', () => first.errors[0]);
    expect(stolen).toMatchObject({ code: 'ReceiverDisconnectedError' });
    await waitFor('second reads', () => (second.events.length ? true : undefined));
    const lower = collect(client(), '0', { startPosition: earliestEventPosition, ownerLevel: 1 });
    const refused = await waitFor('refused error', () => lower.errors[0]);
    expect(refused).toMatchObject({ code: 'ReceiverDisconnectedError' });
    expect(second.errors).toEqual([]);
    await Promise.all([first, second, lower].map((g) => g.subscription.close()));
  });
}

describe('Event Hub-compatible endpoint (in process, raw AMQP)', () => {
  const ctx = rawEndpointEachTest();
  cbsAndRefusalTests(ctx);
  limitAndCloseTests(ctx);
  garbageTests(ctx);
});

/** What a group of raw AMQP tests sees: the current test's endpoint, and connections to it. */
interface RawContext {
  /** A new endpoint for each test. */
  readonly endpoint: Endpoint;
  /** A rhea connection to the endpoint with the given SASL mechanism, closed after the test. */
  rheaConnect(mechanism: 'ANONYMOUS' | 'MSSBCBS'): Promise<Connection>;
}

/** Each test gets its own endpoint; after it, its connections and the endpoint are closed. */
function rawEndpointEachTest(): RawContext {
  let endpoint: Endpoint;
  const open: Connection[] = [];

  beforeEach(async () => {
    endpoint = await startEndpoint();
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await endpoint.close();
  });

  function rheaConnect(mechanism: 'ANONYMOUS' | 'MSSBCBS'): Promise<Connection> {
    const container = create_container();
    const mechanisms = container.sasl.client_mechanisms() as Record<string, unknown>;
    mechanisms[mechanism] = () => ({
      start: (callback: (error: unknown, response: Buffer) => void) =>
        callback(undefined, Buffer.alloc(0)),
    });
    const connection = container.connect({
      host: '127.0.0.1',
      port: endpoint.port,
      reconnect: false,
      sasl_mechanisms: mechanisms,
    } as Parameters<typeof container.connect>[0]);
    open.push(connection);
    return new Promise((resolve, reject) => {
      connection.once('connection_open', () => resolve(connection));
      connection.once('connection_error', (context: EventContext) =>
        reject(new Error(`connection refused: ${JSON.stringify(context.connection.error)}`)),
      );
      connection.once('disconnected', (context: EventContext) =>
        reject(context.error ?? new Error('disconnected')),
      );
    });
  }
  return {
    get endpoint(): Endpoint {
      return endpoint;
    },
    rheaConnect,
  };
}

/** A service-policy SAS token for `audience`, valid for an hour. */
function token(audience: string): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = createHmac('sha256', Buffer.from(servicePolicy.primaryKey, 'utf8'))
    .update(`${sr}\n${se}`)
    .digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=service`;
}

/** put-token over $cbs; resolves with the reply's status code (as decoded, plus its AMQP type). */
function putToken(
  connection: Connection,
  audience: string,
): Promise<{ status: unknown; correlated: boolean }> {
  return new Promise((resolve) => {
    const replyTo = `cbs-reply-${Math.random().toString(16).slice(2)}`;
    const receiver = connection.open_receiver({
      source: { address: '$cbs' },
      target: { address: replyTo },
      name: replyTo,
    });
    const sender = connection.open_sender({ target: { address: '$cbs' } });
    const messageId = `req-${Math.random()}`;
    receiver.on('message', (context: EventContext) => {
      const reply = context.message as Message;
      resolve({
        status: (reply.application_properties as Record<string, unknown>)['status-code'],
        correlated: reply.correlation_id === messageId,
      });
    });
    sender.once('sendable', () => {
      sender.send({
        message_id: messageId,
        reply_to: replyTo,
        body: token(audience),
        application_properties: {
          operation: 'put-token',
          name: audience,
          type: 'servicebus.windows.net:sastoken',
        },
      });
    });
  });
}

/** Attaches a receiver; resolves with whether it stayed open, or the error it was refused with. */
function attachReceiver(
  connection: Connection,
  address: string,
  filter?: string,
): Promise<{ opened: boolean; error?: { condition?: string } }> {
  return new Promise((resolve) => {
    const receiver = connection.open_receiver({
      source: {
        address,
        ...(filter !== undefined
          ? {
              filter: {
                'apache.org:selector-filter:string': types.wrap_described(filter, 0x468c00000004),
              },
            }
          : {}),
      },
      credit_window: 10,
      snd_settle_mode: 1,
    });
    receiver.once('receiver_error', (context: EventContext) => {
      resolve({ opened: false, error: context.receiver?.error as { condition?: string } });
    });
    receiver.once('receiver_open', () => {
      // A refusal is an attach immediately followed by a detach: by the time a later attach
      // is answered, it has arrived.
      void laterAttachAnswered(connection).then(() =>
        resolve({ opened: receiver.is_open() && !receiver.error }),
      );
    });
  });
}

/** CBS over MSSBCBS, and the links the endpoint refuses. */
function cbsAndRefusalTests(ctx: RawContext): void {
  const { rheaConnect } = ctx;

  test('MSSBCBS SASL, CBS reply typed as int and correlated, pre-settled events', async () => {
    const connection = await rheaConnect('MSSBCBS');
    const audience = `amqp://localhost:${ctx.endpoint.port}/${hubName}/ConsumerGroups/$default/Partitions/0`;
    const reply = await putToken(connection, audience);
    expect(reply).toEqual({ status: 200, correlated: true });
    const device = deviceOn(ctx.endpoint.core, '0');
    await ctx.endpoint.core.d2c.append(telemetry(device, 'presettled'));
    const received = await new Promise<{ settled: boolean; message: Message }>((resolve) => {
      const receiver = connection.open_receiver({
        source: {
          address: `/${hubName}/ConsumerGroups/$Default/Partitions/0`,
          filter: {
            'apache.org:selector-filter:string': types.wrap_described(
              "amqp.annotation.x-opt-offset > '-1'",
              'apache.org:selector-filter:string',
            ),
          },
        },
        snd_settle_mode: 1,
        credit_window: 5,
      });
      receiver.once('message', (context: EventContext) =>
        resolve({
          settled: Boolean(context.delivery?.remote_settled),
          message: context.message as Message,
        }),
      );
    });
    expect(received.settled).toBe(true);
    expect(received.message.message_annotations?.['x-opt-sequence-number']).toBe(0);
    expect(received.message.message_annotations?.['iothub-connection-device-id']).toBe(device);
  });

  test('links without a token, bad filters and senders are refused with their conditions', async () => {
    const connection = await rheaConnect('ANONYMOUS');
    const partition = `${hubName}/ConsumerGroups/$Default/Partitions/1`;
    expect(await attachReceiver(connection, partition)).toMatchObject({
      opened: false,
      error: { condition: 'amqp:unauthorized-access' },
    });
    await putToken(connection, `sb://localhost:${ctx.endpoint.port}/${hubName}`);
    expect(
      await attachReceiver(connection, partition, "amqp.annotation.x-opt-offset > 'banana'"),
    ).toMatchObject({
      opened: false,
      error: { condition: 'amqp:invalid-field' },
    });
    expect(await attachReceiver(connection, partition, 'DROP TABLE events')).toMatchObject({
      opened: false,
      error: { condition: 'amqp:invalid-field' },
    });
    expect(
      await attachReceiver(connection, `${hubName}/ConsumerGroups/$Default/Partitions/9`),
    ).toMatchObject({
      opened: false,
      error: { condition: 'amqp:not-found' },
    });
    expect(
      await attachReceiver(connection, partition, "amqp.annotation.x-opt-sequence-number >= '0'"),
    ).toEqual({
      opened: true,
    });
    const senderError = await new Promise<{ condition?: string } | undefined>((resolve) => {
      const sender = connection.open_sender({ target: { address: hubName } });
      sender.once('sender_error', (context: EventContext) =>
        resolve(context.sender?.error as { condition?: string }),
      );
    });
    expect(senderError).toMatchObject({ condition: 'amqp:not-implemented' });
  });
}

/** The readers-per-partition limit, and closing the adapter. */
function limitAndCloseTests(ctx: RawContext): void {
  const { rheaConnect } = ctx;

  test('at most five non-epoch readers per partition and group', async () => {
    const connection = await rheaConnect('ANONYMOUS');
    await putToken(connection, `sb://localhost:${ctx.endpoint.port}/${hubName}`);
    const partition = `${hubName}/ConsumerGroups/$Default/Partitions/0`;
    for (let i = 0; i < 5; i++)
      expect(await attachReceiver(connection, partition)).toEqual({ opened: true });
    expect(await attachReceiver(connection, partition)).toMatchObject({
      opened: false,
      error: { condition: 'amqp:resource-limit-exceeded' },
    });
  });

  test('close() ends live connections with amqp:connection:forced and turns new ones away', async () => {
    const connection = await rheaConnect('ANONYMOUS');
    const closed = new Promise<unknown>((resolve) => {
      connection.once('connection_error', (context: EventContext) =>
        resolve(context.connection.error),
      );
      connection.once('disconnected', () => resolve('disconnected'));
    });
    await ctx.endpoint.adapter.close();
    expect(await closed).toMatchObject({ condition: 'amqp:connection:forced' });
    const refused = await new Promise<boolean>((resolve) => {
      const socket = netConnect(ctx.endpoint.port, '127.0.0.1');
      socket.on('error', () => resolve(true));
      socket.on('close', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
}

/** Bytes that are not AMQP. */
function garbageTests(ctx: RawContext): void {
  test('garbage never crashes the endpoint and never disturbs another client', async () => {
    const garbage = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([
        0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01,
      ]),
      Buffer.from([
        0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00,
        0x00,
      ]),
      Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), Buffer.alloc(64, 0xab)]),
    ];
    for (const bytes of garbage) {
      await new Promise<void>((resolve) => {
        const socket = netConnect(ctx.endpoint.port, '127.0.0.1', () => socket.end(bytes));
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
      });
    }
    // A frame announcing 2 GiB: the endpoint drops the connection instead of buffering it.
    const dropped = await new Promise<boolean>((resolve) => {
      const socket = netConnect(ctx.endpoint.port, '127.0.0.1', () => {
        socket.write(Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'));
        socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00]));
        socket.write(Buffer.alloc(64 * 1024, 0x11));
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(true));
      socket.resume();
    });
    expect(dropped).toBe(true);
    expect(
      ctx.endpoint.logs.some((l) => l.includes('refused connection: frame of 2147483647')),
    ).toBe(true);
    const c = new EventHubConsumerClient('$Default', ctx.endpoint.connectionString());
    try {
      expect((await c.getEventHubProperties()).partitionIds).toEqual(['0', '1']);
    } finally {
      await c.close();
    }
  });
}

describe('Event Hub-compatible endpoint over the on-disk log (durable, tiny cache and segments)', () => {
  let dataDir: string;
  let endpoint: Endpoint;
  const consumers: EventHubConsumerClient[] = [];
  /** One client per reader (a client holds one subscription per partition). */
  const consumer = (): EventHubConsumerClient => {
    const c = new EventHubConsumerClient('$Default', endpoint.connectionString(), {
      retryOptions: { maxRetries: 0, timeoutInMs: 10_000 },
    });
    consumers.push(c);
    return c;
  };

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'iothub-events-disk-'));
    endpoint = await startEndpoint(undefined, {
      dataDir,
      retentionMs: 60_000,
      storeTuning: { segmentBytes: 4096 },
      d2cCacheBytes: 600,
    });
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()));
    await endpoint.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a consumer resuming from an offset, a sequence number or a time reads exactly what follows, across segments and after retention', async () => {
    const device = deviceOn(endpoint.core, '0');
    const stored: StoredEvent[] = [];
    for (let i = 0; i < 100; i++) {
      stored.push(await endpoint.core.d2c.append(telemetry(device, `event-${i}`)));
      endpoint.clock.advance(1000);
    }
    const segments = readdirSync(join(dataDir, 'store')).filter((n) => /^d2c-.*\.log$/.test(n));
    expect(segments.length).toBeGreaterThan(3);
    endpoint.core.d2c.info('0'); // retention: events older than 60 s go, whole segments with them
    const kept = stored.filter((e) => e.enqueuedTime >= endpoint.clock.now() - 60_000);
    expect(kept.length).toBeLessThan(stored.length);
    const after = (n: number): number[] =>
      kept.filter((e) => e.sequenceNumber > n).map((e) => e.sequenceNumber);

    const positions = {
      offset: { offset: stored[50]!.offset },
      sequence: { sequenceNumber: 70 },
      time: { enqueuedOn: new Date(stored[45]!.enqueuedTime) },
      // A checkpoint retention has passed: the consumer starts at the new beginning.
      expired: { sequenceNumber: 5 },
    };
    const expected = {
      offset: after(50),
      sequence: after(70),
      time: after(45),
      expired: after(-1),
    };
    const readers = Object.entries(positions).map(
      ([name, startPosition]) => [name, collect(consumer(), '0', { startPosition })] as const,
    );
    for (const [name, reader] of readers) {
      const want = expected[name as keyof typeof expected];
      await waitFor(name, () => (reader.events.length >= want.length ? true : undefined));
      expect(reader.events.map((e) => e.sequenceNumber)).toEqual(want);
      expect(reader.events.map((e) => e.body as unknown)).toEqual(
        want.map((n) => Buffer.from(`event-${n}`)),
      );
      expect(reader.errors).toEqual([]);
    }
    await Promise.all(readers.map(([, reader]) => reader.subscription.close()));
  });
});

/**
 * The invocation pipeline with the real `@azure/functions` library: Jest's module registry has its
 * own resolution (it does not see `core-link.ts`' search path), so the core module is supplied with a
 * virtual mock of the same object.
 */
import type { ReceivedEventData } from '@azure/event-hubs';
import type { InvocationContext } from '@azure/functions';
import { FunctionsCore, activateCore } from '../../../../devhost/host/core-api';
import type { RegisteredFunction } from '../../../../devhost/host/core-api';
import { toEventHubInvocationData } from '../../../../devhost/host/eventhub/convert';
import { toRpcHttpRequest, fromRpcHttpResponse } from '../../../../devhost/host/http/convert';
import { findHttpOutput } from '../../../../devhost/host/http/server';
import { invokeFunction } from '../../../../devhost/host/invoke';
import type { HostLog } from '../../../../devhost/host/log';
import { invokeWithRetries, toRetryPolicy } from '../../../../devhost/host/retry';

jest.mock(
  '@azure/functions-core',
  () =>
    jest.requireActual<{ functionsCoreModule: unknown }>('../../../../devhost/host/core-api')
      .functionsCoreModule,
  { virtual: true },
);

const lines: string[] = [];
const log: HostLog = {
  info: (m) => lines.push(`info ${m}`),
  warn: (m) => lines.push(`warn ${m}`),
  error: (m) => lines.push(`error ${m}`),
  invocation: (name, _id, level, m) => lines.push(`${name} ${level} ${m}`),
};

const core = new FunctionsCore(() => undefined);
let deactivate: () => void;
const seen: { name: string; args: unknown[]; context: InvocationContext }[] = [];

function fakeEvent(
  index: number,
  body: Buffer,
  extra: Partial<ReceivedEventData> = {},
): ReceivedEventData {
  const enqueued = new Date(Date.UTC(2026, 0, 1, 0, 0, index));
  return {
    body,
    sequenceNumber: 100 + index,
    offset: String(4096 * index),
    enqueuedTimeUtc: enqueued,
    partitionKey: index === 0 ? 'pk-0' : (undefined as unknown as string),
    properties: { Alert: index === 1 ? 'high' : 'none', level: index },
    systemProperties: {},
    getRawAmqpMessage: () => ({
      bodyType: 'data',
      body,
      messageAnnotations: {
        'x-opt-sequence-number': 100 + index,
        'x-opt-offset': String(4096 * index),
        'x-opt-enqueued-time': enqueued,
        'iothub-connection-device-id': `device-${index}`,
        'iothub-message-source': 'Telemetry',
      },
      properties: {
        messageId: `m-${index}`,
        contentType: 'application/json',
        correlationId: undefined,
      },
      applicationProperties: {},
    }),
    ...extra,
  } as unknown as ReceivedEventData;
}

const partition = {
  fullyQualifiedNamespace: 'localhost',
  eventHubName: 'hub',
  consumerGroup: '$Default',
  partitionId: '1',
};

beforeAll(async () => {
  deactivate = activateCore(core);
  const { app } = await import('@azure/functions');
  const capture =
    (name: string) =>
    (...args: unknown[]) => {
      seen.push({ name, args: args.slice(0, -1), context: args.at(-1) as InvocationContext });
    };
  app.http('echo', {
    route: 'echo/{id}',
    handler: async (request, context) => {
      context.log('echo', request.params.id);
      return {
        status: 202,
        jsonBody: {
          id: request.params.id,
          q: request.query.get('q'),
          body: await request.text(),
          h: request.headers.get('x-a'),
        },
        cookies: [{ name: 'c', value: 'v', secure: true }],
      };
    },
  });
  app.eventHub('many', {
    connection: 'C',
    eventHubName: 'hub',
    cardinality: 'many',
    handler: capture('many'),
  });
  app.eventHub('strings', {
    connection: 'C',
    eventHubName: 'hub',
    cardinality: 'many',
    trigger: {
      type: 'eventHubTrigger',
      name: 'messages',
      connection: 'C',
      eventHubName: 'hub',
      cardinality: 'many',
      dataType: 'string',
    },
    handler: capture('strings'),
  });
  app.generic('one', {
    trigger: {
      type: 'eventHubTrigger',
      name: 'event',
      connection: 'C',
      eventHubName: 'hub',
      cardinality: 'one',
      dataType: 'binary',
    },
    handler: capture('one'),
  });
  app.timer('timer', { schedule: '0 */5 * * * *', handler: capture('timer') });
  let failures = 2;
  app.timer('flaky', {
    schedule: '0 */5 * * * *',
    retry: { strategy: 'fixedDelay', maxRetryCount: 3, delayInterval: { seconds: 1 } },
    handler: (_timer, context) => {
      seen.push({ name: 'flaky', args: [], context });
      if (failures-- > 0) throw new Error(`failure ${2 - failures}`);
    },
  });
  core.lockRegistration();
});

afterAll(() => deactivate());

function fn(name: string): RegisteredFunction {
  const found = core.functions.get(name);
  if (!found) throw new Error(`no function ${name}`);
  return found;
}

function triggerName(name: string): string {
  const entry = Object.entries(fn(name).metadata.bindings).find(([, b]) =>
    /trigger$/i.test(String(b.type)),
  );
  return entry![0];
}

describe('devhost invocation through @azure/functions', () => {
  it('registers through the core module and locks registration after start', async () => {
    const { app } = await import('@azure/functions');
    expect([...core.functions.keys()]).toEqual([
      'echo',
      'many',
      'strings',
      'one',
      'timer',
      'flaky',
    ]);
    expect(() => app.get('late', () => ({}))).toThrow(/only be registered during app startup/);
  });

  it('converts an HTTP request for the library and its response back', async () => {
    const data = toRpcHttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/echo/7?q=1',
      headers: { 'x-a': 'b', 'content-type': 'text/plain' },
      params: { id: '7' },
      body: Buffer.from('payload'),
    });
    const result = await invokeFunction(
      core,
      fn('echo'),
      { inputData: [{ name: triggerName('echo'), data }] },
      log,
    );
    if (!result.ok) throw result.error;
    const response = fromRpcHttpResponse(findHttpOutput(fn('echo'), result.response));
    expect(response.status).toBe(202);
    expect(JSON.parse(response.body.toString())).toEqual({
      id: '7',
      q: '1',
      body: 'payload',
      h: 'b',
    });
    expect(response.headers).toContainEqual(['content-type', 'application/json']);
    expect(response.headers).toContainEqual(['set-cookie', 'c=v; secure']);
    expect(lines).toContain('echo information echo 7');
    expect(
      lines.some((l) => l.startsWith(`info Executed 'echo' (Succeeded, Id=${result.invocationId}`)),
    ).toBe(true);
  });

  it('passes a many-batch without dataType as parsed JSON with camel-cased metadata', async () => {
    const events = [
      fakeEvent(0, Buffer.from('{"windSpeed":10}')),
      fakeEvent(1, Buffer.from('[1,2]')),
    ];
    const data = toEventHubInvocationData(events, {
      cardinality: 'many',
      dataType: undefined,
      functionName: 'many',
      partition,
    });
    const result = await invokeFunction(
      core,
      fn('many'),
      {
        inputData: [{ name: triggerName('many'), data: data.input }],
        triggerMetadata: data.triggerMetadata,
      },
      log,
    );
    expect(result.ok).toBe(true);
    const call = seen.find((s) => s.name === 'many')!;
    expect(call.args[0]).toEqual([{ windSpeed: 10 }, [1, 2]]);
    const meta = call.context.triggerMetadata as Record<string, unknown>;
    expect(meta.partitionContext).toEqual({
      fullyQualifiedNamespace: 'localhost',
      eventHubName: 'hub',
      consumerGroup: '$Default',
      partitionId: '1',
    });
    expect(meta.sequenceNumberArray).toEqual([100, 101]);
    // The library parses collection strings as JSON where it can, as with the real host.
    expect(meta.offsetArray).toEqual([0, 4096]);
    // Empty partition keys drop out of the typed collection: index by systemPropertiesArray instead.
    expect(meta.partitionKeyArray).toEqual(['pk-0']);
    expect(meta.enqueuedTimeUtcArray).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:01.000Z',
    ]);
    expect(meta.propertiesArray).toEqual([
      { alert: 'none', level: 0 },
      { alert: 'high', level: 1 },
    ]);
    const system = meta.systemPropertiesArray as Record<string, unknown>[];
    expect(system[1]).toMatchObject({
      'iothub-connection-device-id': 'device-1',
      'iothub-message-source': 'Telemetry',
      'x-opt-sequence-number': 101,
      'x-opt-offset': '4096',
      'x-opt-enqueued-time': '2026-01-01T00:00:01.000Z',
      'message-id': 'm-1',
      'content-type': 'application/json',
      sequenceNumber: 101,
      offset: '4096',
      partitionKey: null,
      enqueuedTimeUtc: '2026-01-01T00:00:01.000Z',
    });
    expect(system[1]).not.toHaveProperty('correlation-id');
  });

  it('fails a default-typed batch whose body is not JSON, and string/binary data types take any body', async () => {
    const events = [
      fakeEvent(0, Buffer.from('{"ok":true}')),
      fakeEvent(1, Buffer.from('not json')),
    ];
    expect(() =>
      toEventHubInvocationData(events, {
        cardinality: 'many',
        dataType: undefined,
        functionName: 'many',
        partition,
      }),
    ).toThrow(/event 1 \(sequence number 101\) is not JSON/);

    const strings = toEventHubInvocationData(events, {
      cardinality: 'many',
      dataType: 'string',
      functionName: 'strings',
      partition,
    });
    expect(strings.input.collectionString?.string).toEqual(['{"ok":true}', 'not json']);
    await invokeFunction(
      core,
      fn('strings'),
      {
        inputData: [{ name: triggerName('strings'), data: strings.input }],
        triggerMetadata: strings.triggerMetadata,
      },
      log,
    );
    expect(seen.find((s) => s.name === 'strings')!.args[0]).toEqual([{ ok: true }, 'not json']);

    const one = toEventHubInvocationData([fakeEvent(2, Buffer.from([0, 1, 2]))], {
      cardinality: 'one',
      dataType: 'binary',
      functionName: 'one',
      partition,
    });
    await invokeFunction(
      core,
      fn('one'),
      {
        inputData: [{ name: triggerName('one'), data: one.input }],
        triggerMetadata: one.triggerMetadata,
      },
      log,
    );
    const call = seen.find((s) => s.name === 'one')!;
    expect(call.args[0]).toEqual(Buffer.from([0, 1, 2]));
    const meta = call.context.triggerMetadata as Record<string, unknown>;
    expect(meta.sequenceNumber).toBe(102);
    expect(meta.offset).toBe(8192);
    expect((meta.systemProperties as Record<string, unknown>)['iothub-connection-device-id']).toBe(
      'device-2',
    );
  });

  it('gives a timer its camel-cased input', async () => {
    const info = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: {
        Last: '0001-01-01T00:00:00',
        Next: '2026-01-01T00:05:00.000Z',
        LastUpdated: '2026-01-01T00:00:00.000Z',
      },
      IsPastDue: true,
    };
    await invokeFunction(
      core,
      fn('timer'),
      { inputData: [{ name: triggerName('timer'), data: { json: JSON.stringify(info) } }] },
      log,
    );
    expect(seen.find((s) => s.name === 'timer')!.args[0]).toEqual({
      schedule: { adjustForDST: true },
      scheduleStatus: {
        last: '0001-01-01T00:00:00',
        next: '2026-01-01T00:05:00.000Z',
        lastUpdated: '2026-01-01T00:00:00.000Z',
      },
      isPastDue: true,
    });
  });

  it('retries by the function policy and tells the handler through retryContext', async () => {
    const policy = toRetryPolicy(fn('flaky').metadata.retryOptions, 'flaky');
    expect(policy?.delayMs(1)).toBe(1000);
    const sleeps: number[] = [];
    const outcome = await invokeWithRetries({
      policy,
      input: { inputData: [{ name: triggerName('flaky'), data: { json: '{"IsPastDue":false}' } }] },
      invoke: (input) => invokeFunction(core, fn('flaky'), input, log),
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve(true);
      },
    });
    expect(outcome).toMatchObject({ attempts: 3, settled: true, last: { ok: true } });
    expect(sleeps).toEqual([1000, 1000]);
    const contexts = seen.filter((s) => s.name === 'flaky').map((s) => s.context.retryContext);
    expect(contexts).toEqual([
      { retryCount: 0, maxRetryCount: 3 },
      {
        retryCount: 1,
        maxRetryCount: 3,
        exception: expect.objectContaining({ message: 'failure 1', source: 'Error' }),
      },
      {
        retryCount: 2,
        maxRetryCount: 3,
        exception: expect.objectContaining({ message: 'failure 2' }),
      },
    ]);
  });
});

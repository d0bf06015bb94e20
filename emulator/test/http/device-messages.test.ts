/**
 * The HTTPS device wire format in isolation: headers and batch JSON to telemetry, and a C2D
 * message to response headers (the conformance suite drives the same through the official SDK).
 */
import type { C2DMessage } from '../../core/contracts';
import { countedMessageBytes } from '../../core/message-size';
import { HubError } from '../../core/contracts';
import {
  c2dResponseHeaders,
  headerPairs,
  parseBatch,
  telemetryFromPairs,
} from '../../http/device-messages';

const eventsPath = '/devices/dev (1)/messages/events';

/** The HubError code `run` throws, if any. */
function errorCode(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof HubError ? error.code : 'not a HubError';
  }
  return undefined;
}

describe('telemetryFromPairs', () => {
  it('maps iothub-* headers to system properties and iothub-app-* to application properties, keeping case', () => {
    const message = telemetryFromPairs(
      headerPairs([
        'Authorization',
        'SharedAccessSignature sr=x',
        'IoTHub-MessageId',
        'm1',
        'IoTHub-CorrelationId',
        'c1',
        'iothub-contenttype',
        'application/json',
        'iothub-contentencoding',
        'utf-8',
        'IoTHub-Expiry',
        '1800000000000',
        'iothub-app-Temperature',
        '21',
        'iothub-app-__proto__',
        'kept as a plain key',
        'dt-subject',
        'component',
      ]),
      eventsPath,
      Buffer.from('body'),
    );
    expect(message).toEqual({
      body: Buffer.from('body'),
      messageId: 'm1',
      correlationId: 'c1',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      expiryTime: 1_800_000_000_000,
      properties: { Temperature: '21', ['__proto__']: 'kept as a plain key' },
    });
    expect(Object.keys(message.properties)).toEqual(['Temperature', '__proto__']);
  });

  it('drops iothub-to when it only addresses the events path (encoded as the SDK does), keeps another', () => {
    const sdk = telemetryFromPairs(
      [['iothub-to', '/devices/dev%20%281%29/messages/events']],
      eventsPath,
      Buffer.alloc(0),
    );
    expect(sdk.to).toBeUndefined();
    const own = telemetryFromPairs([['IoTHub-To', '/somewhere']], eventsPath, Buffer.alloc(0));
    expect(own.to).toBe('/somewhere');
  });

  it('refuses an expiry that is not a date', () => {
    const pairs: Array<[string, string]> = [['iothub-expiry', 'soon']];
    expect(errorCode(() => telemetryFromPairs(pairs, eventsPath, Buffer.alloc(0)))).toBe(
      'ArgumentInvalid',
    );
  });
});

describe('parseBatch', () => {
  it('reads the SDK batch format: base64 bodies, properties with the iothub-app- prefix', () => {
    const raw = Buffer.from(
      JSON.stringify([
        { body: Buffer.from('one').toString('base64'), properties: { 'iothub-app-k': 'v' } },
        { body: Buffer.from('two').toString('base64') },
      ]),
    );
    const messages = parseBatch(raw, eventsPath);
    expect(messages.map((m) => m.body.toString())).toEqual(['one', 'two']);
    expect(messages.map((m) => m.properties)).toEqual([{ k: 'v' }, {}]);
  });

  it.each([
    ['not JSON', '{'],
    ['not an array', '{"body":""}'],
    ['an empty array', '[]'],
    ['an entry that is not an object', '[1]'],
    ['a body that is not base64', '[{"body":"**"}]'],
    ['properties that are not an object', '[{"body":"","properties":[]}]'],
    ['a property value that is not a string', '[{"body":"","properties":{"iothub-app-a":1}}]'],
  ])('refuses %s with ArgumentInvalid', (_what, text) => {
    expect(errorCode(() => parseBatch(Buffer.from(text), eventsPath))).toBe('ArgumentInvalid');
  });
});

describe('countedMessageBytes (the 256 KB count)', () => {
  it('counts the body, system property values, and property names and values', () => {
    const size = countedMessageBytes({
      body: Buffer.alloc(10),
      messageId: 'abc',
      properties: { key: 'value' },
    });
    expect(size).toBe(10 + 3 + 3 + 5);
  });
});

describe('c2dResponseHeaders', () => {
  const message: C2DMessage = {
    messageId: 'm1',
    correlationId: 'c1',
    ack: 'full',
    properties: { command: 'reboot' },
    body: Buffer.from('x'),
    deviceId: 'dev',
    lockToken: 'token-1',
    enqueuedTime: Date.UTC(2026, 0, 1),
    expiryTime: Date.UTC(2026, 0, 1, 1),
    deliveryCount: 2,
    to: '/devices/dev/messages/devicebound',
  };

  it('puts the lock token in a quoted ETag and the properties in iothub-* headers', () => {
    expect(c2dResponseHeaders(message)).toEqual({
      etag: '"token-1"',
      'iothub-messageid': 'm1',
      'iothub-correlationid': 'c1',
      'iothub-to': '/devices/dev/messages/devicebound',
      'iothub-deliverycount': '2',
      'iothub-enqueuedtime': 'Thu, 01 Jan 2026 00:00:00 GMT',
      'iothub-expiry': '2026-01-01T01:00:00.000Z',
      'iothub-ack': 'full',
      'iothub-app-command': 'reboot',
      'content-type': 'application/octet-stream',
    });
  });
});

/**
 * The MQTT adapter's wire-format pieces without a broker: the property bags checked against the
 * device SDK's own encoder and decoder, the topic rules, and the frame watcher fed the byte
 * stream in every possible split. (Pure modules: no aedes, so they load inside Jest.)
 */
import querystring from 'node:querystring';
import type { C2DMessage } from '../../core/contracts';
import { MqttFrameWatcher } from '../../mqtt/frame-watcher';
import { decodePropertyBag, encodeC2DPropertyBag, PropertyBagError } from '../../mqtt/property-bag';
import { classifyPublish, classifySubscription } from '../../mqtt/topics';

describe('property bags', () => {
  it('decodes what the SDK encodes, system properties and escaped custom ones', () => {
    // Built as azure-iot-device-mqtt builds it: system properties through querystring.stringify
    // (which escapes `$` too), then each custom key and value through encodeURIComponent.
    const bag =
      querystring.stringify({
        '$.mid': 'm 1',
        '$.cid': 'c/2',
        '$.ct': 'application/json',
        '$.ce': 'utf-8',
        '$.exp': '2030-01-02T03:04:05.000Z',
      }) + `&${encodeURIComponent('a b&c=d/é')}=${encodeURIComponent('v%l u&e=/é')}`;
    const decoded = decodePropertyBag(bag);
    expect(decoded.system).toEqual({
      messageId: 'm 1',
      correlationId: 'c/2',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      expiryTime: Date.parse('2030-01-02T03:04:05.000Z'),
    });
    expect(decoded.properties).toEqual({ 'a b&c=d/é': 'v%l u&e=/é' });
  });

  it('keeps keys like __proto__ as plain properties and refuses malformed escapes', () => {
    expect(decodePropertyBag('__proto__=x').properties).toEqual({ ['__proto__']: 'x' });
    expect(() => decodePropertyBag('a=%E0%A4%A')).toThrow(PropertyBagError);
    expect(() => decodePropertyBag('%24.exp=not-a-date')).toThrow(PropertyBagError);
  });

  it('encodes C2D bags the way the SDK splits and decodes them', () => {
    const message: C2DMessage = {
      messageId: 'id/1&2',
      correlationId: 'c=1',
      userId: 'user',
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      ack: 'full',
      properties: { 'k e&y=/é': 'v a&l=u/é' },
      body: Buffer.from('x'),
      deviceId: 'd',
      lockToken: 'lock',
      enqueuedTime: 0,
      expiryTime: Date.parse('2030-01-01T00:00:00.000Z'),
      deliveryCount: 1,
      to: '/devices/d/messages/devicebound',
    };
    const topic = `devices/d/messages/devicebound/${encodeC2DPropertyBag(message)}`;
    // The SDK reads the bag as the fifth topic level, splits on & and =, and decodes both.
    const bag = topic.split('/')[4] ?? '';
    const pairs = bag.split('&').map((pair) => pair.split('=').map(decodeURIComponent));
    expect(Object.fromEntries(pairs)).toEqual({
      '$.mid': 'id/1&2',
      '$.cid': 'c=1',
      '$.uid': 'user',
      '$.to': '/devices/d/messages/devicebound',
      '$.ct': 'text/plain',
      '$.ce': 'utf-8',
      '$.exp': '2030-01-01T00:00:00.000Z',
      'k e&y=/é': 'v a&l=u/é',
    });
    // The encoder's output also reads back through the decoder.
    expect(decodePropertyBag(bag).properties).toEqual({ 'k e&y=/é': 'v a&l=u/é' });
  });
});

describe('topic rules', () => {
  it('lets a device publish only its own telemetry and $iothub requests', () => {
    expect(classifyPublish('a', 'devices/a/messages/events/')).toEqual({
      kind: 'telemetry',
      bag: '',
    });
    expect(classifyPublish('a', 'devices/a/messages/events/x=1')).toEqual({
      kind: 'telemetry',
      bag: 'x=1',
    });
    expect(classifyPublish('a', '$iothub/twin/GET/?$rid=7')).toEqual({
      kind: 'twin-get',
      requestId: '7',
    });
    expect(classifyPublish('a', '$iothub/twin/PATCH/properties/reported/?$rid=8')).toEqual({
      kind: 'twin-patch-reported',
      requestId: '8',
    });
    for (const topic of [
      'devices/b/messages/events/',
      'devices/a/messages/events/x/y',
      'devices/a/messages/devicebound/',
      '$iothub/twin/res/200/?$rid=1',
      '$iothub/twin/GET/',
      'anything',
    ]) {
      expect(classifyPublish('a', topic).kind).toBe('refused');
    }
  });

  it('grants only the device’s own subscriptions', () => {
    expect(classifySubscription('a', 'devices/a/messages/devicebound/#')).toBe('c2d');
    expect(classifySubscription('a', '$iothub/twin/res/#')).toBe('twin-responses');
    expect(classifySubscription('a', 'devices/b/messages/devicebound/#')).toBe('refused');
    expect(classifySubscription('a', '#')).toBe('refused');
    expect(classifySubscription('a', 'devices/+/messages/devicebound/#')).toBe('refused');
  });

  it('reads the device id in topics literally, as IoT Hub does (no URL-decoding)', () => {
    expect(classifyPublish("e%f'(k)", "devices/e%f'(k)/messages/events/").kind).toBe('telemetry');
    expect(classifySubscription('g=h', 'devices/g=h/messages/devicebound/#')).toBe('c2d');
    expect(classifyPublish('a+b', 'devices/a%2Bb/messages/events/').kind).toBe('refused');
    expect(classifySubscription('c#d', 'devices/c%23d/messages/devicebound/#')).toBe('refused');
  });
});

/** One MQTT packet: fixed header byte, variable-length remaining length, body. */
function frame(firstByte: number, body: Buffer): Buffer {
  const length: number[] = [];
  let rest = body.length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    length.push(byte);
  } while (rest > 0);
  return Buffer.concat([Buffer.from([firstByte, ...length]), body]);
}

function puback(id: number): Buffer {
  return frame(0x40, Buffer.from([id >> 8, id & 0xff]));
}

describe('frame watcher', () => {
  const topic = Buffer.from('devices/a/messages/events/');
  const publishBody = Buffer.concat([
    Buffer.from([topic.length >> 8, topic.length & 0xff]),
    topic,
    Buffer.from([0, 9]), // packet id
    Buffer.alloc(300, 7), // payload: the remaining length needs two bytes
  ]);
  const stream = Buffer.concat([
    frame(0xc0, Buffer.alloc(0)), // PINGREQ
    puback(0x1234),
    frame(0x32, publishBody), // PUBLISH QoS 1
    puback(65535),
  ]);

  it('sees every PUBACK however the stream is split', () => {
    for (let cut = 1; cut < stream.length; cut += 1) {
      const pubacks: number[] = [];
      const watcher = new MqttFrameWatcher(1024, {
        onPuback: (id) => pubacks.push(id),
        onViolation: (reason) => {
          throw new Error(reason);
        },
      });
      watcher.push(stream.subarray(0, cut));
      watcher.push(stream.subarray(cut));
      expect(pubacks).toEqual([0x1234, 65535]);
    }
    const byteByByte: number[] = [];
    const watcher = new MqttFrameWatcher(1024, {
      onPuback: (id) => byteByByte.push(id),
      onViolation: (reason) => {
        throw new Error(reason);
      },
    });
    for (const byte of stream) watcher.push(Buffer.from([byte]));
    expect(byteByByte).toEqual([0x1234, 65535]);
  });

  it('reports a packet over the limit, or a malformed length, as soon as its header arrives', () => {
    const violations: string[] = [];
    const hooks = { onPuback: () => {}, onViolation: (reason: string) => violations.push(reason) };
    new MqttFrameWatcher(100, hooks).push(stream);
    new MqttFrameWatcher(100, hooks).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]));
    expect(violations).toEqual([
      expect.stringContaining('exceeds 100'),
      'malformed remaining length',
    ]);
  });
});

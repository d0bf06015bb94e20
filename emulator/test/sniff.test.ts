/**
 * The gate every connection passes (emulator/sniff.ts), on in-memory streams: protocol detection
 * from the first bytes with the bytes pushed back intact, and the frame-size watchers that cut
 * hostile peers — which must never cut a legitimate stream, however it is split into chunks.
 */
import { PassThrough } from 'node:stream';
import type { SniffedProtocol } from '../sniff';
import {
  classify,
  createAmqpFrameWatcher,
  createMqttPacketWatcher,
  guardFrames,
  sniff,
} from '../sniff';

const all = new Set<SniffedProtocol>(['http', 'amqp', 'mqtt']);

describe('classify', () => {
  test.each([
    ['GET /devices HTTP/1.1', 'http'],
    ['PUT /devices/x HTTP/1.1', 'http'],
    ['DELETE /devices/x HTTP/1.1', 'http'],
    ['POST /devices/query HTTP/1.1', 'http'],
    ['AMQP\x00\x01\x00\x00', 'amqp'],
    ['AMQP\x03\x01\x00\x00', 'amqp'],
    ['\x10\x20\x00\x04MQTT', 'mqtt'],
  ])('%j is %s', (text, protocol) => {
    expect(classify(Buffer.from(text, 'latin1'), all)).toBe(protocol);
  });

  test('waits while the bytes could still become a known protocol', () => {
    for (const prefix of ['G', 'GE', 'GET', 'DELE', 'A', 'AMQ', 'OPTIONS']) {
      expect(classify(Buffer.from(prefix, 'latin1'), all)).toBeUndefined();
    }
  });

  test('refuses what can be none of them, and protocols the listener does not serve', () => {
    expect(classify(Buffer.from('\x16\x03\x01', 'latin1'), all)).toBeNull();
    expect(classify(Buffer.from('GEX', 'latin1'), all)).toBeNull();
    expect(classify(Buffer.from('get /', 'latin1'), all)).toBeNull();
    expect(classify(Buffer.from('GET /', 'latin1'), new Set(['mqtt']))).toBeNull();
    expect(classify(Buffer.from([0x10]), new Set(['amqp']))).toBeNull();
  });
});

describe('sniff', () => {
  test('pushes the sniffed bytes back so the next reader sees the stream untouched', async () => {
    const stream = new PassThrough();
    const sniffed = sniff(stream, { allowed: all, timeoutMs: 5_000 });
    stream.write('PU');
    stream.write('T /devices/a HTTP/1.1\r\n');
    expect(await sniffed).toEqual({ kind: 'protocol', protocol: 'http' });
    stream.end('\r\n');
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('PUT /devices/a HTTP/1.1\r\n\r\n');
  });

  test('rejects a stream that ends before saying anything recognisable', async () => {
    const stream = new PassThrough();
    const sniffed = sniff(stream, { allowed: all, timeoutMs: 5_000 });
    stream.end('GE');
    expect(await sniffed).toEqual({ kind: 'rejected', reason: 'closed before sending' });
  });

  test('hints at UseDevelopmentEmulator when TLS arrives on a plain port', async () => {
    const stream = new PassThrough();
    const sniffed = sniff(stream, { allowed: new Set(['amqp']), timeoutMs: 5_000, plainTcp: true });
    stream.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80]));
    const result = await sniffed;
    expect(result.kind === 'rejected' && result.reason).toMatch(/UseDevelopmentEmulator=true/);
  });
});

/** Feeds `data` to a watcher in chunks of `size`; returns the first violation. */
function feed(
  watch: (chunk: Buffer) => string | undefined,
  data: Buffer,
  size: number,
): string | undefined {
  for (let i = 0; i < data.length; i += size) {
    const violation = watch(data.subarray(i, i + size));
    if (violation !== undefined) return violation;
  }
  return undefined;
}

function amqpFrame(size: number): Buffer {
  const frame = Buffer.alloc(size, 0x5a);
  frame.writeUInt32BE(size, 0);
  frame.writeUInt8(2, 4);
  return frame;
}

function mqttPacket(type: number, payloadBytes: number): Buffer {
  const length: number[] = [];
  let n = payloadBytes;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...length]), Buffer.alloc(payloadBytes, 0x61)]);
}

describe('AMQP frame watcher', () => {
  // SASL header, SASL frames, the AMQP header again, then AMQP frames (heartbeats are 8 bytes).
  const legitimate = Buffer.concat([
    Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'),
    amqpFrame(40),
    amqpFrame(24),
    Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'),
    amqpFrame(8),
    amqpFrame(300),
    amqpFrame(1024),
    amqpFrame(8),
  ]);

  test.each([1, 2, 3, 5, 7, 13, 64, 4096])(
    'lets a legitimate stream through in chunks of %d bytes',
    (size) => {
      expect(feed(createAmqpFrameWatcher(1024), legitimate, size)).toBeUndefined();
    },
  );

  test('reports a frame over the limit as soon as its size field has arrived', () => {
    const watch = createAmqpFrameWatcher(1024);
    expect(watch(Buffer.concat([legitimate, amqpFrame(1025).subarray(0, 3)]))).toBeUndefined();
    expect(watch(amqpFrame(1025).subarray(3, 4))).toMatch(/1025 bytes exceeds 1024/);
  });

  test('reports a frame size below the AMQP minimum', () => {
    const watch = createAmqpFrameWatcher(1024);
    expect(watch(Buffer.from('AMQP\x00\x01\x00\x00\x00\x00\x00\x02', 'latin1'))).toMatch(
      /below the minimum/,
    );
  });
});

describe('MQTT packet watcher', () => {
  const legitimate = Buffer.concat([
    mqttPacket(0x10, 60), // CONNECT
    mqttPacket(0x82, 40), // SUBSCRIBE
    mqttPacket(0x32, 127), // PUBLISH, 1-byte length boundary
    mqttPacket(0x32, 128), // 2-byte length
    mqttPacket(0x32, 16_384), // 3-byte length
    mqttPacket(0x40, 2), // PUBACK
    mqttPacket(0xc0, 0), // PINGREQ
  ]);

  test.each([1, 2, 3, 5, 64, 4096])(
    'lets a legitimate stream through in chunks of %d bytes',
    (size) => {
      expect(feed(createMqttPacketWatcher(20_000), legitimate, size)).toBeUndefined();
    },
  );

  test('reports a packet over the limit from its header alone', () => {
    expect(createMqttPacketWatcher(20_000)(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toMatch(
      /268435455 bytes exceeds 20000/,
    );
  });

  test('reports a remaining length longer than four bytes', () => {
    expect(createMqttPacketWatcher(20_000)(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toMatch(
      /malformed/,
    );
  });
});

describe('guardFrames', () => {
  test('observes what the consumer reads and destroys the stream on a violation', async () => {
    const stream = new PassThrough();
    const consumed: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => consumed.push(chunk));
    const reasons: string[] = [];
    guardFrames(stream, createMqttPacketWatcher(100), (reason) => reasons.push(reason));
    stream.write(mqttPacket(0x32, 50));
    stream.write(Buffer.from([0x32, 0xff, 0x01]));
    await new Promise((resolve) => stream.once('close', resolve));
    expect(reasons).toEqual([expect.stringMatching(/255 bytes exceeds 100/)]);
    expect(Buffer.concat(consumed).length).toBeGreaterThanOrEqual(52);
    expect(stream.destroyed).toBe(true);
  });
});

/**
 * The one AMQP frame-size guard (emulator/amqp/frame-guard.ts), as a watcher of chunks.
 */
import { PassThrough } from 'node:stream';
import { AmqpFrameWatcher, guardFrameSizes } from '../../amqp/frame-guard';

describe('frame size watcher', () => {
  function frame(size: number): Buffer {
    const bytes = Buffer.alloc(size, 0);
    bytes.writeUInt32BE(size, 0);
    bytes[4] = 2;
    return bytes;
  }
  const saslHeader = Buffer.from('AMQP\x03\x01\x00\x00', 'latin1');
  const amqpHeader = Buffer.from('AMQP\x00\x01\x00\x00', 'latin1');

  /** A watcher whose reports land in `violations`. */
  function guardInto(violations: string[]): { push(chunk: Buffer): void } {
    const watcher = new AmqpFrameWatcher(100);
    return {
      push(chunk) {
        const violation = watcher.push(chunk);
        if (violation !== undefined) violations.push(violation);
      },
    };
  }

  test('passes headers and frames within the limit, however the bytes are split', () => {
    const violations: string[] = [];
    const guard = guardInto(violations);
    const stream = Buffer.concat([
      saslHeader,
      frame(20),
      frame(100),
      amqpHeader,
      frame(8),
      frame(64),
    ]);
    for (let i = 0; i < stream.length; i += 3) guard.push(stream.subarray(i, i + 3));
    expect(violations).toEqual([]);
  });

  test('reports a frame over the limit or under a header, once', () => {
    const violations: string[] = [];
    const guard = guardInto(violations);
    guard.push(Buffer.concat([amqpHeader, frame(50)]));
    guard.push(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x02, 0, 0, 0]));
    guard.push(Buffer.from([0x00, 0x00, 0x00, 0x02]));
    expect(violations).toEqual(['frame of 2147483647 bytes exceeds 100']);
    const small: string[] = [];
    guardInto(small).push(Buffer.from([0, 0, 0, 3]));
    expect(small).toEqual(['frame of 3 bytes is below the minimum of 8']);
  });
});

describe('frame size guard on a socket', () => {
  function frame(size: number): Buffer {
    const buffer = Buffer.alloc(size);
    buffer.writeUInt32BE(size, 0);
    return buffer;
  }
  const header = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);

  it('lets headers and frames within the limit through, split anywhere', () => {
    const socket = new PassThrough();
    const violations: string[] = [];
    guardFrameSizes(socket, 64, (reason) => violations.push(reason));
    const stream = Buffer.concat([header, frame(8), frame(64), header, frame(20)]);
    for (let i = 0; i < stream.length; i += 3) socket.emit('data', stream.subarray(i, i + 3));
    expect(violations).toEqual([]);
    expect(socket.destroyed).toBe(false);
  });

  it('destroys the socket on an oversized or undersized frame', () => {
    for (const bad of [frame(65), Buffer.from([0, 0, 0, 2])]) {
      const socket = new PassThrough();
      socket.on('error', () => undefined);
      const violations: string[] = [];
      guardFrameSizes(socket, 64, (reason) => violations.push(reason));
      socket.emit('data', Buffer.concat([header, bad]));
      expect(violations).toHaveLength(1);
      expect(socket.destroyed).toBe(true);
    }
  });
});

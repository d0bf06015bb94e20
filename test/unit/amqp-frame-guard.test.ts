/**
 * The one AMQP frame-size guard (emulator/amqp/frame-guard.ts), as a watcher of chunks.
 */
import { AmqpFrameWatcher } from '../../emulator/amqp/frame-guard';

describe('frame size guard', () => {
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

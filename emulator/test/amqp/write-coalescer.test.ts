/**
 * The stream rhea writes its frames to (emulator/amqp/write-coalescer.ts): one socket write per
 * tick, in order, with the socket's back-pressure, errors and close passed on.
 */
import { Duplex } from 'node:stream';
import { CoalescingSocket } from '../../amqp/write-coalescer';

/** A socket stand-in whose writes complete only when the test says so. */
class FakeSocket extends Duplex {
  readonly written: Buffer[] = [];
  private held: (() => void)[] = [];

  constructor(
    highWaterMark = 16 * 1024,
    readonly holdWrites = false,
  ) {
    super({ writableHighWaterMark: highWaterMark });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.written.push(chunk);
    if (this.holdWrites) this.held.push(callback);
    else callback();
  }

  release(): void {
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }
}

function nextTick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('CoalescingSocket', () => {
  test('writes the frames of one tick as one socket write, in order', async () => {
    const socket = new FakeSocket();
    const stream = new CoalescingSocket(socket);
    stream.write(Buffer.from('a'));
    stream.write(Buffer.from('bc'));
    stream.write(Buffer.from('d'));
    expect(socket.written).toEqual([]);
    await nextTick();
    await nextTurn();
    stream.write(Buffer.from('e'));
    await nextTurn();
    expect(socket.written.map((b) => b.toString())).toEqual(['abcd', 'e']);
  });

  test('holds writes while the socket is over its highWaterMark, then drains', async () => {
    const socket = new FakeSocket(4, true);
    const stream = new CoalescingSocket(socket);
    const big = Buffer.alloc(64, 1);
    // The first tick's bytes reach the socket, which is now over its mark.
    expect(stream.write(big)).toBe(true);
    await nextTurn();
    expect(socket.writableNeedDrain).toBe(true);
    // Further writes are not acknowledged, so this stream's own buffer fills.
    let accepted = true;
    for (let i = 0; i < 1024 && accepted; i++) accepted = stream.write(big);
    expect(accepted).toBe(false);
    await nextTurn();
    // Only the one acknowledged-but-unsent write after the mark reaches the socket.
    const sentWhileFull = socket.written.length;
    expect(sentWhileFull).toBeLessThanOrEqual(2);
    const drained = new Promise<void>((resolve) => stream.once('drain', resolve));
    for (let i = 0; i < 2048 && stream.writableLength > 0; i++) {
      socket.release();
      await nextTurn();
    }
    await drained;
    const total = socket.written.reduce((n, b) => n + b.length, 0);
    expect(total).toBeGreaterThan(sentWhileFull * big.length);
    expect(total % big.length).toBe(0);
  });

  test("passes the socket's data, end and errors on, and a socket error tears it down", async () => {
    const socket = new FakeSocket();
    const stream = new CoalescingSocket(socket);
    const received: string[] = [];
    stream.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const ended = new Promise<void>((resolve) => stream.once('end', resolve));
    socket.push(Buffer.from('frame'));
    socket.push(null);
    await ended;
    expect(received).toEqual(['frame']);

    const other = new FakeSocket();
    const wrapped = new CoalescingSocket(other);
    const failed = new Promise<Error>((resolve) => wrapped.once('error', resolve));
    other.destroy(new Error('connection reset'));
    expect((await failed).message).toBe('connection reset');
    expect(wrapped.destroyed).toBe(true);
  });

  test('a socket error after rhea removed its listeners does not end the process', async () => {
    const socket = new FakeSocket();
    const stream = new CoalescingSocket(socket);
    stream.on('error', () => undefined);
    // What rhea's abort_socket does before destroying.
    stream.removeAllListeners('error');
    const closed = new Promise<void>((resolve) => stream.once('close', resolve));
    socket.destroy(new Error('connection reset'));
    await closed;
    expect(stream.destroyed).toBe(true);
  });

  test('sends the last frames before ending the socket; destroying it destroys the socket', async () => {
    const socket = new FakeSocket();
    const stream = new CoalescingSocket(socket);
    const finished = new Promise<void>((resolve) => socket.once('finish', resolve));
    stream.write(Buffer.from('close-frame'));
    stream.end();
    await finished;
    expect(socket.written.map((b) => b.toString())).toEqual(['close-frame']);

    const other = new FakeSocket();
    const wrapped = new CoalescingSocket(other);
    wrapped.write(Buffer.from('never sent'));
    wrapped.destroy();
    await nextTurn();
    expect(other.destroyed).toBe(true);
    expect(other.written).toEqual([]);
  });
});

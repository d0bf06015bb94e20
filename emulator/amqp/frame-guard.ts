/**
 * The one AMQP frame-size guard. rhea buffers a frame until all of its announced bytes arrive and
 * enforces no maximum, so a peer announcing a 4 GiB frame could make us hold whatever it streams.
 * This follows the frame boundaries (protocol headers and 4-byte frame sizes only, never the
 * payload) and reports the first frame larger than the limit or smaller than a frame header.
 * Both AMQP adapters put it in front of rhea on every stream they take, so each stream is parsed
 * once (server.ts attaches no AMQP watcher of its own).
 */
import type { Duplex } from 'node:stream';

const protocolHeader = Buffer.from('AMQP', 'latin1');
const headerLength = 8;
const minFrameSize = 8;

export class AmqpFrameWatcher {
  /** Bytes of the current protocol header or frame still to skip. */
  private skip = 0;
  /** A partial size field (or header start) carried over between chunks: at most 3 bytes. */
  private pending = Buffer.alloc(0);
  private tripped = false;

  constructor(private readonly maxFrameSize: number) {}

  /** The violation this chunk completes, reported once; `undefined` while the stream is fine. */
  push(chunk: Buffer): string | undefined {
    if (this.tripped) return undefined;
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        this.skip -= n;
        data = data.subarray(n);
        continue;
      }
      if (data.length < 4) {
        this.pending = Buffer.from(data);
        return undefined;
      }
      // A protocol header (AMQP or its SASL variant) precedes each layer; sizes never read 'AMQP'.
      if (data.subarray(0, 4).equals(protocolHeader)) {
        this.skip = headerLength;
        continue;
      }
      const size = data.readUInt32BE(0);
      const violation = this.check(size);
      if (violation !== undefined) {
        this.tripped = true;
        return violation;
      }
      this.skip = size;
    }
    return undefined;
  }

  private check(size: number): string | undefined {
    if (size < minFrameSize)
      return `frame of ${size} bytes is below the minimum of ${minFrameSize}`;
    if (size > this.maxFrameSize) return `frame of ${size} bytes exceeds ${this.maxFrameSize}`;
    return undefined;
  }
}

/** The watcher as a function of chunks, as the sniffing gate's watchers are. */
export function createAmqpFrameWatcher(
  maxFrameSize: number,
): (chunk: Buffer) => string | undefined {
  const watcher = new AmqpFrameWatcher(maxFrameSize);
  return (chunk) => watcher.push(chunk);
}

/**
 * Watches a socket's incoming frames and, on the first violation, tells `onViolation` and
 * destroys the socket with an error (rhea listens for 'error' and 'end', not 'close', so it lets
 * go too). Attach before rhea's own `data` listener so an oversized frame is never buffered.
 */
export function guardFrameSizes(
  socket: Duplex,
  maxFrameSize: number,
  onViolation: (reason: string) => void,
): void {
  const watcher = new AmqpFrameWatcher(maxFrameSize);
  const listener = (chunk: Buffer | string) => {
    const violation = watcher.push(
      typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk,
    );
    if (violation === undefined) return;
    socket.removeListener('data', listener);
    onViolation(violation);
    socket.destroy(new Error(`AMQP frame size violation: ${violation}`));
  };
  socket.on('data', listener);
}

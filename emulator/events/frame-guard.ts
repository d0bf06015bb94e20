/**
 * rhea buffers a frame until all of its announced bytes arrive and enforces no maximum, so a
 * peer announcing a 4 GiB frame could make the endpoint hold whatever it streams. This watches
 * the incoming bytes alongside rhea and reports the first frame larger than the endpoint
 * advertises (or smaller than a frame header can be), so the connection can be dropped.
 */
import type { Duplex } from 'node:stream';

const protocolHeader = Buffer.from('AMQP', 'latin1');
const headerLength = 8;
const minFrameSize = 8;

export class FrameSizeGuard {
  /** Bytes of the current protocol header or frame still to skip. */
  private skip = 0;
  /** A partial size field (or header start) carried over between chunks. */
  private pending = Buffer.alloc(0);
  private tripped = false;

  constructor(
    private readonly maxFrameSize: number,
    private readonly onViolation: (reason: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.tripped) return;
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
        return;
      }
      // A protocol header (AMQP or its SASL variant) precedes each layer; sizes never read 'AMQP'.
      if (data.subarray(0, 4).equals(protocolHeader)) {
        this.skip = headerLength;
        continue;
      }
      const size = data.readUInt32BE(0);
      if (size < minFrameSize || size > this.maxFrameSize) {
        this.tripped = true;
        this.onViolation(`frame of ${size} bytes (limit ${this.maxFrameSize})`);
        return;
      }
      this.skip = size;
    }
  }
}

/** Watches a socket's incoming frames; call before rhea attaches its own listener. */
export function guardFrameSizes(
  socket: Duplex,
  maxFrameSize: number,
  onViolation: (reason: string) => void,
): void {
  const guard = new FrameSizeGuard(maxFrameSize, onViolation);
  socket.on('data', (chunk: Buffer | string) => {
    guard.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
  });
}

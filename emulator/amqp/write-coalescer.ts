/**
 * rhea writes every AMQP frame with its own `socket.write` (`Transport.write`, called once per
 * frame from `Connection#_write_frame`): on a TLS socket that is one TLS record, one pass through
 * the socket's stream machinery and one syscall per transfer, ~10% of the hub's CPU when it relays
 * events at saturation (docs/benchmarks.md). rhea is given this stream instead of the socket: it
 * collects the frames written within one tick and hands them to the socket as one buffer.
 *
 * Back-pressure: a write is acknowledged at once while the socket accepts data; once the socket
 * reports it is over its highWaterMark, the acknowledgement waits for its 'drain', so this
 * stream's own buffer fills and its `write` returns false (and it emits 'drain') like a socket's.
 * Incoming bytes, 'end', errors and close are passed through from the socket.
 */
import { Duplex } from 'node:stream';

type Callback = (error?: Error | null) => void;

/** What rhea reads from a socket besides the stream API (connection.js `init`, logging, TLS). */
interface SocketExtras {
  setNoDelay?: (noDelay?: boolean) => unknown;
  getPeerCertificate?: (detailed?: boolean) => unknown;
  encrypted?: boolean;
  authorized?: boolean;
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
}

export class CoalescingSocket extends Duplex {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** The acknowledgement held back while the socket is over its highWaterMark. */
  private waitingForDrain: Callback | undefined;

  constructor(private readonly socket: Duplex) {
    super({ writableHighWaterMark: socket.writableHighWaterMark, decodeStrings: true });
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (error: Error) => this.destroy(error));
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.onSocketDrain());
  }

  /**
   * The socket's owner handles its errors; this copy of them is for rhea, which removes its
   * listeners when it aborts a connection (`abort_socket`), and an unheard 'error' would end the
   * process.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    return super.emit(event, ...args);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.enqueue(chunk);
    this.acknowledge(callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: Callback): void {
    for (const { chunk } of chunks) this.enqueue(chunk);
    this.acknowledge(callback);
  }

  /** Sends what is collected before the socket's end, so the last frames precede the FIN. */
  override _final(callback: Callback): void {
    this.flush();
    if (this.socket.writableEnded) {
      callback();
      return;
    }
    this.socket.end(() => callback());
  }

  override _destroy(error: Error | null, callback: Callback): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.waitingForDrain = undefined;
    // After a clean end the socket closes by itself; anything else tears it down now.
    if (error || !this.socket.writableFinished) this.socket.destroy(error ?? undefined);
    callback(error);
  }

  private enqueue(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // rhea's frames of one turn (a pump's transfers, a flow and its dispositions) are written
    // synchronously one after another; the next tick sees them all.
    process.nextTick(() => this.flush());
  }

  private acknowledge(callback: Callback): void {
    if (this.socket.writableNeedDrain) this.waitingForDrain = callback;
    else callback();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const data =
      this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.socket.write(data);
  }

  private onSocketDrain(): void {
    const callback = this.waitingForDrain;
    this.waitingForDrain = undefined;
    callback?.();
  }

  // The socket's own properties that rhea consults.
  setNoDelay(noDelay?: boolean): this {
    (this.socket as Duplex & SocketExtras).setNoDelay?.(noDelay);
    return this;
  }

  getPeerCertificate(detailed?: boolean): unknown {
    return (this.socket as Duplex & SocketExtras).getPeerCertificate?.(detailed);
  }

  get encrypted(): boolean | undefined {
    return (this.socket as Duplex & SocketExtras).encrypted;
  }

  get authorized(): boolean | undefined {
    return (this.socket as Duplex & SocketExtras).authorized;
  }

  get remoteAddress(): string | undefined {
    return (this.socket as Duplex & SocketExtras).remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this.socket as Duplex & SocketExtras).remotePort;
  }

  get localAddress(): string | undefined {
    return (this.socket as Duplex & SocketExtras).localAddress;
  }

  get localPort(): number | undefined {
    return (this.socket as Duplex & SocketExtras).localPort;
  }
}

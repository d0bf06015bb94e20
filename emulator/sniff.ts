/**
 * Telling protocols apart on one port, and keeping a hostile peer from exhausting memory.
 *
 * After TLS is terminated the first bytes say what the client speaks: the AMQP protocol header
 * (`AMQP`), an HTTP request line (`GET `, `PUT `, …) or an MQTT CONNECT packet (first byte 0x10).
 * The bytes read to decide are pushed back (`unshift`) so the adapter sees the stream untouched.
 *
 * AMQP and MQTT parsers buffer a whole frame before they look at it, and a frame header may claim
 * gigabytes; the guards below watch frame headers as they pass and cut the connection as soon as
 * one declares more than the limit. Each stream is watched once: AMQP streams by the server's
 * guard, MQTT streams by the MQTT adapter's own watcher.
 */
import type { Duplex } from 'node:stream';
import { MqttFrameWatcher } from './mqtt/frame-watcher';

export type SniffedProtocol = 'amqp' | 'http' | 'mqtt';

const httpMethods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'].map((m) =>
  Buffer.from(`${m} `, 'ascii'),
);
const amqpHeader = Buffer.from('AMQP', 'ascii');
const mqttConnect = 0x10;

/** The protocol, `undefined` when more bytes are needed, or `null` when it can be none of them. */
export function classify(
  head: Buffer,
  allowed: ReadonlySet<SniffedProtocol>,
): SniffedProtocol | null | undefined {
  if (head.length === 0) return undefined;
  let undecided = false;
  if (allowed.has('mqtt') && head[0] === mqttConnect) return 'mqtt';
  if (allowed.has('amqp')) {
    const n = Math.min(head.length, amqpHeader.length);
    if (head.subarray(0, n).equals(amqpHeader.subarray(0, n))) {
      if (n === amqpHeader.length) return 'amqp';
      undecided = true;
    }
  }
  if (allowed.has('http')) {
    for (const method of httpMethods) {
      const n = Math.min(head.length, method.length);
      if (head.subarray(0, n).equals(method.subarray(0, n))) {
        if (n === method.length) return 'http';
        undecided = true;
      }
    }
  }
  return undecided ? undefined : null;
}

export interface SniffOptions {
  allowed: ReadonlySet<SniffedProtocol>;
  /** Give up on a peer that sends too little to decide within this time. */
  timeoutMs: number;
  /** The listener has no TLS (then a TLS handshake gets a hint in the reason). */
  plainTcp?: boolean;
}

export type SniffResult =
  { kind: 'protocol'; protocol: SniffedProtocol } | { kind: 'rejected'; reason: string };

/**
 * Reads just enough of `socket` to classify it, then pushes those bytes back. Never throws; the
 * caller destroys the socket on `rejected`.
 */
export function sniff(socket: Duplex, options: SniffOptions): Promise<SniffResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (result: SniffResult, pushBack: Buffer | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      if (pushBack && pushBack.length > 0) socket.unshift(pushBack);
      resolve(result);
    };
    const onReadable = () => {
      let chunk: unknown;
      while ((chunk = socket.read()) !== null) {
        if (Buffer.isBuffer(chunk)) chunks.push(chunk);
        const head = Buffer.concat(chunks);
        const protocol = classify(head, options.allowed);
        if (protocol === undefined) continue;
        if (protocol === null) {
          // A TLS ClientHello (record type 0x16) where plain AMQP is expected: a client that
          // does not know this is the emulator's plain endpoint.
          const reason =
            head[0] === 0x16 && options.plainTcp === true
              ? 'unrecognised protocol (a TLS handshake: is UseDevelopmentEmulator=true missing from the connection string?)'
              : 'unrecognised protocol';
          finish({ kind: 'rejected', reason }, undefined);
        } else {
          finish({ kind: 'protocol', protocol }, head);
        }
        return;
      }
    };
    const onEnd = () => finish({ kind: 'rejected', reason: 'closed before sending' }, undefined);
    const onError = (error: Error) =>
      finish({ kind: 'rejected', reason: `socket error (${error.message})` }, undefined);
    const timer = setTimeout(
      () => finish({ kind: 'rejected', reason: 'sent nothing recognisable in time' }, undefined),
      options.timeoutMs,
    );
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

/** The AMQP watcher lives with the AMQP layer (one implementation for every AMQP stream). */
export { createAmqpFrameWatcher } from './amqp/frame-guard';

/**
 * The MQTT adapter's packet watcher (./mqtt/frame-watcher.ts) as a plain function for
 * `guardFrames`: reports the first packet whose fixed header claims more than `maxPacketSize`
 * bytes, or a malformed remaining length. The adapter runs the same watcher on each of its
 * sockets (which also reports PUBACKs), so the server attaches no second one to MQTT streams.
 */
export function createMqttPacketWatcher(
  maxPacketSize: number,
): (chunk: Buffer) => string | undefined {
  let violation: string | undefined;
  const watcher = new MqttFrameWatcher(maxPacketSize, {
    onPuback: () => undefined,
    onViolation: (reason) => {
      violation = `MQTT ${reason}`;
    },
  });
  return (chunk) => {
    if (violation === undefined) watcher.push(chunk);
    return violation;
  };
}

/**
 * Observes everything the adapter reads from `socket` (a `data` listener sees each chunk whether
 * the adapter consumes in flowing or paused mode) and destroys the socket on a violation.
 * Attach after the adapter has taken the socket, so the observer never starts the flow early.
 */
export function guardFrames(
  socket: Duplex,
  watch: (chunk: Buffer) => string | undefined,
  onViolation: (reason: string) => void,
): void {
  const listener = (chunk: unknown) => {
    if (!Buffer.isBuffer(chunk)) return;
    const violation = watch(chunk);
    if (violation !== undefined) {
      socket.removeListener('data', listener);
      onViolation(violation);
      socket.destroy();
    }
  };
  socket.on('data', listener);
}

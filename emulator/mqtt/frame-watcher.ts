/**
 * A passive observer of the MQTT byte stream a device sends. It tracks only fixed headers
 * (packet type and remaining length), which lets the adapter
 * - refuse a packet whose declared length exceeds the limit as soon as its header arrives —
 *   mqtt-packet (aedes 1.x) has no maximum packet size and would buffer up to 256 MB; and
 * - see each PUBACK's packet identifier, which aedes does not report for clean sessions, to
 *   complete the matching cloud-to-device message.
 * It never changes the stream: the adapter feeds it the chunks aedes reads.
 */

const PUBACK = 4;
/** MQTT's variable-length "remaining length" uses at most 4 bytes. */
const maxLengthBytes = 4;

export interface FrameWatcherHooks {
  /** A PUBACK for the given packet identifier has fully arrived. */
  onPuback(packetId: number): void;
  /** The stream cannot be valid (or is too large); the caller should drop the connection. */
  onViolation(reason: string): void;
}

type State = 'header' | 'length' | 'body';

export class MqttFrameWatcher {
  private state: State = 'header';
  private type = 0;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyRead = 0;
  private packetId = 0;
  private stopped = false;

  constructor(
    private readonly maxPacketBytes: number,
    private readonly hooks: FrameWatcherHooks,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      switch (this.state) {
        case 'header':
          this.type = (chunk[i] ?? 0) >> 4;
          i += 1;
          this.remaining = 0;
          this.multiplier = 1;
          this.lengthBytes = 0;
          this.state = 'length';
          break;
        case 'length': {
          const byte = chunk[i] ?? 0;
          i += 1;
          this.remaining += (byte & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          this.lengthBytes += 1;
          if (byte & 0x80) {
            if (this.lengthBytes === maxLengthBytes) this.violate('malformed remaining length');
          } else if (this.remaining > this.maxPacketBytes) {
            this.violate(`packet of ${this.remaining} bytes exceeds ${this.maxPacketBytes}`);
          } else if (this.remaining === 0) {
            this.state = 'header';
          } else {
            this.state = 'body';
            this.bodyRead = 0;
            this.packetId = 0;
          }
          break;
        }
        case 'body': {
          if (this.type === PUBACK) {
            // Packet identifier: the first two body bytes, big-endian.
            while (this.bodyRead < 2 && this.bodyRead < this.remaining && i < chunk.length) {
              this.packetId = (this.packetId << 8) | (chunk[i] ?? 0);
              this.bodyRead += 1;
              i += 1;
            }
          }
          const take = Math.min(this.remaining - this.bodyRead, chunk.length - i);
          this.bodyRead += take;
          i += take;
          if (this.bodyRead === this.remaining) {
            if (this.type === PUBACK && this.remaining >= 2) this.hooks.onPuback(this.packetId);
            this.state = 'header';
          }
          break;
        }
      }
    }
  }

  private violate(reason: string): void {
    this.stopped = true;
    this.hooks.onViolation(reason);
  }
}

/**
 * Publishing to one device connection through aedes. aedes has no "send to this client" call that
 * assigns the packet identifier we choose, so `client.publish` is used and aedes' `authorizeForward`
 * hook (called synchronously inside it, as every session is clean) lets exactly that packet
 * through to exactly that client, with the identifier its PUBACK will carry. Nothing else
 * published through the broker reaches a device.
 */
import type { Client, PublishPacket } from 'aedes';
import type { Logger } from '../context';
import { quote } from './device-session';

export class DirectPublisher {
  /** Set for the duration of one `publish`; consumed by `authorizeForward`. */
  private forwarding: { client: Client; packetId: number | undefined } | undefined;

  constructor(private readonly log: Logger) {}

  publish(
    client: Client,
    topic: string,
    payload: Buffer,
    qos: 0 | 1,
    packetId: number | undefined,
  ): void {
    this.forwarding = { client, packetId };
    try {
      const packet: PublishPacket = {
        cmd: 'publish',
        topic,
        payload,
        qos,
        retain: false,
        dup: false,
      };
      client.publish(packet, (error) => {
        // A failed write means the connection is going; its close abandons what was in flight.
        if (error && !client.closed)
          this.log.warn(`write to ${quote(client.id)} failed: ${error.message}`);
      });
    } finally {
      if (this.forwarding !== undefined) {
        this.log.error(`a message for ${quote(client.id)} was not handed over synchronously`);
      }
      this.forwarding = undefined;
    }
  }

  /** aedes' `authorizeForward`: only the packet being published by `publish`, only to its client. */
  authorizeForward<P extends PublishPacket>(client: Client, packet: P): P | null {
    const forwarding = this.forwarding;
    if (!forwarding || forwarding.client !== client) return null;
    if (forwarding.packetId !== undefined) packet.messageId = forwarding.packetId;
    this.forwarding = undefined;
    return packet;
  }
}

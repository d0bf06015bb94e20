/**
 * Sending cloud-to-device messages and reporting their delivery status. The send goes through
 * the shared AMQP service client; the status row is written once the hub has accepted the
 * message, so a refused send (unknown device, full queue) leaves no trace.
 */
import { randomUUID } from 'node:crypto';
import type { MessageStatus, SendMessageRequest } from './schemas';
import { describeError } from '../http/redact';
import { hubErrorToApiError } from '../http/hub-errors';
import { withHubTimeout } from '../iothub/errors';
import { isoNow, systemClock, type Clock } from '../clock';
import type { SharedServiceClient } from './shared-service-client';
import { buildC2dMessage } from './c2d-message';
import { isFinal, type MessageStatusStore } from './status-store';

/** Upper bound on one send, on top of the client's own failure detection. */
export const sendTimeoutMs = 30_000;
/** How often `?wait=` looks at the status row. */
export const waitPollMs = 500;

export interface SendOutcome {
  status: MessageStatus;
  /** False when the status row could not be written; the message was still sent. */
  recorded: boolean;
}

export class MessageService {
  constructor(
    private readonly client: SharedServiceClient,
    private readonly store: MessageStatusStore,
    private readonly clock: Clock = systemClock,
  ) {}

  async send(
    deviceId: string,
    request: SendMessageRequest,
    log: (text: string) => void,
  ): Promise<SendOutcome> {
    const messageId = request.messageId ?? randomUUID();
    const outgoing = buildC2dMessage(request, deviceId, messageId, new Date(this.clock.now()));
    try {
      await this.client.use((client) =>
        withHubTimeout(
          'Sending a cloud-to-device message',
          sendTimeoutMs,
          client.send(deviceId, outgoing.message),
        ),
      );
    } catch (error) {
      throw hubErrorToApiError(error, `Device '${deviceId}'`) ?? error;
    }
    try {
      return {
        status: await this.store.recordEnqueued(deviceId, messageId, outgoing.ack),
        recorded: true,
      };
    } catch (error) {
      // The hub has the message: failing now would invite a duplicate resend. Feedback will
      // still create the row when an outcome arrives.
      log(
        `Message ${messageId} for ${deviceId} was sent but its status row was not written: ${describeError(error)}`,
      );
      const at = isoNow(this.clock);
      return {
        status: {
          messageId,
          deviceId,
          status: 'enqueued',
          ack: outgoing.ack,
          enqueuedAt: at,
          updatedAt: at,
        },
        recorded: false,
      };
    }
  }

  /** Poll the status row until it holds an outcome or `seconds` pass; the last state seen. */
  async waitForOutcome(
    deviceId: string,
    messageId: string,
    seconds: number,
  ): Promise<MessageStatus | undefined> {
    const deadline = this.clock.now() + seconds * 1000;
    let latest: MessageStatus | undefined;
    for (;;) {
      latest = (await this.store.read(deviceId, messageId)) ?? latest;
      if (latest && isFinal(latest.status)) return latest;
      const left = deadline - this.clock.now();
      if (left <= 0) return latest;
      await this.clock.sleep(Math.min(waitPollMs, left));
    }
  }

  async status(deviceId: string, messageId: string): Promise<MessageStatus | undefined> {
    return this.store.read(deviceId, messageId);
  }
}

/**
 * The service's cloud-to-device link (`/messages/devicebound`): each message the service sends is
 * translated and enqueued in the core, then settled — accepted once the core holds it, rejected
 * with the condition azure-iothub maps back to the hub's error (device not found, queue full…).
 */
import type { AmqpError, Delivery, EventContext, Receiver } from 'rhea';
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { describeError } from './describe-error';
import { messageFields } from './rhea-server';
import { deviceboundAddress, rejectionCondition, toC2DMessage } from './service-messages';

export class C2dReceiver {
  constructor(
    private readonly ctx: EmulatorContext,
    /** The connection's peer, for log lines. */
    private readonly peer: string,
    /** True once the connection is gone: nothing can be settled then. */
    private readonly gone: () => boolean,
  ) {}

  /** Completes the attach of `receiver` (the service's sender) and serves its messages. */
  serve(receiver: Receiver, address: string | undefined): void {
    receiver.set_target({ address: address ?? deviceboundAddress });
    receiver.on('message', (context: EventContext) => {
      const { message, delivery } = context;
      if (!message || !delivery) return;
      void this.receive(messageFields(message), delivery);
    });
  }

  private async receive(message: Record<string, unknown>, delivery: Delivery): Promise<void> {
    let deviceId: string | undefined;
    try {
      const translated = toC2DMessage(message);
      deviceId = translated.deviceId;
      await this.ctx.core.c2d.enqueue(translated.deviceId, translated.input);
      this.settle(delivery);
    } catch (error) {
      const code = error instanceof HubError ? error.code : 'ServerError';
      const description = error instanceof HubError ? error.message : 'internal error';
      const target = deviceId === undefined ? '' : ` to device ${JSON.stringify(deviceId)}`;
      if (error instanceof HubError) {
        this.ctx.log.warn(`${this.peer}: C2D message${target} rejected: ${code}: ${description}`);
      } else {
        this.ctx.log.error(`${this.peer}: C2D message${target} failed: ${describeError(error)}`);
      }
      this.settle(delivery, { condition: rejectionCondition(code), description });
    }
  }

  private settle(delivery: Delivery, error?: AmqpError): void {
    // A pre-settled send expects no outcome; a gone connection cannot carry one.
    if (this.gone() || delivery.remote_settled) return;
    try {
      if (error) delivery.reject(error);
      else delivery.accept();
    } catch (settleError) {
      this.ctx.log.warn(
        `${this.peer}: could not settle a C2D delivery: ${describeError(settleError)}`,
      );
    }
  }
}

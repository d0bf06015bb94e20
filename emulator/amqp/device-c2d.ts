/**
 * Cloud-to-device messages over AMQP: the device's receiver on `/devices/{id}/messages/devicebound`.
 * Each message is locked in the core (without a timeout, as over MQTT: the link holds the lock)
 * and sent unsettled; the device's disposition settles it: accepted → complete, rejected →
 * reject, released or modified → abandon (azure-iot-device-amqp's complete/reject/abandon). What
 * is still in flight when the link or connection goes away is abandoned, so it is delivered again.
 */
import { message as amqpMessage, types, type Delivery, type EventContext, type Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import type { C2DMessage } from '../core/contracts';
import { outgoingMessage } from './rhea-server';

/** Messages in flight per link (sent, not yet settled by the device). */
const c2dWindow = 8;

export interface C2DLink {
  /** Abandons what is in flight and stops listening; idempotent. */
  dispose(): void;
}

function toDeviceMessage(message: C2DMessage): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    message_id: message.messageId,
    to: message.to,
    absolute_expiry_time: new Date(message.expiryTime),
    creation_time: new Date(message.enqueuedTime),
    delivery_count: types.wrap_uint(Math.max(0, message.deliveryCount - 1)),
    application_properties: { ...message.properties },
    message_annotations: {
      'iothub-enqueuedtime': new Date(message.enqueuedTime),
      'iothub-deliverycount': types.wrap_int(message.deliveryCount),
    },
    body: amqpMessage.data_section(message.body),
  };
  if (message.correlationId !== undefined) fields.correlation_id = message.correlationId;
  if (message.userId !== undefined) fields.user_id = Buffer.from(message.userId, 'utf8');
  if (message.contentType !== undefined) fields.content_type = message.contentType;
  if (message.contentEncoding !== undefined) fields.content_encoding = message.contentEncoding;
  return fields;
}

type Outcome = 'complete' | 'reject' | 'abandon';

/** Serves `deviceId`'s C2D queue on `sender` until disposed. */
export function serveC2D(ctx: EmulatorContext, deviceId: string, sender: Sender): C2DLink {
  const { core, log } = ctx;
  const inFlight = new Map<Delivery, string>();
  let disposed = false;

  const pump = (): void => {
    while (!disposed && inFlight.size < c2dWindow && sender.sendable()) {
      const next = core.c2d.lockNext(deviceId);
      if (!next) return;
      const delivery = sender.send(outgoingMessage(toDeviceMessage(next)));
      inFlight.set(delivery, next.lockToken);
      core.registry.recordActivity(deviceId);
    }
  };

  const settle = (delivery: Delivery | undefined, outcome: Outcome): void => {
    if (!delivery) return;
    const lockToken = inFlight.get(delivery);
    if (lockToken === undefined) return;
    inFlight.delete(delivery);
    core.c2d[outcome](deviceId, lockToken).then(pump, (error: unknown) => {
      // A lock can be gone (the device was deleted, the message expired); nothing to undo.
      log.warn(`device ${JSON.stringify(deviceId)}: C2D ${outcome} failed: ${String(error)}`);
      pump();
    });
  };

  sender.on('accepted', (context: EventContext) => settle(context.delivery, 'complete'));
  sender.on('rejected', (context: EventContext) => settle(context.delivery, 'reject'));
  sender.on('released', (context: EventContext) => settle(context.delivery, 'abandon'));
  sender.on('modified', (context: EventContext) => settle(context.delivery, 'abandon'));
  sender.on('sendable', pump);
  const stopListening = core.c2d.onAvailable((id) => {
    if (id === deviceId) pump();
  });

  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    stopListening();
    for (const lockToken of inFlight.values()) {
      core.c2d.abandon(deviceId, lockToken).catch(() => undefined);
    }
    inFlight.clear();
  };
  sender.on('sender_close', dispose);
  pump();
  return { dispose };
}

/**
 * One service client's feedback receiver (`/messages/serviceBound/feedback`), served from the
 * core's feedback batches: a batch is handed out only while the client has credit, stays
 * pending until the client settles it, is gone for good once accepted, and goes back to the
 * core when released, rejected, settled without an outcome, or left unsettled on detach.
 */
import type { Delivery, EventContext, Sender } from 'rhea';
import type { Logger } from '../context';
import type { Feedback } from '../core/contracts';
import { outgoingMessage } from './rhea-server';
import { toFeedbackMessage } from './service-messages';

/** rhea keeps these on every sender; the typings omit them. */
interface SenderCounters {
  credit: number;
  delivery_count: number;
}

function counters(sender: Sender): SenderCounters {
  return sender as Sender & SenderCounters;
}

export interface FeedbackLink {
  /** Stops serving and hands every unsettled batch back to the core. */
  dispose(): void;
}

export function serveFeedback(
  sender: Sender,
  feedback: Feedback,
  hubName: string,
  log: Logger,
): FeedbackLink {
  const unsettled = new Map<Delivery, string>();
  let sent = 0;
  let disposed = false;

  // rhea takes credit only when a delivery actually goes out, so count queued ones ourselves.
  const credit = (): number => {
    const { credit: linkCredit, delivery_count: transferred } = counters(sender);
    return linkCredit - (sent - transferred);
  };

  const pump = (): void => {
    if (disposed || !sender.is_open()) return;
    while (credit() > 0) {
      const batch = feedback.take();
      if (!batch) return;
      const delivery = sender.send(outgoingMessage(toFeedbackMessage(batch, hubName)));
      sent += 1;
      unsettled.set(delivery, batch.batchId);
    }
  };

  const release = (delivery: Delivery | undefined): void => {
    if (!delivery) return;
    const batchId = unsettled.get(delivery);
    if (batchId === undefined) return;
    unsettled.delete(delivery);
    feedback.release(batchId);
  };

  const onAccepted = (context: EventContext): void => {
    const delivery = context.delivery;
    if (!delivery) return;
    const batchId = unsettled.get(delivery);
    if (batchId === undefined) return;
    unsettled.delete(delivery);
    feedback.settle(batchId).catch((error: unknown) => {
      log.error(`could not settle feedback batch ${batchId}: ${String(error)}`);
    });
  };

  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    stopListening();
    for (const batchId of unsettled.values()) feedback.release(batchId);
    unsettled.clear();
  };

  const stopListening = feedback.onAvailable(pump);
  sender.on('sendable', pump);
  sender.on('accepted', onAccepted);
  sender.on('released', (context: EventContext) => release(context.delivery));
  sender.on('rejected', (context: EventContext) => release(context.delivery));
  // Settled without an outcome (or after one we did not act on): not accepted, so not gone.
  sender.on('settled', (context: EventContext) => release(context.delivery));
  sender.on('sender_close', dispose);
  sender.on('sender_error', dispose);
  pump();
  return { dispose };
}

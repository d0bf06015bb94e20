/**
 * One fake of the IoT Hub service client (`ServiceClient`, lib/iothub/clients.ts) for unit tests
 * of the message and feedback code: it records sends, can fail opens and sends, drop its
 * connection, and hands out a feedback receiver the test feeds batches into.
 */
import type { Message } from 'azure-iot-common';
import type { FeedbackMessage, FeedbackReceiver, ServiceClient } from '../../lib/iothub/clients';

export class FakeFeedbackReceiver implements FeedbackReceiver {
  private listener: ((message: FeedbackMessage) => void) | undefined;
  /** `complete:<label>` / `reject:<label>` per settled batch, in order. */
  settled: string[] = [];

  onMessage(listener: (message: FeedbackMessage) => void): void {
    this.listener = listener;
  }
  onError(): void {}

  /** One feedback batch (`records` as JSON, or raw text); `onComplete` runs at completion. */
  deliver(records: unknown, label: string, onComplete: () => void = () => undefined): void {
    const data = Buffer.from(typeof records === 'string' ? records : JSON.stringify(records));
    this.listener?.({
      data,
      complete: () => {
        onComplete();
        this.settled.push(`complete:${label}`);
        return Promise.resolve();
      },
      reject: () => {
        this.settled.push(`reject:${label}`);
        return Promise.resolve();
      },
    });
  }
}

export class FakeServiceClient implements ServiceClient {
  sent: { deviceId: string; message: Message }[] = [];
  opens = 0;
  closes = 0;
  sendError: Error | undefined;
  openError: Error | undefined;
  receiver = new FakeFeedbackReceiver();
  receiverRequests = 0;
  private onDrop: (() => void) | undefined;

  open(): Promise<void> {
    this.opens += 1;
    return this.openError ? Promise.reject(this.openError) : Promise.resolve();
  }
  close(): Promise<void> {
    this.closes += 1;
    return Promise.resolve();
  }
  send(deviceId: string, message: Message): Promise<void> {
    if (this.sendError) return Promise.reject(this.sendError);
    this.sent.push({ deviceId, message });
    return Promise.resolve();
  }
  getFeedbackReceiver(): Promise<FeedbackReceiver> {
    this.receiverRequests += 1;
    return Promise.resolve(this.receiver);
  }
  onDisconnect(listener: () => void): void {
    this.onDrop = listener;
  }
  /** The connection drops (the client then reports a disconnect). */
  drop(): void {
    this.onDrop?.();
  }
}

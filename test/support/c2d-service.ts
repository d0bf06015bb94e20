/**
 * The cloud-to-device test setup several conformance suites share: an in-memory local IoT Hub that
 * closes feedback batches after 100 ms, a Registry, and the official service `Client` (AMQP; its
 * REST calls such as `invokeDeviceMethod` reach `host:port` too) with its feedback receiver
 * collecting every record; and the message helpers those suites use.
 */
import { Message } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import type { FeedbackRecord } from '../../emulator/core/contracts';
import { createRegistry, createServiceClient } from '../../lib/iothub/registry-agent';
import { dataText } from './devices';
import { startEmulator, type EmulatorInstance } from './emulator';
import { until } from './wait';

export interface C2dService {
  emulator: EmulatorInstance;
  registry: Registry;
  service: ServiceClient;
  /** Every feedback record received so far, in order. */
  feedback: FeedbackRecord[];
  feedbackFor: (messageId: string) => FeedbackRecord | undefined;
  /** Waits for the feedback record of `messageId`. */
  feedbackArrived: (messageId: string) => Promise<FeedbackRecord>;
  /** Closes the service client and stops the hub. */
  stop: () => Promise<void>;
}

/** `args`: more command-line options for the hub (e.g. `--trusted-device-ca`). */
export async function startC2dService(args: readonly string[] = []): Promise<C2dService> {
  const emulator = await startEmulator({
    inMemory: true,
    args: ['--feedback-delay-ms', '100', ...args],
  });
  const registry = createRegistry(emulator.connection.serviceConnectionString);
  const service = createServiceClient(emulator.connection.serviceConnectionString);
  await service.open();
  const feedback: FeedbackRecord[] = [];
  const { result: receiver } = await service.getFeedbackReceiver();
  receiver.on('message', (message: Message) => {
    feedback.push(...(JSON.parse(dataText(message)) as FeedbackRecord[]));
    void receiver.complete(message);
  });
  const feedbackFor = (messageId: string) =>
    feedback.find((record) => record.originalMessageId === messageId);
  return {
    emulator,
    registry,
    service,
    feedback,
    feedbackFor,
    feedbackArrived: (messageId) =>
      until(`feedback for ${messageId}`, () => feedbackFor(messageId)),
    stop: async () => {
      await service.close();
      await emulator.stop();
    },
  };
}

/** A C2D message with an id and an ack mode (body: `body of <id>` unless given). */
export function c2dMessage(
  messageId: string,
  ack = 'full',
  body = `body of ${messageId}`,
): Message {
  const message = new Message(body);
  message.messageId = messageId;
  message.ack = ack;
  return message;
}

/** C2D messages as they arrive at `client`, left for the test to settle. */
export function inbox(client: DeviceClient): Message[] {
  const received: Message[] = [];
  client.on('message', (message: Message) => received.push(message));
  return received;
}

/** Waits for the `n`th message (from 1) of an inbox. */
export function nthMessage(received: Message[], n: number): Promise<Message> {
  return until(`C2D message #${n}`, () => received[n - 1]);
}

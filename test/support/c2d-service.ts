/**
 * The cloud-to-device test setup several conformance suites share: an in-memory local IoT Hub that
 * closes feedback batches after 100 ms, a Registry, and the official service `Client` (AMQP) with
 * its feedback receiver collecting every record.
 */
import type { Message } from 'azure-iot-common';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import type { FeedbackRecord } from '../../emulator/core/contracts';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { dataText } from './devices';
import { startEmulator, type EmulatorInstance } from './emulator';

export interface C2dService {
  emulator: EmulatorInstance;
  registry: Registry;
  service: ServiceClient;
  /** Every feedback record received so far, in order. */
  feedback: FeedbackRecord[];
  feedbackFor: (messageId: string) => FeedbackRecord | undefined;
  /** Closes the service client and stops the hub. */
  stop: () => Promise<void>;
}

export async function startC2dService(): Promise<C2dService> {
  const emulator = await startEmulator({ inMemory: true, args: ['--feedback-delay-ms', '100'] });
  const registry = createRegistry(emulator.connection.serviceConnectionString);
  const service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  await service.open();
  const feedback: FeedbackRecord[] = [];
  const { result: receiver } = await service.getFeedbackReceiver();
  receiver.on('message', (message: Message) => {
    feedback.push(...(JSON.parse(dataText(message)) as FeedbackRecord[]));
    void receiver.complete(message);
  });
  return {
    emulator,
    registry,
    service,
    feedback,
    feedbackFor: (messageId) => feedback.find((record) => record.originalMessageId === messageId),
    stop: async () => {
      await service.close();
      await emulator.stop();
    },
  };
}

/**
 * IoT Hub-shaped Event Hub trigger input, as the Functions host delivers it to a Node handler
 * (after `@azure/functions` camel-cased the metadata keys): for tests, benchmarks and local
 * tools. Nothing in the app's runtime path uses it.
 */

export interface SampleEvent {
  /** Omit to simulate an event without the device system property. */
  deviceId?: string;
  body: unknown;
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Custom application properties (already camel-cased, as the library delivers them). */
  properties?: Record<string, string>;
  sequenceNumber: number;
  enqueuedTime: Date;
}

export interface SampleBatch {
  messages: unknown[];
  triggerMetadata: Record<string, unknown>;
}

/** `messages` and `triggerMetadata` for one `cardinality: 'many'` invocation. */
export function sampleBatch(
  events: readonly SampleEvent[],
  partitionId = '0',
  hubName = 'local-iothub',
): SampleBatch {
  const systemPropertiesArray = events.map((e) => {
    const enqueued = e.enqueuedTime.toISOString();
    const offset = String(e.sequenceNumber * 512);
    const system: Record<string, unknown> = {
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub"}',
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-enqueuedtime': enqueued,
      'iothub-message-source': 'Telemetry',
      'x-opt-sequence-number': e.sequenceNumber,
      'x-opt-offset': offset,
      'x-opt-enqueued-time': enqueued,
      sequenceNumber: e.sequenceNumber,
      offset,
      partitionKey: null,
      enqueuedTimeUtc: enqueued,
    };
    if (e.deviceId !== undefined) system['iothub-connection-device-id'] = e.deviceId;
    if (e.messageId !== undefined) system['message-id'] = e.messageId;
    if (e.correlationId !== undefined) system['correlation-id'] = e.correlationId;
    if (e.contentType !== undefined) system['content-type'] = e.contentType;
    if (e.contentEncoding !== undefined) system['content-encoding'] = e.contentEncoding;
    return system;
  });
  return {
    messages: events.map((e) => e.body),
    triggerMetadata: {
      partitionContext: {
        consumerGroup: '$Default',
        eventHubName: hubName,
        fullyQualifiedNamespace: 'localhost',
        partitionId,
      },
      partitionKeyArray: [],
      offsetArray: systemPropertiesArray.map((s) => s.offset),
      sequenceNumberArray: events.map((e) => e.sequenceNumber),
      enqueuedTimeUtcArray: events.map((e) => e.enqueuedTime.toISOString()),
      propertiesArray: events.map((e) => ({ ...e.properties })),
      systemPropertiesArray,
    },
  };
}

/** The tutorial's telemetry (`{deviceId, windSpeed}`, JSON, UTF-8) as bytes. */
export function tutorialEvents(options: {
  count: number;
  devices: number;
  start: Date;
  firstSequenceNumber?: number;
  windSpeed?: (i: number) => number;
}): SampleEvent[] {
  const first = options.firstSequenceNumber ?? 0;
  return Array.from({ length: options.count }, (_, i) => {
    const deviceId = `sim-${i % options.devices}`;
    const windSpeed = options.windSpeed?.(i) ?? 10 + ((i * 7) % 40) / 10 + 2;
    return {
      deviceId,
      body: Buffer.from(JSON.stringify({ deviceId, windSpeed }), 'utf8'),
      messageId: `msg-${first + i}`,
      correlationId: `corr-${first + i}`,
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      properties: { property: `value-${i}` },
      sequenceNumber: first + i,
      enqueuedTime: new Date(options.start.getTime() + i),
    };
  });
}

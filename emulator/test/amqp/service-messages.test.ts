import { message as amqpMessage, string_to_uuid } from 'rhea';
import { HubError } from '../../core/contracts';
import { hostOf, sameHost } from '../../auth/hosts';
import {
  ackMode,
  bodyBytes,
  deviceIdFromTo,
  feedbackContentType,
  messageIdText,
  rejectionCondition,
  sameAddress,
  toC2DMessage,
  toFeedbackMessage,
} from '../../amqp/service-messages';

function hubErrorCode(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return error instanceof HubError ? error.code : 'not a HubError';
  }
  return undefined;
}

describe('C2D messages from azure-iothub', () => {
  addressAndTranslationTests();
  fieldMappingTests();
});

/** The addresses of a C2D message and of links, and a whole message translated. */
function addressAndTranslationTests(): void {
  it('reads the device from an encoded "to" address', () => {
    expect(deviceIdFromTo('/devices/my%20device%2Fx/messages/devicebound')).toBe('my device/x');
    expect(deviceIdFromTo('/DEVICES/dev1/Messages/DeviceBound')).toBe('dev1');
  });

  it('refuses a missing or foreign "to" as ArgumentInvalid', () => {
    expect(hubErrorCode(() => deviceIdFromTo(undefined))).toBe('ArgumentInvalid');
    expect(hubErrorCode(() => deviceIdFromTo('/devices/a/messages/events'))).toBe(
      'ArgumentInvalid',
    );
    expect(hubErrorCode(() => deviceIdFromTo('/devices/%E0%A4%A/messages/devicebound'))).toBe(
      'ArgumentInvalid',
    );
  });

  it('matches link addresses case-insensitively', () => {
    expect(sameAddress('/messages/servicebound/feedback', '/messages/serviceBound/feedback')).toBe(
      true,
    );
    expect(sameAddress(undefined, '/messages/devicebound')).toBe(false);
  });

  it('translates a message as the SDK encodes it, after an AMQP round trip', () => {
    const expiry = new Date(Date.UTC(2030, 0, 1));
    const encoded = amqpMessage.encode({
      to: '/devices/dev%231/messages/devicebound',
      message_id: string_to_uuid('1b4e28ba-2fa1-41d2-883f-0016d3cca427'),
      correlation_id: 'corr-1',
      content_type: 'application/json',
      content_encoding: 'utf-8',
      absolute_expiry_time: expiry,
      application_properties: { 'iothub-ack': 'full', color: 'blue', count: 3 },
      body: amqpMessage.data_section(Buffer.from('{"hello":1}')),
    });
    const decoded = amqpMessage.decode(encoded) as unknown as Record<string, unknown>;
    const { deviceId, input } = toC2DMessage(decoded);
    expect(deviceId).toBe('dev#1');
    expect(input).toEqual({
      ack: 'full',
      properties: { color: 'blue', count: '3' },
      body: Buffer.from('{"hello":1}'),
      messageId: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
      correlationId: 'corr-1',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      expiryTime: expiry.getTime(),
    });
  });
}

/** Single fields: message ids, the ack mode, the body, and error conditions. */
function fieldMappingTests(): void {
  it('turns AMQP uuids back into their canonical text and keeps strings', () => {
    const id = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
    expect(messageIdText(string_to_uuid(id), 'message_id')).toBe(id);
    expect(messageIdText('plain-id', 'message_id')).toBe('plain-id');
    expect(messageIdText(42, 'message_id')).toBe('42');
    expect(messageIdText(undefined, 'message_id')).toBeUndefined();
  });

  it('maps iothub-ack, rejecting unknown modes', () => {
    expect(ackMode(undefined)).toBe('none');
    expect(ackMode('full')).toBe('full');
    expect(ackMode('Positive')).toBe('positive');
    expect(hubErrorCode(() => ackMode('sometimes'))).toBe('ArgumentInvalid');
  });

  it('takes the body from data sections or an amqp-value string', () => {
    expect(bodyBytes(amqpMessage.data_section(Buffer.from('abc'))).toString()).toBe('abc');
    expect(
      bodyBytes(amqpMessage.data_sections([Buffer.from('ab'), Buffer.from('cd')])).toString(),
    ).toBe('abcd');
    expect(bodyBytes('text').toString()).toBe('text');
    expect(bodyBytes(undefined)).toHaveLength(0);
    expect(hubErrorCode(() => bodyBytes({ some: 'map' }))).toBe('ArgumentInvalid');
  });

  it('maps core errors to the conditions azure-iothub translates', () => {
    expect(rejectionCondition('DeviceNotFound')).toBe('amqp:not-found');
    expect(rejectionCondition('DeviceMaximumQueueDepthExceeded')).toBe(
      'amqp:resource-limit-exceeded',
    );
    expect(rejectionCondition('MessageTooLarge')).toBe('amqp:link:message-size-exceeded');
    expect(rejectionCondition('ArgumentInvalid')).toBe('amqp:invalid-field');
    expect(rejectionCondition('ServerError')).toBe('amqp:internal-error');
  });
}

describe('feedback messages', () => {
  it('carries the records as JSON in a data section with the feedback content type', () => {
    const batch = {
      batchId: 'batch-1',
      enqueuedTime: Date.UTC(2024, 0, 1),
      records: [
        {
          originalMessageId: 'm1',
          deviceId: 'd1',
          deviceGenerationId: 'g1',
          enqueuedTimeUtc: '2024-01-01T00:00:00.000Z',
          statusCode: 'Expired' as const,
          description: 'Message expired',
        },
      ],
    };
    const decoded = amqpMessage.decode(
      amqpMessage.encode(toFeedbackMessage(batch, 'local-iothub')),
    ) as unknown as Record<string, unknown>;
    expect(decoded.message_id).toBe('batch-1');
    expect(decoded.content_type).toBe(feedbackContentType);
    const body = decoded.body as { typecode: number; content: Buffer };
    expect(body.typecode).toBe(0x75);
    expect(JSON.parse(body.content.toString('utf8'))).toEqual(batch.records);
  });
});

describe('service token hosts', () => {
  it('compares hosts without scheme, port or case, treating loopback names as one', () => {
    expect(hostOf('LocalHost%3A4443')).toBe('localhost');
    expect(hostOf('amqps://[::1]:5671/path')).toBe('::1');
    expect(sameHost('localhost%3A4443', '127.0.0.1:4443')).toBe(true);
    expect(sameHost('myhub.azure-devices.net', 'MyHub.azure-devices.net:443')).toBe(true);
    expect(sameHost('otherhub.azure-devices.net', 'myhub.azure-devices.net')).toBe(false);
    expect(sameHost('otherhub', 'localhost')).toBe(false);
  });
});

/**
 * The back end's C2D limit arithmetic against the local hub's: the size the API counts is what
 * the core counts, and the API's MQTT topic length is never below the topic the hub publishes.
 */
import { createCore } from '../../../../emulator/core/create-core';
import { encodeC2DPropertyBag } from '../../../../emulator/mqtt/property-bag';
import { deviceboundTopicPrefix } from '../../../../emulator/mqtt/topics';
import {
  c2dMessageBytes,
  maxC2dMessageBytes,
  mqttTopicBytes,
  type C2dMessageParts,
} from '../../../../lib/messages/c2d-limits';

const parts: C2dMessageParts = {
  deviceId: 'dev-1',
  body: Buffer.from('{"command":"blink"}'),
  messageId: 'msg%1',
  correlationId: 'corr#2',
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  properties: { 'k&1': 'v%2', plain: 'text', empty: '' },
};

describe('C2D limits', () => {
  it('counts body, system property values and property names and values', () => {
    const expected =
      19 + 5 + 6 + 16 + 5 + '/devices/dev-1/messages/devicebound'.length + 3 + 3 + 5 + 4 + 5;
    expect(c2dMessageBytes(parts)).toBe(expected);
  });

  it('predicts the exact topic the local hub publishes', async () => {
    const core = await createCore();
    try {
      await core.registry.create({ deviceId: parts.deviceId });
      await core.c2d.enqueue(parts.deviceId, {
        ack: 'none',
        body: parts.body,
        messageId: parts.messageId,
        correlationId: parts.correlationId!,
        contentType: parts.contentType!,
        contentEncoding: parts.contentEncoding!,
        properties: { ...parts.properties },
      });
      const queued = core.c2d.lockNext(parts.deviceId)!;
      const topic = `${deviceboundTopicPrefix(parts.deviceId)}${encodeC2DPropertyBag(queued)}`;
      expect(mqttTopicBytes(parts)).toBe(Buffer.byteLength(topic));
    } finally {
      await core.close();
    }
  });

  it('the local hub accepts exactly what the API counts as the limit, and refuses one byte more', async () => {
    const core = await createCore();
    try {
      await core.registry.create({ deviceId: parts.deviceId });
      const room = maxC2dMessageBytes - c2dMessageBytes(parts) + parts.body.length;
      const input = (bodyBytes: number) => ({
        ack: 'none' as const,
        body: Buffer.alloc(bodyBytes, 0x61),
        messageId: parts.messageId,
        correlationId: parts.correlationId!,
        contentType: parts.contentType!,
        contentEncoding: parts.contentEncoding!,
        properties: { ...parts.properties },
      });
      await expect(core.c2d.enqueue(parts.deviceId, input(room))).resolves.toBeDefined();
      await expect(core.c2d.enqueue(parts.deviceId, input(room + 1))).rejects.toMatchObject({
        code: 'MessageTooLarge',
      });
    } finally {
      await core.close();
    }
  });
});

/**
 * The size IoT Hub counts against its message limits (64 KB cloud-to-device, 256 KB
 * device-to-cloud): the body, the values of the system properties and the names and values of the
 * application properties, as UTF-8.
 */
export interface CountedMessage {
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  to?: string;
  contentType?: string;
  contentEncoding?: string;
  properties: Readonly<Record<string, string>>;
}

export function countedMessageBytes(message: CountedMessage): number {
  let total = message.body.length;
  const system = [
    message.messageId,
    message.correlationId,
    message.userId,
    message.to,
    message.contentType,
    message.contentEncoding,
  ];
  for (const value of system) if (value !== undefined) total += Buffer.byteLength(value, 'utf8');
  for (const [name, value] of Object.entries(message.properties)) {
    total += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

/**
 * Twin and direct-method traffic of AMQP devices, as azure-iot-device-amqp 1.14.x speaks it,
 * on top of the core's twins and methods (the MQTT side is ../mqtt/twin-methods.ts):
 * - twin: a link pair on `/devices/{id}/twin`. Requests carry the `operation` annotation (GET,
 *   PATCH with `resource` `/properties/reported`, PUT/DELETE on
 *   `/notifications/twin/properties/desired`) and a `correlation_id`; each answer carries that
 *   `correlation_id` and a `status` annotation. Desired changes go out without a correlation id
 *   once the device has PUT the notification resource.
 * - methods: a link pair on `/devices/{id}/methods/devicebound`. Calls go out with
 *   `correlation_id` = request id and the `IoThub-methodname` application property; answers come
 *   back with that `correlation_id` and `IoThub-status`.
 */
import { message as amqpMessage, types, type Delivery, type Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { outgoingMessage } from './rhea-server';
import { bodyBytes, messageIdText } from './service-messages';

const desiredResource = '/notifications/twin/properties/desired';
const reportedResource = '/properties/reported';

function stringAnnotation(message: Record<string, unknown>, key: string): string | undefined {
  const annotations: unknown = message.message_annotations;
  if (typeof annotations !== 'object' || annotations === null) return undefined;
  const value: unknown = (annotations as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}

function jsonSection(value: unknown): unknown {
  return amqpMessage.data_section(
    Buffer.from(value === undefined ? '' : JSON.stringify(value), 'utf8'),
  );
}

/** The twin error status a device sees for a refused request. */
function twinStatusOf(error: unknown): number {
  if (error instanceof HubError) {
    if (error.code === 'ArgumentInvalid') return 400;
    if (error.code === 'MessageTooLarge') return 413;
    if (error.code === 'DeviceNotFound') return 404;
  }
  return 500;
}

/** One device's twin link pair on one connection. */
export class TwinChannel {
  private responder: Sender | undefined;
  private notifying = false;
  private readonly stopDesired: () => void;

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly deviceId: string,
  ) {
    this.stopDesired = ctx.core.twins.onDesiredChanged((id, patch) => {
      if (id === this.deviceId && this.notifying) this.send({ body: jsonSection(patch) });
    });
  }

  /** The device's receiver: where answers and desired changes go. */
  setResponder(sender: Sender): void {
    this.responder = sender;
  }

  close(): void {
    this.stopDesired();
    this.responder = undefined;
  }

  /** One request from the device's sender; answered on the responder. */
  handle(message: Record<string, unknown>, delivery: Delivery): void {
    if (!delivery.remote_settled) delivery.accept();
    this.ctx.core.registry.recordActivity(this.deviceId);
    const correlationId = message.correlation_id;
    const answer = (status: number, body?: unknown): void =>
      this.send({
        correlation_id: correlationId,
        message_annotations: { status: types.wrap_int(status) },
        body: jsonSection(body),
      });
    const operation = stringAnnotation(message, 'operation')?.toUpperCase();
    const resource = stringAnnotation(message, 'resource');
    if (operation === 'GET') return this.answerGet(answer);
    if (operation === 'PATCH' && resource === reportedResource) {
      return this.applyReported(message, answer);
    }
    if ((operation === 'PUT' || operation === 'DELETE') && resource === desiredResource) {
      this.notifying = operation === 'PUT';
      return answer(200);
    }
    answer(400, { errorCode: 400004, message: 'unsupported twin operation' });
  }

  private answerGet(answer: (status: number, body?: unknown) => void): void {
    const twin = this.ctx.core.twins.get(this.deviceId);
    if (!twin) return answer(404, { errorCode: 404001, message: 'device not found' });
    answer(200, {
      desired: { ...twin.desired.properties, $version: twin.desired.version },
      reported: { ...twin.reported.properties, $version: twin.reported.version },
    });
  }

  private applyReported(
    message: Record<string, unknown>,
    answer: (status: number, body?: unknown) => void,
  ): void {
    let patch: unknown;
    try {
      patch = JSON.parse(bodyBytes(message.body).toString('utf8'));
    } catch {
      return answer(400, { errorCode: 400004, message: 'the reported patch is not JSON' });
    }
    this.ctx.core.twins.updateReported(this.deviceId, patch).then(
      () => answer(204),
      (error: unknown) => {
        const status = twinStatusOf(error);
        const text = error instanceof Error ? error.message : 'internal error';
        this.ctx.log.warn(
          `device ${JSON.stringify(this.deviceId)}: reported properties refused (${status}): ${text}`,
        );
        answer(status, { errorCode: status * 1000 + 4, message: text });
      },
    );
  }

  private send(fields: Record<string, unknown>): void {
    const sender = this.responder;
    if (!sender?.is_open()) return;
    sender.send(outgoingMessage(fields));
  }
}

/** Delivers `deviceId`'s method calls on `sender` (the device's receiver); returns the removal. */
export function serveMethodCalls(
  ctx: EmulatorContext,
  deviceId: string,
  sender: Sender,
): () => void {
  return ctx.core.methods.listen(deviceId, (request) => {
    if (!sender.is_open()) return;
    sender.send(
      outgoingMessage({
        correlation_id: request.requestId,
        application_properties: { 'IoThub-methodname': request.methodName },
        body: amqpMessage.data_section(Buffer.from(request.body, 'utf8')),
      }),
    );
  });
}

/** One method answer from the device's sender. */
export function receiveMethodResponse(
  ctx: EmulatorContext,
  deviceId: string,
  message: Record<string, unknown>,
  delivery: Delivery,
): void {
  if (!delivery.remote_settled) delivery.accept();
  let requestId: string | undefined;
  try {
    requestId = messageIdText(message.correlation_id, 'correlation_id');
  } catch {
    requestId = undefined;
  }
  const properties: unknown = message.application_properties;
  const status: unknown =
    typeof properties === 'object' && properties !== null
      ? (properties as Record<string, unknown>)['IoThub-status']
      : undefined;
  let body: Buffer;
  try {
    body = bodyBytes(message.body);
  } catch {
    body = Buffer.alloc(0);
  }
  if (requestId === undefined || typeof status !== 'number') {
    ctx.log.warn(
      `device ${JSON.stringify(deviceId)}: ignored a method response without id or status`,
    );
    return;
  }
  if (!ctx.core.methods.respond(deviceId, requestId, status, body)) {
    ctx.log.info(
      `device ${JSON.stringify(deviceId)}: ignored a method response for unknown or expired request ${JSON.stringify(requestId)}`,
    );
  }
}

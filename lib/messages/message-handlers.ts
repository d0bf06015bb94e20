/**
 * HTTP handlers for cloud-to-device messages: send (optionally waiting for the outcome) and
 * read a message's delivery status.
 */
import type { HttpRequest } from '@azure/functions';
import { ApiError } from '../http/problem';
import { queryObject, readJsonBody, routeId, validate } from '../http/request';
import { jsonResponse, withProblems, type HttpHandler } from '../http/respond';
import { maxMessageRequestBytes } from './c2d-limits';
import { isFinal } from './status-store';
import type { MessageService } from './message-service';
import { SendMessageQuery, SendMessageRequest, type MessageAccepted } from './schemas';
import { deviceIdSyntax, messageIdSyntax } from '../http/schemas';

function deviceIdParam(request: HttpRequest): string {
  return routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
}

function statusUrl(request: HttpRequest, messageId: string): string {
  const url = new URL(request.url);
  return `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(messageId)}`;
}

export interface MessageHandlers {
  send: HttpHandler;
  status: HttpHandler;
}

/** What the message handlers need from the composition root (`lib/app/services.ts`). */
export interface MessageHandlerServices {
  messages: MessageService;
}

export function createMessageHandlers(services: () => MessageHandlerServices): MessageHandlers {
  return {
    send: withProblems(async (request, context) => {
      const deviceId = deviceIdParam(request);
      const query = validate(SendMessageQuery, queryObject(request), 'query string');
      const raw = await readJsonBody(request, maxMessageRequestBytes);
      // Sizes and MQTT deliverability are checked when the message is built (c2d-limits.ts).
      const body = validate(SendMessageRequest, raw, 'message');
      const { messages } = services();
      const sent = await messages.send(deviceId, body, (text) => context.warn(text));
      const location = statusUrl(request, sent.status.messageId);
      // With ack none the hub sends no feedback, so there is nothing to wait for.
      if (query.wait && sent.recorded && sent.status.ack !== 'none') {
        const outcome = await messages.waitForOutcome(deviceId, sent.status.messageId, query.wait);
        if (outcome && isFinal(outcome.status)) {
          return jsonResponse(200, outcome, { 'Content-Location': location });
        }
      }
      const accepted: MessageAccepted = {
        messageId: sent.status.messageId,
        status: 'enqueued',
        statusUrl: location,
      };
      return jsonResponse(202, accepted, { Location: location });
    }),

    status: withProblems(async (request) => {
      const deviceId = deviceIdParam(request);
      const messageId = routeId(request, 'messageId', messageIdSyntax, 'validationFailed');
      const status = await services().messages.status(deviceId, messageId);
      if (!status) {
        throw new ApiError(
          'messageNotFound',
          `No message '${messageId}' was sent to '${deviceId}' through this API, and no feedback names it.`,
        );
      }
      return jsonResponse(200, status);
    }),
  };
}

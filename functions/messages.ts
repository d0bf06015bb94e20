/**
 * Cloud-to-device routes: POST /devices/{deviceId}/messages and
 * GET /devices/{deviceId}/messages/{messageId}. Logic in lib/messages/message-handlers.ts.
 */
import { app } from '@azure/functions';
import { createMessageHandlers } from '../lib/messages/message-handlers';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';

export const messageHandlers = createMessageHandlers(() => appRoot.api());

app.http('sendMessage', {
  route: routes.messages,
  methods: ['POST'],
  authLevel: 'function',
  handler: messageHandlers.send,
});

app.http('getMessageStatus', {
  route: routes.message,
  methods: ['GET'],
  authLevel: 'function',
  handler: messageHandlers.status,
});

/**
 * Cloud-to-device routes: POST /devices/{deviceId}/messages and
 * GET /devices/{deviceId}/messages/{messageId}. Logic in lib/api/message-handlers.ts.
 */
import { app } from '@azure/functions';
import { createMessageHandlers } from '../lib/api/message-handlers';
import { routes } from '../lib/api/operations';
import { apiServices } from '../lib/api/services';

export const messageHandlers = createMessageHandlers(apiServices);

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

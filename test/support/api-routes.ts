/** Every route the API serves, as `METHOD /path` under `/api`: what the OpenAPI document must list. */
export const apiOperations: readonly string[] = [
  'POST /devices',
  'GET /devices',
  'GET /devices/{deviceId}',
  'PATCH /devices/{deviceId}',
  'DELETE /devices/{deviceId}',
  'POST /devices/{deviceId}/messages',
  'GET /devices/{deviceId}/messages/{messageId}',
  'GET /devices/{deviceId}/telemetry',
  'GET /devices/{deviceId}/alerts',
  'GET /devices/{deviceId}/deadletters',
  'GET /devices/{deviceId}/twin',
  'PATCH /devices/{deviceId}/twin',
  'POST /devices/{deviceId}/methods/{methodName}',
  'GET /health',
  'GET /openapi.json',
];

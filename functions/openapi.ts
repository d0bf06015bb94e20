/** GET /openapi.json (anonymous): the OpenAPI 3.1 document generated from the API's schemas. */
import { app } from '@azure/functions';
import type { HttpResponseInit } from '@azure/functions';
import { openApiJson } from '../lib/app/openapi';
import { routes } from '../lib/app/operations';

export function openApiHandler(): Promise<HttpResponseInit> {
  return Promise.resolve({
    status: 200,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: openApiJson(),
  });
}

app.http('openapi', {
  route: routes.openapi,
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: openApiHandler,
});

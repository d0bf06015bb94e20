import { z } from 'zod';
import { buildOpenApiDocument } from '../../../../lib/app/openapi';
import { CreateDeviceRequest } from '../../../../lib/devices/schemas';
import { SendMessageRequest } from '../../../../lib/messages/schemas';
import { apiOperations } from '../../../support/api-routes';

type Json = Record<string, unknown>;
const document = buildOpenApiDocument() as {
  openapi: string;
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json> };
};

/** Every `$ref` in the document, to check that each resolves. */
function refs(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => refs(v, found));
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.push(inner);
      else refs(inner, found);
    }
  }
  return found;
}

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 with every route and method', () => {
    expect(document.openapi).toBe('3.1.0');
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual([...apiOperations].sort());
  });

  it('resolves every $ref to a component', () => {
    const all = refs(document);
    expect(all.length).toBeGreaterThan(20);
    for (const ref of all) {
      const id = ref.replace('#/components/schemas/', '');
      expect(document.components.schemas[id]).toBeDefined();
    }
  });

  it('describes request bodies with the same schemas that validate them', () => {
    expect(document.components.schemas.CreateDeviceRequest).toEqual(
      expect.objectContaining({ additionalProperties: false }),
    );
    const send = document.components.schemas.SendMessageRequest as {
      properties: Record<string, Json>;
      required: string[];
    };
    expect(send.required).toEqual(['payload']);
    expect(send.properties.ttlSeconds).toMatchObject({ minimum: 60, maximum: 172800 });
    // Same source: the document's field list is the schema's field list.
    expect(Object.keys(send.properties).sort()).toEqual(
      Object.keys(SendMessageRequest.shape).sort(),
    );
    expect(
      Object.keys(
        (document.components.schemas.CreateDeviceRequest as { properties: Json }).properties,
      ).sort(),
    ).toEqual(Object.keys(CreateDeviceRequest.shape).sort());
    expect(z.toJSONSchema(CreateDeviceRequest, { io: 'input' })).toMatchObject({
      additionalProperties: false,
    });
  });

  it('documents responses, problems and auth', () => {
    const create = document.paths['/devices']!.post as { responses: Record<string, Json> };
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '409', '413', '500', '503']),
    );
    expect(JSON.stringify(create.responses['409'])).toContain('application/problem+json');
    const health = document.paths['/health']!.get as { security?: unknown[] };
    expect(health.security).toEqual([]);
    const list = document.paths['/devices']!.get as { security?: unknown[]; parameters: Json[] };
    expect(list.security).toBeUndefined();
    expect(list.parameters.map((p) => p.name).sort()).toEqual(['continuationToken', 'pageSize']);
    const pageSize = list.parameters.find((p) => p.name === 'pageSize')!;
    expect(pageSize.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    const send = document.paths['/devices/{deviceId}/messages']!.post as {
      parameters: Json[];
      responses: Record<string, Json>;
    };
    expect(send.parameters.find((p) => p.name === 'wait')!.schema).toMatchObject({ maximum: 60 });
    expect(Object.keys(send.responses)).toEqual(
      expect.arrayContaining(['200', '202', '404', '409']),
    );
  });
});

describe('OpenAPI document: twins and methods', () => {
  it('marks If-Match as required for a twin change, and documents 428', () => {
    const patch = document.paths['/devices/{deviceId}/twin']?.patch as {
      parameters: { name: string; in: string; required: boolean }[];
      responses: Record<string, Json>;
    };
    expect(patch.parameters).toContainEqual(
      expect.objectContaining({ name: 'If-Match', in: 'header', required: true }),
    );
    expect(Object.keys(patch.responses)).toEqual(expect.arrayContaining(['200', '412', '428']));
  });

  it("documents the method call's ranges and its offline and timeout problems", () => {
    const body = document.components.schemas.InvokeMethodRequest as {
      properties: Record<string, Json>;
    };
    expect(body.properties.responseTimeoutInSeconds).toMatchObject({ minimum: 5, maximum: 300 });
    expect(body.properties.connectTimeoutInSeconds).toMatchObject({ minimum: 0, maximum: 300 });
    const post = document.paths['/devices/{deviceId}/methods/{methodName}']?.post as {
      responses: Record<string, { description: string }>;
    };
    expect(post.responses['404']?.description).toContain('device-offline');
    expect(post.responses['504']?.description).toContain('method-timeout');
  });
});

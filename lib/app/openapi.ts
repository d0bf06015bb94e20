/**
 * The OpenAPI 3.1 document, generated from the zod schemas that validate requests and type
 * responses (`apiSchemas`) and the operation catalogue. OpenAPI 3.1 schemas are JSON Schema
 * 2020-12, zod's default target.
 */
import { z } from 'zod';
import { problemKinds, problemTypeBase } from '../http/problem';
import { maxBodyBytes } from '../http/request';
import { maxMessageRequestBytes } from '../messages/c2d-limits';
import { operations, type OperationSpec, type ResponseSpec } from './operations';
import { apiSchemas, DeviceId, MessageId, Problem } from '../http/schemas';

type JsonObject = Record<string, unknown>;

const componentRef = (id: string) => `#/components/schemas/${id}`;

function componentSchemas(): Record<string, JsonObject> {
  const { schemas } = z.toJSONSchema(apiSchemas, {
    uri: componentRef,
    io: 'input',
    unrepresentable: 'any',
  }) as { schemas: Record<string, JsonObject> };
  const cleaned: Record<string, JsonObject> = {};
  for (const [id, schema] of Object.entries(schemas)) {
    // Each component is embedded in the document: the standalone-document keywords do not apply.
    const { $schema: _schema, $id: _id, ...rest } = schema;
    cleaned[id] = rest;
  }
  return cleaned;
}

function refTo(schema: z.ZodType): JsonObject {
  const id = apiSchemas.get(schema)?.id;
  if (!id) throw new Error('every schema named in an operation must be registered in apiSchemas');
  return { $ref: componentRef(id) };
}

/** Query parameters as clients write them (text before any coercion). */
function inlineSchema(schema: z.ZodType): JsonObject {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  }) as JsonObject;
  return rest;
}

function parameters(op: OperationSpec): JsonObject[] {
  const result: JsonObject[] = [];
  for (const name of op.pathParams ?? []) {
    result.push({
      name,
      in: 'path',
      required: true,
      schema: refTo(name === 'messageId' ? MessageId : DeviceId),
    });
  }
  for (const [name, schema] of Object.entries(op.query?.shape ?? {})) {
    const field = schema as z.ZodType;
    result.push({
      name,
      in: 'query',
      required: !field.safeParse(undefined).success,
      schema: inlineSchema(field),
      ...(field.description ? { description: field.description } : {}),
    });
  }
  for (const [name, description] of Object.entries(op.headers ?? {})) {
    result.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });
  }
  for (const [name, description] of Object.entries(op.requiredHeaders ?? {})) {
    result.push({ name, in: 'header', required: true, description, schema: { type: 'string' } });
  }
  return result;
}

function response(spec: ResponseSpec): JsonObject {
  return {
    description: spec.description,
    ...(spec.headers
      ? {
          headers: Object.fromEntries(
            Object.entries(spec.headers).map(([name, description]) => [
              name,
              { description, schema: { type: 'string' } },
            ]),
          ),
        }
      : {}),
    ...(spec.schema ? { content: { 'application/json': { schema: refTo(spec.schema) } } } : {}),
  };
}

function problemResponse(status: number): JsonObject {
  const kinds = Object.values(problemKinds).filter((k) => k.status === status);
  return {
    description: kinds.map((k) => `${problemTypeBase}${k.slug}: ${k.title}`).join('; '),
    ...(status === 429 || status === 503
      ? { headers: { 'Retry-After': { schema: { type: 'string' }, description: 'Seconds.' } } }
      : {}),
    content: { 'application/problem+json': { schema: refTo(Problem) } },
  };
}

function operation(op: OperationSpec): JsonObject {
  const responses: JsonObject = {};
  for (const [status, spec] of Object.entries(op.responses)) responses[status] = response(spec);
  for (const status of op.problems) responses[String(status)] = problemResponse(status);
  if (!op.anonymous) {
    responses['401'] = { description: 'Missing or wrong function key (checked by the host).' };
    responses['500'] = problemResponse(500);
  }
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.anonymous ? { security: [] } : {}),
    parameters: parameters(op),
    ...(op.body
      ? {
          requestBody: {
            required: op.operationId !== 'createDevice',
            description: `JSON, at most ${op.operationId === 'sendMessage' ? maxMessageRequestBytes : maxBodyBytes} bytes.`,
            content: { 'application/json': { schema: refTo(op.body) } },
          },
        }
      : {}),
    responses,
  };
}

export function buildOpenApiDocument(): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const op of operations) {
    const path = `/${op.route}`;
    paths[path] = { ...paths[path], [op.method]: operation(op) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'iot-hub-functions',
      version: '1.0.0',
      description:
        'Device identities, cloud-to-device messages with delivery feedback, and telemetry for an Azure IoT Hub. Errors are RFC 9457 problem details.',
    },
    servers: [{ url: '/api' }],
    security: [{ functionKeyHeader: [] }, { functionKeyQuery: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        functionKeyHeader: { type: 'apiKey', in: 'header', name: 'x-functions-key' },
        functionKeyQuery: { type: 'apiKey', in: 'query', name: 'code' },
      },
    },
  };
}

let cached: string | undefined;

/** The document as served (built once per instance). */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return cached;
}

/**
 * Every route of the API with its schemas and documented responses: the function files take
 * their routes from here and the OpenAPI document is generated from it.
 */
import type { z } from 'zod';
import { apiSchemas } from '../http/schemas';
import {
  CreateDeviceRequest,
  CreatedDevice,
  Device,
  DeviceList,
  ListDevicesQuery,
  UpdateDeviceRequest,
} from '../devices/schemas';
import { Health } from './schemas';
import {
  MessageAccepted,
  MessageStatus,
  SendMessageQuery,
  SendMessageRequest,
} from '../messages/schemas';
import { TelemetryQuery, TelemetryResponse } from '../telemetry/read';
import { AlertList, AlertsQuery, DeadLetterList, DeadLettersQuery } from '../telemetry/history';
import { DeviceTwin, UpdateTwinRequest } from '../twin/schemas';
import { InvokeMethodRequest, MethodResult } from '../methods/schemas';

// The telemetry route lives in lib/telemetry; its response joins the document's components here.
apiSchemas.add(TelemetryResponse, { id: 'TelemetryResponse' });

/** Route templates as registered with `app.http` (the host adds the `/api` prefix). */
export const routes = {
  devices: 'devices',
  device: 'devices/{deviceId}',
  messages: 'devices/{deviceId}/messages',
  message: 'devices/{deviceId}/messages/{messageId}',
  telemetry: 'devices/{deviceId}/telemetry',
  alerts: 'devices/{deviceId}/alerts',
  deadLetters: 'devices/{deviceId}/deadletters',
  twin: 'devices/{deviceId}/twin',
  method: 'devices/{deviceId}/methods/{methodName}',
  health: 'health',
  openapi: 'openapi.json',
} as const;

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  headers?: Record<string, string>;
}

export interface OperationSpec {
  operationId: string;
  method: 'get' | 'post' | 'patch' | 'delete';
  route: string;
  summary: string;
  anonymous?: boolean;
  pathParams?: string[];
  query?: z.ZodObject;
  headers?: Record<string, string>;
  /** Headers the operation refuses to run without (documented as required). */
  requiredHeaders?: Record<string, string>;
  body?: z.ZodType;
  /** Success responses; every operation also documents its problem responses. */
  responses: Record<number, ResponseSpec>;
  problems: number[];
}

export const operations: readonly OperationSpec[] = [
  {
    operationId: 'createDevice',
    method: 'post',
    route: routes.devices,
    summary: 'Create a device identity; the response is the only one that carries its keys.',
    body: CreateDeviceRequest,
    responses: {
      201: {
        description: 'Created',
        schema: CreatedDevice,
        headers: { Location: 'The device URL.', ETag: 'The device etag.' },
      },
    },
    problems: [400, 409, 413, 415, 429, 503],
  },
  {
    operationId: 'listDevices',
    method: 'get',
    route: routes.devices,
    summary: 'List device identities, a page at a time.',
    query: ListDevicesQuery,
    responses: { 200: { description: 'One page of devices', schema: DeviceList } },
    problems: [400, 429, 503],
  },
  {
    operationId: 'getDevice',
    method: 'get',
    route: routes.device,
    summary: 'Get a device identity (without keys).',
    pathParams: ['deviceId'],
    responses: {
      200: { description: 'The device', schema: Device, headers: { ETag: 'The device etag.' } },
    },
    problems: [400, 404, 429, 503],
  },
  {
    operationId: 'updateDevice',
    method: 'patch',
    route: routes.device,
    summary: 'Enable or disable a device; If-Match makes it conditional on the etag.',
    pathParams: ['deviceId'],
    headers: { 'If-Match': 'The etag last read; 412 if the device changed since.' },
    body: UpdateDeviceRequest,
    responses: {
      200: { description: 'Updated', schema: Device, headers: { ETag: 'The new etag.' } },
    },
    problems: [400, 404, 412, 413, 415, 429, 503],
  },
  {
    operationId: 'deleteDevice',
    method: 'delete',
    route: routes.device,
    summary: 'Delete a device identity.',
    pathParams: ['deviceId'],
    responses: { 204: { description: 'Deleted' } },
    problems: [400, 404, 429, 503],
  },
  {
    operationId: 'sendMessage',
    method: 'post',
    route: routes.messages,
    summary:
      'Send a cloud-to-device message. With ?wait=<seconds> (at most 60), wait for the delivery outcome.',
    pathParams: ['deviceId'],
    query: SendMessageQuery,
    body: SendMessageRequest,
    responses: {
      200: {
        description: 'The delivery outcome arrived within the wait',
        schema: MessageStatus,
      },
      202: {
        description: 'Enqueued; GET statusUrl for the outcome',
        schema: MessageAccepted,
        headers: { Location: 'The message status URL.' },
      },
    },
    problems: [400, 404, 409, 413, 415, 429, 503],
  },
  {
    operationId: 'getMessageStatus',
    method: 'get',
    route: routes.message,
    summary:
      'Delivery status of a message, from IoT Hub feedback. With ack none or negative a delivered message stays enqueued.',
    pathParams: ['deviceId', 'messageId'],
    responses: { 200: { description: 'The message status', schema: MessageStatus } },
    problems: [400, 404, 503],
  },
  {
    // Served by functions/telemetry.ts (lib/telemetry/read.ts); listed here for the document.
    operationId: 'getTelemetry',
    method: 'get',
    route: routes.telemetry,
    summary:
      "A device's processed readings, newest first, within an enqueue-time range, with its latest state.",
    pathParams: ['deviceId'],
    query: TelemetryQuery,
    responses: {
      200: {
        description:
          'Readings newest first (numeric fields, ids, enqueue time, origin) and the latest state',
        schema: TelemetryResponse,
      },
    },
    problems: [400, 503],
  },
  {
    operationId: 'getAlerts',
    method: 'get',
    route: routes.alerts,
    summary:
      "A device's alerts (readings above the threshold), newest first, within an enqueue-time range, and the threshold in force.",
    pathParams: ['deviceId'],
    query: AlertsQuery,
    responses: { 200: { description: 'Alerts newest first', schema: AlertList } },
    problems: [400, 503],
  },
  {
    operationId: 'getDeadLetters',
    method: 'get',
    route: routes.deadLetters,
    summary: "A device's dead letters (events that could not become readings), newest first.",
    pathParams: ['deviceId'],
    query: DeadLettersQuery,
    responses: { 200: { description: 'Dead letters newest first', schema: DeadLetterList } },
    problems: [400, 503],
  },
  {
    operationId: 'getTwin',
    method: 'get',
    route: routes.twin,
    summary: "A device's twin: tags, desired and reported properties with their versions.",
    pathParams: ['deviceId'],
    responses: {
      200: { description: 'The twin', schema: DeviceTwin, headers: { ETag: 'The twin etag.' } },
    },
    problems: [400, 404, 429, 503],
  },
  {
    operationId: 'updateTwin',
    method: 'patch',
    route: routes.twin,
    summary:
      'Merge tags and/or desired properties into the twin (null removes); If-Match is required.',
    pathParams: ['deviceId'],
    requiredHeaders: {
      'If-Match': 'The twin etag last read (or *); 412 if it changed since, 428 without it.',
    },
    body: UpdateTwinRequest,
    responses: {
      200: { description: 'Updated', schema: DeviceTwin, headers: { ETag: 'The new etag.' } },
    },
    problems: [400, 404, 412, 413, 415, 428, 429, 503],
  },
  {
    operationId: 'invokeMethod',
    method: 'post',
    route: routes.method,
    summary:
      "Call a direct method on a connected device and return its answer (the device's status and payload).",
    pathParams: ['deviceId', 'methodName'],
    body: InvokeMethodRequest,
    responses: {
      200: { description: 'The device answered (with any status)', schema: MethodResult },
    },
    problems: [400, 404, 413, 415, 429, 503, 504],
  },
  {
    operationId: 'getHealth',
    method: 'get',
    route: routes.health,
    summary: 'Whether each backing service answers.',
    anonymous: true,
    responses: {
      200: { description: 'Every service answers', schema: Health },
      503: { description: 'At least one service is down', schema: Health },
    },
    problems: [],
  },
  {
    operationId: 'getOpenApiDocument',
    method: 'get',
    route: routes.openapi,
    summary: 'This document.',
    anonymous: true,
    responses: { 200: { description: 'OpenAPI 3.1 document' } },
    problems: [],
  },
];

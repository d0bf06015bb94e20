/**
 * The device side of IoT Hub's HTTPS API, as `azure-iot-device-http` 1.14.x calls it:
 *
 * - `POST /devices/{id}/messages/events`: one message (properties in `iothub-*` headers), or a
 *   batch (`Content-Type: application/vnd.microsoft.iothub.json`) → 204;
 * - `GET /devices/{id}/messages/deviceBound`: the next C2D message, locked for one minute, lock
 *   token in the `ETag` → 200, or 204 when none is waiting;
 * - `DELETE …/deviceBound/{lockToken}` completes, `DELETE …/{lockToken}?reject` rejects,
 *   `POST …/{lockToken}/abandon` abandons → 204; a lost lock → 412.
 *
 * Every request is authenticated from its headers alone before any body is read: a device token
 * (`sr=<host>/devices/<id>`) or a shared access policy token with DeviceConnect, as IoT Hub
 * accepts both; an X.509 device sends no header and is known by its TLS client certificate. Telemetry lands in the Event Hub-compatible log exactly as MQTT telemetry does.
 */
import http from 'node:http';
import { hubHostCheck } from '../auth/hosts';
import { parseSasToken, verifyDeviceToken, verifyServiceToken } from '../auth/sas';
import { authenticateCertificate, presentedChain } from '../auth/x509';
import type { EmulatorContext } from '../context';
import type { C2DMessage, DeviceRecord, TelemetryInput } from '../core/contracts';
import { countedMessageBytes } from '../core/message-size';
import { HubError } from '../core/contracts';
import { ignoreBody, readBody } from './body';
import {
  batchContentType,
  c2dResponseHeaders,
  headerPairs,
  maxTelemetryBytes,
  parseBatch,
  telemetryFromPairs,
  type DeviceTelemetry,
} from './device-messages';
import { toErrorResponse } from './errors';

/** IoT Hub's lock on a C2D message received over HTTPS ("visibility timeout"): one minute. */
export const c2dLockTimeoutMs = 60_000;
/** A batch carries up to 256 KB of messages; base64 and JSON add about a third on the wire. */
const maxRequestBytes = Math.ceil((maxTelemetryBytes * 4) / 3) + 64 * 1024;

const authMethods = {
  device: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  hub: '{"scope":"hub","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
} as const;

type Operation = 'send' | 'receive' | 'complete' | 'reject' | 'abandon' | 'unsupported';

interface DeviceRequest {
  operation: Operation;
  deviceId: string;
  lockToken: string;
}

export interface DeviceRoutes {
  /**
   * The device request `segments` (decoded path) names, or undefined when the path is not a
   * device-facing one (the registry serves it).
   */
  match(
    method: string,
    segments: readonly string[],
    query: URLSearchParams,
  ): DeviceRequest | undefined;
  serve(req: http.IncomingMessage, res: http.ServerResponse, request: DeviceRequest): Promise<void>;
}

function operationOf(method: string, rest: readonly string[], query: URLSearchParams): Operation {
  const path = rest.map((s) => s.toLowerCase());
  if (path[0] !== 'messages') return 'unsupported';
  if (path.length === 2 && path[1] === 'events') return method === 'POST' ? 'send' : 'unsupported';
  if (path[1] !== 'devicebound') return 'unsupported';
  if (path.length === 2) return method === 'GET' ? 'receive' : 'unsupported';
  if (path.length === 3 && method === 'DELETE') {
    const reject = query.get('reject');
    return reject !== null && reject.toLowerCase() !== 'false' ? 'reject' : 'complete';
  }
  if (path.length === 4 && path[3] === 'abandon' && method === 'POST') return 'abandon';
  return 'unsupported';
}

function headerOf(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendStatus(res: http.ServerResponse, status: number, headers = {}, body?: Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': body?.length ?? 0 });
  res.end(body);
}

export function createDeviceRoutes(ctx: EmulatorContext): DeviceRoutes {
  const { core, log } = ctx;

  /**
   * No Authorization header: an X.509 device, authenticated by the client certificate of the
   * TLS connection the request came on (the SDK sends one per connection, no header).
   */
  const authenticateByCertificate = (req: http.IncomingMessage, deviceId: string): string => {
    const device = core.registry.get(deviceId);
    if (!device?.authentication) {
      throw new HubError('Unauthorized', 'the request has no Authorization header');
    }
    const authMethod = authenticateCertificate({
      device,
      chain: presentedChain(req.socket),
      trustedCas: ctx.trustedDeviceCas ?? [],
      nowMs: core.clock.now(),
    });
    if (device.status === 'disabled') {
      throw new HubError('DeviceNotFound', `Device ${deviceId} is disabled`);
    }
    return authMethod;
  };

  const namesThisHub = hubHostCheck(ctx.hostName, ctx.identity.hubName);

  /** Device token for this device, or a policy token with DeviceConnect; returns the auth method. */
  const authenticate = (req: http.IncomingMessage, deviceId: string): string => {
    const token = headerOf(req, 'authorization');
    if (!token) return authenticateByCertificate(req, deviceId);
    const now = core.clock.now();
    const viaPolicy = parseSasToken(token).skn !== undefined;
    if (viaPolicy) verifyServiceToken(token, ctx.identity, 'DeviceConnect', now);
    const device = core.registry.get(deviceId);
    if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    if (!viaPolicy) verifyDeviceToken(token, device, now, namesThisHub);
    // IoT Hub answers a disabled device over HTTPS as if it did not exist (404).
    if (device.status === 'disabled') {
      throw new HubError('DeviceNotFound', `Device ${deviceId} is disabled`);
    }
    return viaPolicy ? authMethods.hub : authMethods.device;
  };

  const append = async (
    device: DeviceRecord,
    authMethod: string,
    messages: readonly DeviceTelemetry[],
  ): Promise<void> => {
    // One after another: the log keeps the order the device sent them in.
    for (const message of messages) {
      const input: TelemetryInput = {
        ...message,
        deviceId: device.deviceId,
        generationId: device.generationId,
        authMethod,
      };
      await core.d2c.append(input);
    }
  };

  const send = async (
    req: http.IncomingMessage,
    deviceId: string,
    authMethod: string,
  ): Promise<void> => {
    const raw = await readBody(req, maxRequestBytes);
    const eventsPath = `/devices/${deviceId}/messages/events`;
    const contentType = headerOf(req, 'content-type') ?? '';
    const isBatch = contentType.split(';')[0]?.trim().toLowerCase() === batchContentType;
    const messages = isBatch
      ? parseBatch(raw, eventsPath)
      : [telemetryFromPairs(headerPairs(req.rawHeaders), eventsPath, raw)];
    const size = messages.reduce((sum, m) => sum + countedMessageBytes(m), 0);
    if (size > maxTelemetryBytes) {
      throw new HubError(
        'MessageTooLarge',
        `${isBatch ? 'a batch' : 'a message'} may hold ${maxTelemetryBytes} bytes (body, property names and values); this one has ${size}`,
      );
    }
    // Re-read: the device may have been deleted or disabled while the body arrived.
    const device = core.registry.get(deviceId);
    if (!device || device.status === 'disabled') {
      throw new HubError('DeviceNotFound', `Device ${deviceId} not found or disabled`);
    }
    await append(device, authMethod, messages);
  };

  /** A message whose properties cannot be HTTP headers is dead-lettered, not redelivered forever. */
  const deliverable = async (message: C2DMessage): Promise<Record<string, string> | undefined> => {
    const headers = c2dResponseHeaders(message);
    try {
      for (const [name, value] of Object.entries(headers)) http.validateHeaderValue(name, value);
      return headers;
    } catch {
      await core.c2d.deadLetter(
        message.deviceId,
        message.lockToken,
        'the message cannot be carried over HTTPS: a property value is not valid in an HTTP header',
      );
      return undefined;
    }
  };

  const receive = async (res: http.ServerResponse, deviceId: string): Promise<void> => {
    for (;;) {
      const message = core.c2d.lockNext(deviceId, c2dLockTimeoutMs);
      if (!message) {
        sendStatus(res, 204);
        return;
      }
      const headers = await deliverable(message);
      if (headers) {
        sendStatus(res, 200, headers, message.body);
        return;
      }
    }
  };

  const perform = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    { operation, deviceId, lockToken }: DeviceRequest,
  ): Promise<void> => {
    const authMethod = authenticate(req, deviceId);
    if (operation === 'unsupported') {
      throw new HubError(
        'NotImplemented',
        `${req.method ?? ''} on this device path is not implemented by the local IoT Hub`,
      );
    }
    if (operation === 'send') {
      await send(req, deviceId, authMethod);
      core.registry.recordActivity(deviceId);
      sendStatus(res, 204);
      return;
    }
    ignoreBody(req);
    if (operation === 'receive') await receive(res, deviceId);
    else {
      await core.c2d[operation](deviceId, lockToken);
      sendStatus(res, 204);
    }
    core.registry.recordActivity(deviceId);
  };

  return {
    match(method, segments, query) {
      if (segments.length < 3 || segments[0]?.toLowerCase() !== 'devices') return undefined;
      const rest = segments.slice(2);
      const kind = rest[0]?.toLowerCase();
      // Device-facing paths; files (upload) and modules are answered 501 after authentication.
      if (kind !== 'messages' && kind !== 'files') return undefined;
      return {
        operation: operationOf(method, rest, query),
        deviceId: segments[1] ?? '',
        lockToken: rest[2] ?? '',
      };
    },
    async serve(req, res, request) {
      try {
        await perform(req, res, request);
      } catch (error) {
        const response = toErrorResponse(error);
        const label = `${req.method ?? ''} device ${JSON.stringify(request.deviceId)} ${request.operation}`;
        if (error instanceof HubError) {
          log.warn(`${label} rejected: ${response.status} ${response.code}: ${error.message}`);
        } else {
          log.error(
            `${label} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
          );
        }
        if (res.headersSent || res.destroyed) return;
        // An unread body stays unread (and is dropped): nothing of it was parsed.
        if (!req.readableEnded) ignoreBody(req);
        const payload = Buffer.from(JSON.stringify(response.body));
        sendStatus(
          res,
          response.status,
          { 'content-type': 'application/json; charset=utf-8' },
          payload,
        );
      }
    },
  };
}

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
 *
 * The paths are a table (`deviceRouteTable`) of operations; each operation is one handler with
 * explicit inputs (`DeviceCall`). Authentication and error replies are done once, in `serve`.
 */
import http from 'node:http';
import { hubHostCheck, type HubHostCheck } from '../auth/hosts';
import { parseSasToken, verifyDeviceToken, verifyServiceToken } from '../auth/sas';
import { authenticateCertificate, presentedChain } from '../auth/x509';
import type { EmulatorContext } from '../context';
import type { C2DMessage, DeviceRecord, IotHubCore, TelemetryInput } from '../core/contracts';
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
import { sendFailure } from './reply';
import { findRoute, header } from './route';

/** IoT Hub's lock on a C2D message received over HTTPS ("visibility timeout"): one minute. */
export const c2dLockTimeoutMs = 60_000;
/** A batch carries up to 256 KB of messages; base64 and JSON add about a third on the wire. */
const maxRequestBytes = Math.ceil((maxTelemetryBytes * 4) / 3) + 64 * 1024;

const authMethods = {
  device: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  hub: '{"scope":"hub","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
} as const;

type DeviceOperation = 'send' | 'receive' | 'complete' | 'reject' | 'abandon';
type Operation = DeviceOperation | 'unsupported';

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

/** What an operation's handler works with, once the device is authenticated. */
interface DeviceCall {
  core: IotHubCore;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  deviceId: string;
  /** The `:lockToken` segment; '' for paths without one. */
  lockToken: string;
  /** How the device proved itself, as IoT Hub stamps it on telemetry (`iothub-connection-auth-method`). */
  authMethod: string;
}

interface DeviceRoute {
  method: string;
  /** The path after `devices/{id}/`, literals matched case-insensitively. */
  pattern: string[];
  operation: (query: URLSearchParams) => DeviceOperation;
}

/** One table entry: `operation` is fixed, or chosen by the query string. */
function deviceRoute(
  method: string,
  path: string,
  operation: DeviceOperation | ((query: URLSearchParams) => DeviceOperation),
): DeviceRoute {
  return {
    method,
    pattern: path.split('/'),
    operation: typeof operation === 'function' ? operation : () => operation,
  };
}

/** `DELETE …/{lockToken}` completes; with `?reject` (any value but false) it rejects. */
function completeOrReject(query: URLSearchParams): DeviceOperation {
  const reject = query.get('reject');
  return reject !== null && reject.toLowerCase() !== 'false' ? 'reject' : 'complete';
}

const deviceRouteTable: readonly DeviceRoute[] = [
  deviceRoute('POST', 'messages/events', 'send'),
  deviceRoute('GET', 'messages/devicebound', 'receive'),
  deviceRoute('DELETE', 'messages/devicebound/:lockToken', completeOrReject),
  deviceRoute('POST', 'messages/devicebound/:lockToken/abandon', 'abandon'),
];

/** Device-facing paths; files (upload) and others under them answer 501 after authentication. */
const deviceFacingKinds: ReadonlySet<string> = new Set(['messages', 'files']);

function sendStatus(res: http.ServerResponse, status: number, headers = {}, body?: Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': body?.length ?? 0 });
  res.end(body);
}

function requireEnabled(device: DeviceRecord | undefined, deviceId: string): DeviceRecord {
  if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
  // IoT Hub answers a disabled device over HTTPS as if it did not exist (404).
  if (device.status === 'disabled') {
    throw new HubError('DeviceNotFound', `Device ${deviceId} is disabled`);
  }
  return device;
}

/**
 * No Authorization header: an X.509 device, authenticated by the client certificate of the
 * TLS connection the request came on (the SDK sends one per connection, no header).
 */
function authenticateByCertificate(
  ctx: EmulatorContext,
  req: http.IncomingMessage,
  deviceId: string,
): string {
  const device = ctx.core.registry.get(deviceId);
  if (!device?.authentication) {
    throw new HubError('Unauthorized', 'the request has no Authorization header');
  }
  const authMethod = authenticateCertificate({
    device,
    chain: presentedChain(req.socket),
    trustedCas: ctx.trustedDeviceCas ?? [],
    nowMs: ctx.core.clock.now(),
  });
  requireEnabled(device, deviceId);
  return authMethod;
}

/** Device token for this device, or a policy token with DeviceConnect; returns the auth method. */
function authenticateDevice(
  ctx: EmulatorContext,
  namesThisHub: HubHostCheck,
  req: http.IncomingMessage,
  deviceId: string,
): string {
  const token = header(req.headers, 'authorization');
  if (!token) return authenticateByCertificate(ctx, req, deviceId);
  const now = ctx.core.clock.now();
  const viaPolicy = parseSasToken(token).skn !== undefined;
  if (viaPolicy) verifyServiceToken(token, ctx.identity, 'DeviceConnect', now);
  const device = ctx.core.registry.get(deviceId);
  if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
  if (!viaPolicy) verifyDeviceToken(token, device, now, namesThisHub);
  requireEnabled(device, deviceId);
  return viaPolicy ? authMethods.hub : authMethods.device;
}

/** The one message, or the batch, a `POST …/messages/events` carries, within IoT Hub's size limit. */
async function readTelemetry(
  req: http.IncomingMessage,
  deviceId: string,
): Promise<DeviceTelemetry[]> {
  const raw = await readBody(req, maxRequestBytes);
  const eventsPath = `/devices/${deviceId}/messages/events`;
  const contentType = header(req.headers, 'content-type') ?? '';
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
  return messages;
}

async function sendTelemetry({ core, req, res, deviceId, authMethod }: DeviceCall): Promise<void> {
  const messages = await readTelemetry(req, deviceId);
  // Re-read: the device may have been deleted or disabled while the body arrived.
  const device = core.registry.get(deviceId);
  if (!device || device.status === 'disabled') {
    throw new HubError('DeviceNotFound', `Device ${deviceId} not found or disabled`);
  }
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
  core.registry.recordActivity(deviceId);
  sendStatus(res, 204);
}

/** A message whose properties cannot be HTTP headers is dead-lettered, not redelivered forever. */
async function deliverable(
  core: IotHubCore,
  message: C2DMessage,
): Promise<Record<string, string> | undefined> {
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
}

/** The next C2D message, locked, with its lock token in the ETag; 204 when none is waiting. */
async function receiveC2d({ core, req, res, deviceId }: DeviceCall): Promise<void> {
  ignoreBody(req);
  for (;;) {
    const message = core.c2d.lockNext(deviceId, c2dLockTimeoutMs);
    if (!message) {
      sendStatus(res, 204);
      break;
    }
    const headers = await deliverable(core, message);
    if (headers) {
      sendStatus(res, 200, headers, message.body);
      break;
    }
  }
  core.registry.recordActivity(deviceId);
}

/** Complete, reject or abandon the locked message `lockToken` names; a lost lock is 412. */
function settleC2d(settle: 'complete' | 'reject' | 'abandon') {
  return async ({ core, req, res, deviceId, lockToken }: DeviceCall): Promise<void> => {
    ignoreBody(req);
    await core.c2d[settle](deviceId, lockToken);
    sendStatus(res, 204);
    core.registry.recordActivity(deviceId);
  };
}

const deviceHandlers: Record<DeviceOperation, (call: DeviceCall) => Promise<void>> = {
  send: sendTelemetry,
  receive: receiveC2d,
  complete: settleC2d('complete'),
  reject: settleC2d('reject'),
  abandon: settleC2d('abandon'),
};

/** The operation `method` on `devices/{id}/<rest>` names; the caller checked `rest` is device-facing. */
function matchDeviceRequest(
  method: string,
  segments: readonly string[],
  query: URLSearchParams,
): DeviceRequest | undefined {
  if (segments.length < 3 || segments[0]?.toLowerCase() !== 'devices') return undefined;
  const rest = segments.slice(2);
  if (!deviceFacingKinds.has(rest[0]?.toLowerCase() ?? '')) return undefined;
  const found = findRoute(deviceRouteTable, method, rest);
  return {
    operation: found ? found.route.operation(query) : 'unsupported',
    deviceId: segments[1] ?? '',
    lockToken: found?.params.get('lockToken') ?? '',
  };
}

/** Authentication first (an unknown operation too), then the operation's handler. */
async function perform(
  ctx: EmulatorContext,
  namesThisHub: HubHostCheck,
  call: Omit<DeviceCall, 'core' | 'authMethod'>,
  operation: Operation,
): Promise<void> {
  const authMethod = authenticateDevice(ctx, namesThisHub, call.req, call.deviceId);
  if (operation === 'unsupported') {
    throw new HubError(
      'NotImplemented',
      `${call.req.method ?? ''} on this device path is not implemented by the local IoT Hub`,
    );
  }
  await deviceHandlers[operation]({ ...call, core: ctx.core, authMethod });
}

export function createDeviceRoutes(ctx: EmulatorContext): DeviceRoutes {
  const namesThisHub = hubHostCheck(ctx.hostName, ctx.identity.hubName);
  return {
    match: matchDeviceRequest,
    async serve(req, res, { operation, deviceId, lockToken }) {
      try {
        await perform(ctx, namesThisHub, { req, res, deviceId, lockToken }, operation);
      } catch (error) {
        // An unread body stays unread (and is dropped): nothing of it was parsed.
        if (!res.headersSent && !res.destroyed && !req.readableEnded) ignoreBody(req);
        const label = `${req.method ?? ''} device ${JSON.stringify(deviceId)} ${operation}`;
        sendFailure(res, ctx.log, label, error);
      }
    },
  };
}

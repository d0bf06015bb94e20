/**
 * What a put-token is worth on the AMQPS listener that serves both the service surface and
 * devices: a shared access policy token (it has `skn`) is judged as before by
 * `serviceTokenVerifier`; a device token (`sr=<host>/devices/<id>`, no `skn`, as
 * azure-iot-device-amqp puts it with the `sr` as the audience) grants that one device's links;
 * a module's token (`sr=<host>/devices/<id>/modules/<m>`) is answered 501: modules are not served.
 */
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { parseSasToken, refuseModuleResource, verifyDeviceToken } from '../auth/sas';
import type { CbsGrant, PutTokenRequest, PutTokenVerifier } from './cbs';
import { hubHostCheck, sameHost } from '../auth/hosts';
import { sasTokenType, serviceTokenVerifier } from './service-auth';

const devicePath = /^\/devices\/([^/]+)$/;

/**
 * The device a token resource or audience names: `<host>/devices/<id>`, URL-encoded as a whole
 * (the SDKs encode it once), or undefined when it names no device.
 */
export function deviceIdOfResource(resource: string): string | undefined {
  let text = resource;
  try {
    text = decodeURIComponent(resource);
  } catch {
    return undefined;
  }
  const slash = text.indexOf('/');
  const match = slash < 0 ? null : devicePath.exec(text.slice(slash));
  const encoded = match?.[1];
  if (encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

function unauthorized(message: string): HubError {
  return new HubError('Unauthorized', message);
}

function deviceGrant(ctx: EmulatorContext, request: PutTokenRequest): CbsGrant {
  if (request.tokenType !== sasTokenType) {
    throw unauthorized(`only ${sasTokenType} tokens are accepted`);
  }
  const token = parseSasToken(request.token);
  const deviceId = deviceIdOfResource(token.sr);
  if (deviceId === undefined) {
    refuseModuleResource(token.sr);
    throw unauthorized('the token names neither a device nor a shared access policy');
  }
  if (
    deviceIdOfResource(request.audience) !== deviceId ||
    !sameHost(request.audience, ctx.hostName)
  ) {
    throw unauthorized('the put-token audience is not the resource the token was signed for');
  }
  const device = ctx.core.registry.get(deviceId);
  // One answer for unknown, disabled and wrongly signed: nothing to learn about the registry.
  if (!device) throw unauthorized('the token does not grant access to this device');
  verifyDeviceToken(
    request.token,
    device,
    ctx.core.clock.now(),
    hubHostCheck(ctx.hostName, ctx.identity.hubName),
  );
  if (device.status === 'disabled') throw unauthorized('the device is disabled');
  return {
    audience: request.audience,
    expiresAt: token.se * 1000,
    principal: `device ${deviceId}`,
    deviceId,
    deviceEtag: device.etag,
  };
}

/** Policy tokens as the service surface takes them, device tokens for device links. */
export function hubTokenVerifier(ctx: EmulatorContext): PutTokenVerifier {
  const service = serviceTokenVerifier(ctx);
  return (request) =>
    parseSasToken(request.token).skn !== undefined ? service(request) : deviceGrant(ctx, request);
}

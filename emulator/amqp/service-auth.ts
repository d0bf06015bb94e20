/**
 * What a put-token on the service surface is worth: a SAS token of a policy with the
 * ServiceConnect right, for this hub's host name (azure-iothub puts the token's `sr`, the bare
 * host, as the audience).
 */
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { parseSasToken, verifyServiceToken } from '../auth/sas';
import type { CbsGrant, PutTokenRequest } from './cbs';

export const sasTokenType = 'servicebus.windows.net:sastoken';

const loopbackNames = new Set(['localhost', '127.0.0.1', '::1']);

/** The bare host of a token resource, audience or `host:port`: no scheme, path, port or case. */
export function hostOf(resource: string): string {
  let text = resource;
  try {
    text = decodeURIComponent(resource);
  } catch {
    // Keep it as it came; it will simply not match.
  }
  const withoutScheme = text.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const authority = withoutScheme.split('/')[0] ?? '';
  const bracketed = /^\[([^\]]*)\]/.exec(authority);
  const host = bracketed?.[1] ?? authority.replace(/:\d*$/, '');
  return host.toLowerCase();
}

/**
 * Host names are compared ignoring case and port (as IoT Hub's SDKs sign `host:port` when the
 * connection string carries one); the loopback names are one host, since a local hub is
 * reachable as any of them.
 */
export function sameHost(a: string, b: string): boolean {
  const hostA = hostOf(a);
  const hostB = hostOf(b);
  return hostA === hostB || (loopbackNames.has(hostA) && loopbackNames.has(hostB));
}

export function serviceTokenVerifier(ctx: EmulatorContext): (request: PutTokenRequest) => CbsGrant {
  return (request) => {
    if (request.tokenType !== sasTokenType) {
      throw new HubError('Unauthorized', `only ${sasTokenType} tokens are accepted`);
    }
    const policy = verifyServiceToken(
      request.token,
      ctx.identity,
      'ServiceConnect',
      ctx.core.clock.now(),
    );
    const token = parseSasToken(request.token);
    if (!sameHost(token.sr, ctx.hostName)) {
      throw new HubError('Unauthorized', 'the token resource does not name this hub');
    }
    if (!sameHost(request.audience, ctx.hostName)) {
      throw new HubError('Unauthorized', 'the put-token audience does not name this hub');
    }
    return { audience: request.audience, expiresAt: token.se * 1000, principal: policy.name };
  };
}

/**
 * What a put-token on the service surface is worth: a SAS token of a policy with the
 * ServiceConnect right, for this hub's host name (azure-iothub puts the token's `sr`, the bare
 * host, as the audience).
 */
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { sameHost } from '../auth/hosts';
import { parseSasToken, verifyServiceToken } from '../auth/sas';
import type { CbsGrant, PutTokenRequest } from './cbs';

export const sasTokenType = 'servicebus.windows.net:sastoken';

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

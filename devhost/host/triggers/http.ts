/** HTTP triggers: a route per function, served by the host's one HTTP server (`http/server.ts`). */
import { isHttpTriggerType, toHttpFunction } from '../http/server';
import type { TriggerProvider } from './provider';
import { resolveSetting } from './provider';

export const httpTrigger: TriggerProvider = {
  handles: isHttpTriggerType,
  build({ fn, name }, context) {
    context.http.push(toHttpFunction(fn, (value, where) => resolveSetting(context, value, where)));
    return { name, trigger: 'http' };
  },
};

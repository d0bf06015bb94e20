/**
 * One invocation, driven as the Node worker drives it: the library's invocation model gives the
 * arguments, preInvocation hooks may replace inputs or the handler, the handler runs,
 * postInvocation hooks may replace the result or the error, and the model converts the result
 * into the RPC response the host reads.
 */
import { randomUUID } from 'node:crypto';
import type { FunctionsCore, RegisteredFunction } from './core-api';
import type { HostLog } from './log';
import type {
  CoreInvocationContext,
  InvocationState,
  RpcInvocationRequest,
  RpcInvocationResponse,
  RpcLogCategory,
  RpcLogLevel,
} from './rpc-types';

export type InvocationResult =
  | { ok: true; invocationId: string; durationMs: number; response: RpcInvocationResponse }
  | { ok: false; invocationId: string; durationMs: number; error: Error };

export type InvocationInput = Omit<RpcInvocationRequest, 'invocationId' | 'functionId'>;

function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : `Non-error value thrown: ${String(value)}`);
}

function readOnly<T extends object>(target: T, name: string, get: () => unknown): T {
  return Object.defineProperty(target, name, {
    enumerable: true,
    get,
    set: () => {
      throw new Error(`Cannot assign to read only property '${name}'`);
    },
  });
}

export async function invokeFunction(
  core: FunctionsCore,
  fn: RegisteredFunction,
  input: InvocationInput,
  log: HostLog,
): Promise<InvocationResult> {
  const invocationId = randomUUID();
  const started = performance.now();
  const name = fn.metadata.name;
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  let invocationContext: unknown;

  const coreContext: CoreInvocationContext = {
    invocationId,
    request: { ...input, invocationId, functionId: fn.metadata.functionId ?? name },
    metadata: fn.metadata,
    state: undefined as InvocationState | undefined,
    log(level: RpcLogLevel, category: RpcLogCategory, message: string) {
      emitLog(core, log, name, invocationId, invocationContext, level, category, message);
    },
  };

  try {
    const model = core.programmingModel;
    if (!model)
      throw new Error('No programming model was registered (is "@azure/functions" loaded?).');
    const invocationModel = model.getInvocationModel(coreContext);
    const args = await invocationModel.getArguments();
    invocationContext = args.context;
    const hookData: Record<string, unknown> = {};

    const pre: Record<string, unknown> = { functionCallback: fn.callback, inputs: args.inputs };
    readOnly(pre, 'hookData', () => hookData);
    readOnly(pre, 'appHookData', () => core.appHookData);
    readOnly(pre, 'invocationContext', () => args.context);
    coreContext.state = 'preInvocationHooks';
    try {
      await core.runHooks('preInvocation', pre);
    } finally {
      coreContext.state = undefined;
    }
    const inputs = pre.inputs as unknown[];
    const callback = pre.functionCallback as RegisteredFunction['callback'];

    const post: Record<string, unknown> = { inputs, result: null, error: null };
    readOnly(post, 'hookData', () => hookData);
    readOnly(post, 'appHookData', () => core.appHookData);
    readOnly(post, 'invocationContext', () => args.context);
    coreContext.state = 'invocation';
    try {
      post.result = await invocationModel.invokeFunction(args.context, inputs, callback);
    } catch (error) {
      post.error = error;
    } finally {
      coreContext.state = undefined;
    }
    coreContext.state = 'postInvocationHooks';
    try {
      await core.runHooks('postInvocation', post);
    } finally {
      coreContext.state = undefined;
    }
    if (post.error !== null && post.error !== undefined) throw toError(post.error);

    const response = await invocationModel.getResponse(args.context, post.result);
    const durationMs = elapsed();
    log.info(`Executed '${name}' (Succeeded, Id=${invocationId}, Duration=${durationMs}ms)`);
    return { ok: true, invocationId, durationMs, response };
  } catch (thrown) {
    const error = toError(thrown);
    const durationMs = elapsed();
    log.error(
      `Executed '${name}' (Failed, Id=${invocationId}, Duration=${durationMs}ms): ${error.stack ?? error.message}`,
    );
    return { ok: false, invocationId, durationMs, error };
  }
}

/** Log hooks may rewrite a line's level and message before it is written, as in the worker. */
function emitLog(
  core: FunctionsCore,
  log: HostLog,
  functionName: string,
  invocationId: string,
  invocationContext: unknown,
  level: RpcLogLevel,
  category: RpcLogCategory,
  message: string,
): void {
  const hookContext: Record<string, unknown> = { level, message, category, hookData: {} };
  readOnly(hookContext, 'appHookData', () => core.appHookData);
  readOnly(hookContext, 'invocationContext', () => invocationContext);
  for (const hook of core.hooks.log) {
    try {
      void hook(hookContext);
    } catch (error) {
      log.warn(`A log hook threw: ${toError(error).message}`);
    }
  }
  const finalLevel = hookContext.level as RpcLogLevel;
  const finalMessage = String(hookContext.message);
  if (category === 'system' && finalLevel !== 'warning' && finalLevel !== 'error') return;
  log.invocation(functionName, invocationId, finalLevel, finalMessage);
}

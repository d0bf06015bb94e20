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
    const hooks = new HookRun(core, coreContext, args.context);
    const { inputs, callback } = await hooks.pre(args.inputs, fn.callback);
    coreContext.state = 'invocation';
    let result: unknown = null;
    let failure: unknown = null;
    try {
      result = await invocationModel.invokeFunction(args.context, inputs, callback);
    } catch (error) {
      failure = error;
    } finally {
      coreContext.state = undefined;
    }
    ({ result, error: failure } = await hooks.post(inputs, result, failure));
    if (failure !== null && failure !== undefined) throw toError(failure);

    const response = await invocationModel.getResponse(args.context, result);
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

/**
 * The pre- and postInvocation hooks of one invocation, as the worker runs them. Their contexts
 * (read-only `hookData`, `appHookData`, `invocationContext`) are only built when the app has
 * registered such a hook: building them and awaiting an empty hook list cost a measurable share
 * of a short HTTP invocation (docs/benchmarks.md, "Local Functions host").
 */
class HookRun {
  readonly #hookData: Record<string, unknown> = {};

  constructor(
    private readonly core: FunctionsCore,
    private readonly coreContext: CoreInvocationContext,
    private readonly invocationContext: unknown,
  ) {}

  /** preInvocation hooks may replace the inputs and the handler. */
  async pre(
    inputs: unknown[],
    functionCallback: RegisteredFunction['callback'],
  ): Promise<{ inputs: unknown[]; callback: RegisteredFunction['callback'] }> {
    if (this.core.hooks.preInvocation.length === 0) return { inputs, callback: functionCallback };
    const pre = this.#context({ functionCallback, inputs });
    await this.#run('preInvocation', 'preInvocationHooks', pre);
    return {
      inputs: pre.inputs as unknown[],
      callback: pre.functionCallback as RegisteredFunction['callback'],
    };
  }

  /** postInvocation hooks may replace the result or the error. */
  async post(
    inputs: unknown[],
    result: unknown,
    error: unknown,
  ): Promise<{ result: unknown; error: unknown }> {
    if (this.core.hooks.postInvocation.length === 0) return { result, error };
    const post = this.#context({ inputs, result, error });
    await this.#run('postInvocation', 'postInvocationHooks', post);
    return { result: post.result, error: post.error };
  }

  #context(fields: Record<string, unknown>): Record<string, unknown> {
    readOnly(fields, 'hookData', () => this.#hookData);
    readOnly(fields, 'appHookData', () => this.core.appHookData);
    readOnly(fields, 'invocationContext', () => this.invocationContext);
    return fields;
  }

  async #run(
    name: 'preInvocation' | 'postInvocation',
    state: InvocationState,
    context: Record<string, unknown>,
  ): Promise<void> {
    this.coreContext.state = state;
    try {
      await this.core.runHooks(name, context);
    } finally {
      this.coreContext.state = undefined;
    }
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

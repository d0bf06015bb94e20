/**
 * The `@azure/functions-core` module, as the Node worker provides it: `@azure/functions` requires
 * it at run time to register functions, hooks and its programming model. devhost's copy is the
 * file `core-module/@azure/functions-core`, which the library finds through `core-link.ts`; it
 * serves whichever host `activateCore` made active.
 */
import type {
  FunctionCallback,
  FunctionMetadata,
  HookCallback,
  ProgrammingModel,
  RpcLogCategory,
  RpcLogLevel,
} from './rpc-types';

/** Hook names the worker accepts; anything else is a RangeError, as in the worker. */
const hookNames = ['preInvocation', 'postInvocation', 'appStart', 'appTerminate', 'log'] as const;
export type HookName = (typeof hookNames)[number];

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

class Disposable {
  static from(...likes: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => likes.forEach((l) => l.dispose()));
  }
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): unknown {
    const fn = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return fn?.();
  }
}

export class FunctionsCore {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks: Record<HookName, HookCallback[]> = {
    preInvocation: [],
    postInvocation: [],
    appStart: [],
    appTerminate: [],
    log: [],
  };
  /** Shared by every hook of the app (`appHookData`). */
  readonly appHookData: Record<string, unknown> = {};
  /** `hookData` of the app-level hooks (appStart, appTerminate). */
  readonly appLevelHookData: Record<string, unknown> = {};
  programmingModel: ProgrammingModel | undefined;
  #startupFinished = false;

  constructor(readonly systemLog: (level: RpcLogLevel, message: string) => void) {}

  get startupFinished(): boolean {
    return this.#startupFinished;
  }

  /** After app start, registering or disposing functions throws, as in the worker. */
  lockRegistration(): void {
    this.#startupFinished = true;
  }

  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
    if (this.#startupFinished)
      throw new Error('A function can only be registered during app startup.');
    const id = metadata.functionId ?? metadata.name;
    if (this.functions.has(id))
      throw new Error(`A function named "${metadata.name}" is already registered.`);
    this.functions.set(id, { metadata: { ...metadata, functionId: id }, callback });
    return new Disposable(() => {
      if (this.#startupFinished)
        throw new Error('A function can only be disposed during app startup.');
      this.functions.delete(id);
    });
  }

  registerHook(hookName: string, callback: HookCallback): Disposable {
    if (!(hookNames as readonly string[]).includes(hookName)) {
      const error = new RangeError(`Unrecognized hook "${hookName}"`);
      // The library tells host-version problems apart by this flag (log hooks on old hosts).
      Object.assign(error, { isAzureFunctionsSystemError: true });
      throw error;
    }
    const list = this.hooks[hookName as HookName];
    list.push(callback);
    return new Disposable(() => {
      const index = list.indexOf(callback);
      if (index >= 0) list.splice(index, 1);
    });
  }

  async runHooks(hookName: HookName, context: Record<string, unknown>): Promise<void> {
    for (const callback of [...this.hooks[hookName]]) await callback(context);
  }
}

let activeCore: FunctionsCore | undefined;
/** The library registers its programming model once per process; later hosts reuse it. */
let lastProgrammingModel: ProgrammingModel | undefined;

function requireActive(): FunctionsCore {
  if (!activeCore) throw new Error('No devhost is running in this process.');
  return activeCore;
}

/** The object `require('@azure/functions-core')` returns; it serves whichever host is active. */
const coreModule = {
  version: '3.10.1-devhost',
  hostVersion: '4.1040.0-devhost',
  Disposable,
  setProgrammingModel(model: ProgrammingModel): void {
    lastProgrammingModel = model;
    requireActive().programmingModel = model;
  },
  getProgrammingModel: (): ProgrammingModel | undefined => requireActive().programmingModel,
  registerFunction: (metadata: FunctionMetadata, callback: FunctionCallback) =>
    requireActive().registerFunction(metadata, callback),
  registerHook: (hookName: string, callback: HookCallback) =>
    requireActive().registerHook(hookName, callback),
  log: (level: RpcLogLevel, _category: RpcLogCategory, message: string) =>
    requireActive().systemLog(level, message),
};

/**
 * Makes `core` the host that devhost's `@azure/functions-core` module serves. One host at a time
 * per process (the library keeps process-wide state); the returned function deactivates it.
 */
export function activateCore(core: FunctionsCore): () => void {
  if (activeCore && activeCore !== core)
    throw new Error('Another devhost is already running in this process.');
  activeCore = core;
  core.programmingModel ??= lastProgrammingModel;
  return () => {
    if (activeCore === core) activeCore = undefined;
  };
}

/** The module object (`core-module/@azure/functions-core` exports it; tests give it to `jest.mock`). */
export const functionsCoreModule: Readonly<Record<string, unknown>> = coreModule;

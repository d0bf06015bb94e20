/**
 * Loading the app as the worker does: the entry files from `package.json` `main`, then the
 * appStart hooks and the programming model's capabilities; after that, registration is closed.
 */
import type { FunctionsCore } from './core-api';
import { findEntryFiles, forgetAppModules } from './app-loader';
import { linkCoreModule } from './core-link';

export class HostStartError extends Error {
  override name = 'HostStartError';
}

/** What devhost tells the library it supports (the capabilities the host sends the worker). */
const hostCapabilities = {
  RawHttpBodyBytes: 'true',
  RpcHttpTriggerMetadataRemoved: 'true',
  RpcHttpBodyOnly: 'true',
  IgnoreEmptyValuedRpcHttpHeaders: 'true',
  UseNullableValueDictionaryForHttp: 'true',
  TypedDataCollection: 'true',
};

function requireEntryFiles(appDir: string): void {
  forgetAppModules(appDir);
  for (const file of findEntryFiles(appDir)) {
    try {
      // Entry files are CommonJS, required as the worker does.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(file);
    } catch (error) {
      throw new HostStartError(
        `loading ${file} failed: ${(error as Error).stack ?? String(error)}`,
      );
    }
  }
}

/** Loads the app into `core`; its functions are registered when this resolves. */
export async function loadApp(core: FunctionsCore, appDir: string): Promise<void> {
  linkCoreModule(appDir);
  requireEntryFiles(appDir);
  await core.runHooks('appStart', {
    hookData: core.appLevelHookData,
    appHookData: core.appHookData,
    functionAppDirectory: appDir,
  });
  await core.programmingModel?.getCapabilities?.({ ...hostCapabilities });
  core.lockRegistration();
  if (core.functions.size > 0 && !core.programmingModel) {
    throw new HostStartError('functions were registered but no programming model was set');
  }
}

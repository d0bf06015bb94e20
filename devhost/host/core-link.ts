/**
 * How the app's `@azure/functions` finds `@azure/functions-core` (the worker's module, which no
 * package on npm provides): devhost ships it as a real file, `core-module/@azure/functions-core`,
 * and adds that folder to the search paths of the app's copy of the library (the documented
 * `module.paths`), so the library's own `require('@azure/functions-core')` resolves it the normal
 * way. Nothing global changes: no `Module.prototype.require` or `Module._resolveFilename` patch,
 * no `NODE_PATH`; other modules of the process resolve exactly as before.
 */
import { join } from 'node:path';

/** The folder that holds `@azure/functions-core/index.js`. */
export const coreModuleFolder = join(__dirname, 'core-module');

/**
 * Loads the app's `@azure/functions` (resolved from the app folder, as the app's own import is)
 * and puts the core module folder on its search paths. The library requires the core lazily, at
 * its first registration, so this must run before the app's entry files. An app without the
 * library registers nothing through it; that is not an error here.
 */
export function linkCoreModule(appDir: string): void {
  let libraryFile: string;
  try {
    libraryFile = require.resolve('@azure/functions', { paths: [appDir] });
  } catch {
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(libraryFile);
  const library = require.cache[libraryFile];
  if (library && !library.paths.includes(coreModuleFolder)) library.paths.push(coreModuleFolder);
}

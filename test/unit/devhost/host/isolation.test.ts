/**
 * The host changes nothing process-wide: it loads the app without patching Node's module loader
 * (`Module.prototype.require`, `Module._resolveFilename`) and without writing `process.env`; the
 * app's `@azure/functions` still finds devhost's `@azure/functions-core` and registers its
 * functions. Runs `startHost` in a child process (one host per process). Needs `npm run build`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startNode } from '../../../support/processes';

const root = resolve(__dirname, '..', '..', '..', '..');
const fixture = join(root, 'test', 'fixtures', 'devhost-app');

/** Starts and stops a host in-process, then prints what changed around it as one JSON line. */
const script = (hostModule: string, dataDir: string) => `
const Module = require('node:module');
const before = {
  require: Module.prototype.require,
  resolve: Module._resolveFilename,
  env: JSON.stringify(process.env),
};
const { startHost } = require(${JSON.stringify(hostModule)});
const silent = { info() {}, warn() {}, error() {}, invocation() {} };
startHost({
  appDir: ${JSON.stringify(fixture)},
  port: 0,
  dataDir: ${JSON.stringify(dataDir)},
  env: { FIXTURE_OVERRIDDEN: 'from-options' },
  log: silent,
}).then(async (host) => {
  let coreResolvesElsewhere = true;
  try { require.resolve('@azure/functions-core'); } catch { coreResolvesElsewhere = false; }
  const result = {
    functions: host.functions.map((f) => f.name),
    sameRequire: Module.prototype.require === before.require,
    sameResolve: Module._resolveFilename === before.resolve,
    sameEnv: JSON.stringify(process.env) === before.env,
    coreResolvesElsewhere,
  };
  await host.stop();
  console.log('RESULT ' + JSON.stringify(result));
}, (error) => { console.error(error); process.exit(1); });
`;

test('startHost registers the app without patching the module loader or writing process.env', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'devhost-isolation-'));
  try {
    const file = join(dataDir, 'run.js');
    writeFileSync(file, script(join(root, 'dist', 'devhost', 'host', 'host.js'), dataDir));
    const child = startNode(file, [], {
      env: { ...process.env, LOCAL_FUNCTION_KEY: '' },
    });
    expect(await child.exited).toBe(0);
    const line = /RESULT (.*)/.exec(child.output())?.[1];
    expect(line).toBeDefined();
    const result = JSON.parse(line ?? '{}') as Record<string, unknown>;
    expect(result.functions).toEqual(expect.arrayContaining(['echo']));
    expect(result).toMatchObject({
      sameRequire: true,
      sameResolve: true,
      sameEnv: true,
      // Only the app's copy of the library sees the core module; the rest of the process does not.
      coreResolvesElsewhere: false,
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * The stack starts its hub through the package's launcher (`launchHub`), supervised from the
 * spawn. A hub that runs already on the stack's `iothub` folder (say `npm run emulator` with the
 * same data folder) keeps its `connection.json`: the stack's hub is refused by that hub's lock, the
 * start fails naming it (exit 1), and nothing the stack started keeps running.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulator } from '../support/emulator';
import { startNode } from '../support/processes';
import {
  createStackDataDir,
  processesUsing,
  removeStackDataDir,
  repoRoot,
  stackEnv,
  stackScript,
  waitFor,
} from './support';

jest.setTimeout(180_000);

test('a start on a folder whose hub runs already fails naming it and leaves that hub its connection.json', async () => {
  const dataDir = createStackDataDir('e2e-stack-hub-');
  const running = await startEmulator({ dataDir: join(dataDir, 'iothub'), inMemory: true });
  try {
    const file = join(dataDir, 'iothub', 'connection.json');
    const before = readFileSync(file, 'utf8');
    const env = stackEnv(dataDir, { SIMULATOR_ENABLED: 'false' });
    const run = startNode(stackScript(), [], { env, cwd: repoRoot });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(
      /npm start: local-iothub: a local IoT Hub is already using .*iothub \(pid \d+, https:\/\/localhost:\d+\)/,
    );
    expect(readFileSync(file, 'utf8')).toBe(before);
    // Only the hub that was there runs in the folder: the stack stopped its Azurite on the way out.
    await waitFor(
      "the stack's own services to end",
      () => (processesUsing(dataDir).length === 1 ? true : undefined),
      { timeoutMs: 15_000 },
    );
  } finally {
    await running.stop();
    removeStackDataDir(dataDir);
  }
});

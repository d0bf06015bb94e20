/**
 * A hub started by the test support ends with the process that started it, however that process
 * ends: a Jest worker that is force-exited (or `npm test` stopped twice) leaves no hub behind.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { processesUsing, repoRoot, waitFor } from '../e2e/support';
import { startNode } from '../support/processes';

it('a hub started by the test support ends when its starter is killed with SIGKILL', async () => {
  const starter = startNode(
    join(repoRoot, 'dist', 'test', 'support', 'start-emulator-child.js'),
    [],
  );
  const dataDir = await waitFor('the hub to start', () => /DATA (\S+)/.exec(starter.output())?.[1]);
  try {
    expect(processesUsing(dataDir)).toHaveLength(1);
    starter.process.kill('SIGKILL');
    await starter.exited;
    await waitFor(
      'the hub to exit',
      () => (processesUsing(dataDir).length === 0 ? true : undefined),
      { timeoutMs: 15_000 },
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

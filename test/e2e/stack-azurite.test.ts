/**
 * The stack works with the storage the developer already runs: an Azurite answering on the
 * Azurite ports (`LOCAL_AZURITE_PORTS`, default 10000–10002; here an Azurite on ephemeral ports)
 * or `AzureWebJobsStorage` from the environment is used instead of starting one, and the stack
 * says which. Its own Azurite runs with telemetry off.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AzuriteInstance } from '../support/azurite';
import { startAzurite } from '../support/azurite';
import type { StackProcess } from './support';
import {
  createStackDataDir,
  processesUsing,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';

jest.setTimeout(240_000);

const settings = { SIMULATOR_ENABLED: 'false' };

let azurite: AzuriteInstance;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

/** Command lines of the processes running in `dir` (a folder the stack's own Azurite would use). */
function commandLines(dir: string): string[] {
  return processesUsing(dir).map((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '),
  );
}

/** The app keeps its Event Hub checkpoints in this container of its storage. */
async function appUses(connectionString: string): Promise<boolean> {
  const client = BlobServiceClient.fromConnectionString(connectionString);
  return client.getContainerClient('azure-webjobs-eventhub').exists();
}

/** Removes what an earlier stack left in the shared Azurite, so each test sees its own stack's. */
async function forgetAppData(connectionString: string): Promise<void> {
  const client = BlobServiceClient.fromConnectionString(connectionString);
  await client.getContainerClient('azure-webjobs-eventhub').deleteIfExists();
}

async function runStack(
  env: Record<string, string>,
  check: (stack: StackProcess) => Promise<void>,
): Promise<void> {
  const dataDir = createStackDataDir('e2e-azurite-');
  let stack: StackProcess | undefined;
  await forgetAppData(azurite.connectionString);
  try {
    stack = await startStackProcess(dataDir, { ...settings, ...env });
    await check(stack);
  } finally {
    expect(await tearDownStack({ stack, dataDir })).toBe(0);
  }
}

test('an Azurite already answering on the Azurite ports is used instead of starting one', async () => {
  const { blob, queue, table } = azurite.ports;
  await runStack({ LOCAL_AZURITE_PORTS: `${blob},${queue},${table}` }, async (stack) => {
    expect(stack.lines()).toContain(
      `Storage: the Azurite already running on ports ${blob}, ${queue}, ${table} (its data stays where it keeps it); no Azurite started`,
    );
    expect(stack.storageConnectionString).toContain(`BlobEndpoint=http://127.0.0.1:${blob}/`);
    expect(commandLines(join(stack.dataDir, 'azurite'))).toEqual([]);
    await waitFor('the app to use that Azurite', async () =>
      (await appUses(azurite.connectionString)) ? true : undefined,
    );
  });
});

test('AzureWebJobsStorage from the environment is used instead of starting Azurite', async () => {
  await runStack({ AzureWebJobsStorage: azurite.connectionString }, async (stack) => {
    expect(stack.lines()).toContain(
      'Storage: the AzureWebJobsStorage you set (devstoreaccount1); no Azurite started',
    );
    expect(commandLines(join(stack.dataDir, 'azurite'))).toEqual([]);
    await waitFor('the app to use that storage', async () =>
      (await appUses(azurite.connectionString)) ? true : undefined,
    );
  });
});

test("the stack's own Azurite runs with telemetry off", async () => {
  await runStack({}, async (stack) => {
    const own = commandLines(join(stack.dataDir, 'azurite'));
    expect(own).toHaveLength(1);
    expect(own[0]).toContain('--disableTelemetry');
    await waitFor('the app to use it', async () =>
      (await appUses(stack.storageConnectionString)) ? true : undefined,
    );
  });
});

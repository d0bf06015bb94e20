/**
 * A private, in-memory Azurite (blob + queue + table) for one test file or benchmark, started by
 * the stack's launcher (`devhost/stack/azurite.ts`): on ports Azurite picks and reports, so no
 * other process can take them first, and ending with the test process that started it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { odata, TableClient, type TableEntityResult } from '@azure/data-tables';
import type { AzuriteEndpoints, AzuritePorts } from '../../devhost/stack/azurite';
import {
  azuriteAccount,
  azuriteEndpoints,
  azuriteKey,
  launchAzurite,
  portAnswers,
} from '../../devhost/stack/azurite';

export { portAnswers };

/** Azurite's documented development account (public, like the emulator's well-known keys). */
export const devAccountName = azuriteAccount;
export const devAccountKey = azuriteKey;

export interface AzuriteInstance extends AzuriteEndpoints {
  ports: AzuritePorts;
  /** Stops the process (idempotent); resolves once it has exited. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** How long to wait for all three services to listen (default 30 s). */
  startTimeoutMs?: number;
}

/** Starts an in-memory Azurite on ephemeral loopback ports. Always call `stop()`. */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteInstance> {
  // In-memory mode forbids --location; the working directory only receives Azurite's
  // telemetry/settings scratch files, so give it a private one.
  const workDir = mkdtempSync(join(tmpdir(), 'azurite-'));
  const azurite = launchAzurite(
    { silent: true, cwd: workDir, startTimeoutMs: options.startTimeoutMs },
    // Nothing relayed: a failed start reports the recent output in its error.
    { quiet: true, write: () => undefined },
  );
  const cleanup = async (): Promise<void> => {
    await azurite.child.stop('SIGTERM', 5000);
    rmSync(workDir, { recursive: true, force: true });
  };
  let ports: AzuritePorts;
  try {
    ports = await azurite.ready;
  } catch (error) {
    await cleanup();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    ...azuriteEndpoints(ports),
    ports,
    stop: () => (stopping ??= cleanup()),
  };
}

export type StoredEntity = TableEntityResult<Record<string, unknown>>;

/** Every entity of `table` (in `partitionKey` when given); an absent table reads as empty. */
export async function tableEntities(
  connectionString: string,
  table: string,
  partitionKey?: string,
): Promise<StoredEntity[]> {
  const client = TableClient.fromConnectionString(connectionString, table, {
    allowInsecureConnection: true,
  });
  const out: StoredEntity[] = [];
  try {
    const entities = client.listEntities<Record<string, unknown>>(
      partitionKey === undefined
        ? {}
        : { queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` } },
    );
    for await (const entity of entities) out.push(entity);
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return [];
    throw error;
  }
  return out;
}

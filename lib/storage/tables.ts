/**
 * Table clients for the app's own tables, from the same storage setting the Functions runtime
 * uses: a connection string (Azurite's `UseDevelopmentStorage=true` included) locally, a managed
 * identity in Azure. Tables are created once per process on first use.
 */
import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import type { StorageAccess } from '../settings';

/** Names of the app's tables (alphanumeric, as Table storage requires). */
export const TableNames = {
  telemetry: 'telemetry',
  deviceState: 'devicestate',
  alerts: 'alerts',
  deadLetters: 'deadletters',
  messageStatus: 'messagestatus',
  /** Where the telemetry purge keeps its place between runs (one row). */
  retention: 'retention',
} as const;
export type TableName = (typeof TableNames)[keyof typeof TableNames];

function clientFor(storage: StorageAccess, table: string): TableClient {
  if (storage.kind === 'connectionString') {
    // Azurite speaks plain HTTP; the SDK refuses that unless told to.
    return TableClient.fromConnectionString(storage.connectionString, table, {
      allowInsecureConnection: /UseDevelopmentStorage=true|http:\/\//i.test(
        storage.connectionString,
      ),
    });
  }
  const credential = storage.clientId
    ? new ManagedIdentityCredential({ clientId: storage.clientId })
    : new DefaultAzureCredential();
  return new TableClient(storage.tableServiceUri, table, credential);
}

const ready = new Map<string, Promise<TableClient>>();

/** A client for `table`, created (if missing) on first use; concurrent callers share one creation. */
export function getTableClient(storage: StorageAccess, table: TableName): Promise<TableClient> {
  const key = `${storage.kind === 'connectionString' ? storage.connectionString : storage.tableServiceUri}|${table}`;
  let pending = ready.get(key);
  if (!pending) {
    const client = clientFor(storage, table);
    pending = client.createTable().then(
      () => client,
      (error: unknown) => {
        ready.delete(key);
        throw error;
      },
    );
    ready.set(key, pending);
  }
  return pending;
}

import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, type AzuriteInstance } from '../support/azurite';

describe('startAzurite', () => {
  let azurite: AzuriteInstance;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite.stop();
  });

  it('serves tables and blobs through the connection string it returns', async () => {
    const table = TableClient.fromConnectionString(azurite.connectionString, 'harness', {
      allowInsecureConnection: true,
    });
    await table.createTable();
    await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
    const entity = await table.getEntity<{ value: number }>('p', 'r');
    expect(entity.value).toBe(42);

    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const container = blobs.getContainerClient('harness');
    await container.create();
    await container.getBlockBlobClient('b').upload('hi', 2);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual(['b']);
  });

  it('runs independent instances on different ports', async () => {
    const other = await startAzurite();
    try {
      expect(other.ports.table).not.toBe(azurite.ports.table);
      expect(other.tableEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    } finally {
      await other.stop();
    }
    const stopped = TableClient.fromConnectionString(other.connectionString, 'gone', {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    });
    await expect(stopped.createTable()).rejects.toThrow();
  });
});

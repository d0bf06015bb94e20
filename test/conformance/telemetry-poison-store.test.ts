/**
 * Table storage's own rejections (Azurite), as the telemetry writer sees them: the failure
 * classification must recognise the service's real error shapes, and the isolating upsert must
 * store every entity of a partition except the ones the service refuses.
 */
import { TableClient } from '@azure/data-tables';
import type { Entity } from '../../lib/storage/entity-store';
import { classifyStorageFailure } from '../../lib/storage/failure-class';
import { TableEntityStore } from '../../lib/storage/table-entity-store';
import { getTableClient, TableNames } from '../../lib/storage/tables';
import { upsertIsolated } from '../../lib/telemetry/isolated-upsert';
import { startAzurite, tableEntities, type AzuriteInstance } from '../support/azurite';

let azurite: AzuriteInstance;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

function store(): TableEntityStore {
  const access = { kind: 'connectionString' as const, connectionString: azurite.connectionString };
  return new TableEntityStore((table) => getTableClient(access, table));
}

function entity(partitionKey: string, i: number, extra: Record<string, string> = {}): Entity {
  return { partitionKey, rowKey: `row-${String(i).padStart(2, '0')}`, windSpeed: i, ...extra };
}

async function failureOf(action: () => Promise<unknown>): Promise<unknown> {
  return action().then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('Table storage rejections (Azurite)', () => {
  it('classifies a transaction and a single-entity rejection as permanent, with the code', async () => {
    const client = TableClient.fromConnectionString(azurite.connectionString, 'classify', {
      allowInsecureConnection: true,
    });
    await client.createTable();
    const big = { partitionKey: 'p', rowKey: 'r', text: 'x'.repeat(40_000) };
    const inTransaction = await failureOf(() =>
      client.submitTransaction([['upsert', big, 'Replace']]),
    );
    expect(classifyStorageFailure(inTransaction)).toEqual({
      kind: 'permanent',
      code: 'PropertyValueTooLarge',
    });
    const single = await failureOf(() => client.upsertEntity(big, 'Replace'));
    expect(classifyStorageFailure(single)).toEqual({
      kind: 'permanent',
      code: 'PropertyValueTooLarge',
    });
  });

  it('stores every entity of a partition but the ones the service refuses', async () => {
    const pk = 'isolate';
    const tooLargeProperty = { text: 'x'.repeat(40_000) };
    // Over 1 MiB in total although every property fits.
    const tooLargeEntity = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`p${i}`, 'y'.repeat(30_000)]),
    );
    const entities = Array.from({ length: 12 }, (_, i) =>
      entity(pk, i, i === 5 ? tooLargeProperty : i === 9 ? tooLargeEntity : {}),
    );
    const rejections = await upsertIsolated(store(), TableNames.telemetry, pk, entities);
    expect(rejections.map((r) => [r.entity.rowKey, r.code])).toEqual([
      ['row-05', 'PropertyValueTooLarge'],
      ['row-09', 'EntityTooLarge'],
    ]);
    const stored = await tableEntities(azurite.connectionString, TableNames.telemetry, pk);
    expect(stored.map((row) => row.rowKey)).toEqual(
      entities.map((e) => e.rowKey).filter((key) => key !== 'row-05' && key !== 'row-09'),
    );
  });
});

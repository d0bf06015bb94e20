/**
 * The message status table as tests see it: rows of the real in-memory `EntityStore`, addressed
 * `'<partitionKey>|<rowKey>'` (the escaped keys, e.g. `'d%232|m2'` for device `d#2`).
 */
import type { Entity } from '../../lib/storage/entity-store';
import type { MemoryEntityStore } from '../../lib/storage/memory-entity-store';
import { TableNames } from '../../lib/storage/tables';

export function statusRows(store: MemoryEntityStore): Entity[] {
  return store.rows(TableNames.messageStatus);
}

export function statusRow(store: MemoryEntityStore, address: string): Entity | undefined {
  const [partitionKey, rowKey] = address.split('|');
  return statusRows(store).find((e) => e.partitionKey === partitionKey && e.rowKey === rowKey);
}

/** Writes a row as another writer (the feedback timer, an earlier run) would. */
export async function putStatusRow(
  store: MemoryEntityStore,
  address: string,
  columns: Record<string, string>,
): Promise<void> {
  const [partitionKey = '', rowKey = ''] = address.split('|');
  await store.upsertBatch(TableNames.messageStatus, partitionKey, [
    { partitionKey, rowKey, ...columns },
  ]);
}

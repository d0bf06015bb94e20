/**
 * Upserts one partition's entities so that an entity Table storage rejects cannot keep the others
 * out: a transaction is atomic, so one oversized entity fails all of its neighbours. On a
 * permanent rejection the set is halved and each half written again, down to the single entities
 * that fail on their own (O(log n) extra round trips per culprit; rewriting an entity that was
 * already stored is harmless because every write is an idempotent upsert).
 *
 * Transient failures propagate unchanged: the batch must be retried, not split.
 */
import type { Entity, EntityStore, UpsertOptions } from '../storage/entity-store';
import { classifyStorageFailure } from '../storage/failure-class';
import type { TableName } from '../storage/tables';

export interface Rejection {
  entity: Entity;
  /** The service's error code, e.g. `PropertyValueTooLarge`. */
  code: string;
}

async function bisect(
  store: EntityStore,
  table: TableName,
  partitionKey: string,
  entities: readonly Entity[],
  options: UpsertOptions,
): Promise<Rejection[]> {
  try {
    await store.upsertBatch(table, partitionKey, entities, options);
    return [];
  } catch (error) {
    const failure = classifyStorageFailure(error);
    if (failure.kind === 'transient') throw error;
    const [only] = entities;
    if (entities.length === 1 && only) return [{ entity: only, code: failure.code.slice(0, 64) }];
    const middle = Math.ceil(entities.length / 2);
    const first = await bisect(store, table, partitionKey, entities.slice(0, middle), options);
    const second = await bisect(store, table, partitionKey, entities.slice(middle), options);
    return [...first, ...second];
  }
}

/**
 * Writes `entities` (one partition) and returns the ones Table storage rejects permanently; the
 * others are stored. A later entity with the same RowKey replaces an earlier one, as in
 * `upsertBatch`.
 */
export function upsertIsolated(
  store: EntityStore,
  table: TableName,
  partitionKey: string,
  entities: readonly Entity[],
  options: UpsertOptions = {},
): Promise<Rejection[]> {
  if (entities.length === 0) return Promise.resolve([]);
  const unique = new Map<string, Entity>();
  for (const entity of entities) unique.set(entity.rowKey, entity);
  return bisect(store, table, partitionKey, [...unique.values()], options);
}

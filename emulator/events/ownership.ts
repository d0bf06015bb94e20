/**
 * Who may read a partition of a consumer group, as Event Hubs decides it:
 * - an epoch reader (link property `com.microsoft:epoch`) with epoch e disconnects every reader
 *   with an epoch ≤ e and every non-epoch reader (`amqp:link:stolen`);
 * - a reader with a lower epoch than a live one, or without an epoch while an epoch reader is
 *   live, is refused (`amqp:link:stolen`);
 * - at most `maxNonEpochReaders` non-epoch readers (Event Hubs' quota is 5), then
 *   `amqp:resource-limit-exceeded`.
 */

export interface OwnedReader {
  /** Detach this reader because another took the partition. */
  steal(description: string): void;
}

export type Admission =
  | { admitted: true; release: () => void }
  | { admitted: false; condition: string; description: string };

interface Readers {
  epoch: Map<OwnedReader, number>;
  plain: Set<OwnedReader>;
}

export const maxNonEpochReaders = 5;

export class PartitionOwnership {
  private readonly byKey = new Map<string, Readers>();

  admit(
    consumerGroup: string,
    partitionId: string,
    reader: OwnedReader,
    epoch: number | undefined,
  ): Admission {
    const key = `${consumerGroup.toLowerCase()}\u0000${partitionId}`;
    let readers = this.byKey.get(key);
    if (!readers) {
      readers = { epoch: new Map(), plain: new Set() };
      this.byKey.set(key, readers);
    }
    const live = readers;
    const highest = Math.max(-Infinity, ...live.epoch.values());
    if (epoch === undefined) {
      if (live.epoch.size > 0) {
        return {
          admitted: false,
          condition: 'amqp:link:stolen',
          description: `A receiver with epoch '${highest}' already exists on partition ${partitionId} of consumer group ${consumerGroup}; a receiver without an epoch cannot be created.`,
        };
      }
      if (live.plain.size >= maxNonEpochReaders) {
        return {
          admitted: false,
          condition: 'amqp:resource-limit-exceeded',
          description: `Exceeded the maximum number of allowed receivers per partition in a consumer group which is ${maxNonEpochReaders}.`,
        };
      }
      live.plain.add(reader);
    } else {
      if (epoch < highest) {
        return {
          admitted: false,
          condition: 'amqp:link:stolen',
          description: `A receiver with a higher epoch '${highest}' already exists. A new receiver with epoch '${epoch}' cannot be created on partition ${partitionId} of consumer group ${consumerGroup}.`,
        };
      }
      const displaced = [...live.epoch.keys(), ...live.plain];
      live.epoch.clear();
      live.plain.clear();
      live.epoch.set(reader, epoch);
      for (const old of displaced) {
        old.steal(
          `New receiver with higher epoch of '${epoch}' is created hence current receiver is getting disconnected (partition ${partitionId}, consumer group ${consumerGroup}).`,
        );
      }
    }
    return {
      admitted: true,
      release: () => {
        live.epoch.delete(reader);
        live.plain.delete(reader);
        if (live.epoch.size === 0 && live.plain.size === 0 && this.byKey.get(key) === live) {
          this.byKey.delete(key);
        }
      },
    };
  }
}

/**
 * The partition sender: our side of every receiver a client opens on
 * `<hub>/ConsumerGroups/<cg>/Partitions/<p>`. Admitting one is a chain of checks (the entity
 * exists, a CBS grant covers it, its epoch and start filter are valid, ownership allows it), then
 * a `PartitionReader` feeds it from the core's D2C log as credit allows, woken when the partition
 * grows. One instance serves the whole endpoint; the readers of each link are kept by sender.
 */
import type { Receiver, Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import type { ClaimSet } from './cbs';
import { addressPath, parsePartitionAddress, sameName } from './entity-address';
import { runtimeMetricCapability } from './event-encoding';
import { acceptSender, asStringArray, epochProperty, readEpoch } from './link-termini';
import { PartitionOwnership } from './ownership';
import { PartitionReader } from './partition-reader';
import {
  InvalidFilterError,
  resolveStartSequenceNumber,
  startPositionFromFilter,
} from './start-position';

export interface AmqpError {
  condition: string;
  description: string;
}

/** What the partition sender needs of the connection a link arrived on. */
export interface LinkOrigin {
  /** For log lines. */
  id: string;
  claims: ClaimSet;
  /** Closes the link with `error` and says why in the log. */
  refuse(link: Sender | Receiver, what: string, error: AmqpError): void;
}

interface ReaderEntry {
  reader: PartitionReader;
  release: () => void;
}

/** A receiver that passed the checks: where it reads from and how. */
interface ReaderRequest {
  group: string;
  partitionId: string;
  epoch: number | undefined;
  startSequenceNumber: number;
  runtimeMetrics: boolean;
}

/** Thrown inside the checks to end them with a refusal. */
class Refusal extends Error {
  constructor(readonly error: AmqpError) {
    super(error.description);
  }
}

export class PartitionSenders {
  private readonly entries = new Map<Sender, ReaderEntry>();
  /** Readers of one partition, woken when it grows. */
  private readonly byPartition = new Map<string, Set<PartitionReader>>();
  private readonly ownership = new PartitionOwnership();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly consumerGroups: readonly string[],
  ) {
    this.unsubscribe = ctx.core.d2c.onAppend((event) => {
      for (const reader of this.byPartition.get(event.partitionId) ?? []) reader.schedule();
    });
  }

  /** Admits the client's receiver on `address` (our `sender`), or refuses it. */
  open(origin: LinkOrigin, sender: Sender, address: string): void {
    const what = parsePartitionAddress(address)
      ? `receiver on ${addressPath(address)}`
      : `receiver on ${JSON.stringify(address)}`;
    let request: ReaderRequest;
    try {
      request = this.check(origin, sender, address);
    } catch (error) {
      if (error instanceof Refusal) return origin.refuse(sender, what, error.error);
      throw error;
    }
    this.admit(origin, sender, what, request);
  }

  /** Feeds the reader of `sender` (on credit or drain); false when it has none. */
  pump(sender: Sender): boolean {
    const entry = this.entries.get(sender);
    entry?.reader.pump();
    return entry !== undefined;
  }

  /** Stops the reader of `sender`, if it has one, and releases its partition. */
  forget(sender: Sender): void {
    const entry = this.entries.get(sender);
    if (!entry) return;
    this.entries.delete(sender);
    entry.reader.stop();
    entry.release();
    this.byPartition.get(entry.reader.partitionId)?.delete(entry.reader);
  }

  close(): void {
    this.unsubscribe();
  }

  private check(origin: LinkOrigin, sender: Sender, address: string): ReaderRequest {
    const { core, identity } = this.ctx;
    const described = `sb://${this.ctx.hostName}/${addressPath(address)}`;
    const notFound = new Refusal({
      condition: 'amqp:not-found',
      description: `The messaging entity '${described}' could not be found.`,
    });
    const target = parsePartitionAddress(address);
    if (!target || !sameName(target.hub, identity.hubName)) throw notFound;
    const group = this.consumerGroups.find((g) => sameName(g, target.consumerGroup));
    if (!group || !core.d2c.partitionIds.includes(target.partitionId)) throw notFound;
    if (!origin.claims.covers(addressPath(address), core.clock.now())) {
      throw new Refusal({
        condition: 'amqp:unauthorized-access',
        description: `Unauthorized access: no valid token was put on $cbs for '${described}'.`,
      });
    }
    const epoch = readEpoch(sender.properties);
    if (epoch === 'invalid') {
      throw new Refusal({
        condition: 'amqp:invalid-field',
        description: `The link property ${epochProperty} must be a long.`,
      });
    }
    return {
      group,
      partitionId: target.partitionId,
      epoch,
      startSequenceNumber: this.startOf(sender, target.partitionId),
      runtimeMetrics: asStringArray(sender.desired_capabilities).includes(runtimeMetricCapability),
    };
  }

  private startOf(sender: Sender, partitionId: string): number {
    try {
      const position = startPositionFromFilter(sender.source?.filter);
      return resolveStartSequenceNumber(this.ctx.core.d2c, partitionId, position);
    } catch (error) {
      if (!(error instanceof InvalidFilterError)) throw error;
      throw new Refusal({
        condition: 'amqp:invalid-field',
        description: `Invalid start filter: ${error.message}`,
      });
    }
  }

  private admit(origin: LinkOrigin, sender: Sender, what: string, request: ReaderRequest): void {
    const { core, log } = this.ctx;
    const reader = new PartitionReader(sender, {
      d2c: core.d2c,
      partitionId: request.partitionId,
      startSequenceNumber: request.startSequenceNumber,
      runtimeMetrics: request.runtimeMetrics,
      now: () => core.clock.now(),
      onStolen: (description) => {
        this.forget(sender);
        log.warn(`connection ${origin.id}: ${what} detached: link stolen by a higher epoch`);
        sender.close({ condition: 'amqp:link:stolen', description });
      },
    });
    const admission = this.ownership.admit(
      request.group,
      request.partitionId,
      reader,
      request.epoch,
    );
    if (!admission.admitted) {
      const { condition, description } = admission;
      return origin.refuse(sender, what, { condition, description });
    }
    this.entries.set(sender, { reader, release: admission.release });
    let readers = this.byPartition.get(request.partitionId);
    if (!readers) this.byPartition.set(request.partitionId, (readers = new Set()));
    readers.add(reader);
    acceptSender(sender, request.runtimeMetrics ? [runtimeMetricCapability] : []);
    reader.schedule();
  }
}

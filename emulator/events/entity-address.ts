/**
 * Link addresses on the Event Hub-compatible endpoint. Clients name a partition as
 * `<hub>/ConsumerGroups/<group>/Partitions/<id>`; the .NET client may add a leading `/`, and
 * some clients send the whole `amqp://host:port/...` URI. Hub and group names compare
 * case-insensitively (Event Hubs entity names do); partition ids exactly.
 */

export interface PartitionAddress {
  hub: string;
  consumerGroup: string;
  partitionId: string;
}

/** The path part of an address or audience: no scheme, host or surrounding slashes. */
export function addressPath(address: string): string {
  return address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/^\/+|\/+$/g, '');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function parsePartitionAddress(address: string): PartitionAddress | undefined {
  const segments = addressPath(address).split('/').map(decodeSegment);
  if (segments.length !== 5) return undefined;
  const [hub = '', groupsWord = '', consumerGroup = '', partitionsWord = '', partitionId = ''] =
    segments;
  if (groupsWord.toLowerCase() !== 'consumergroups') return undefined;
  if (partitionsWord.toLowerCase() !== 'partitions') return undefined;
  if (hub === '' || consumerGroup === '' || partitionId === '') return undefined;
  return { hub, consumerGroup, partitionId };
}

/** `$cbs` and `<hub>/$management` (or bare `$management`) are the request/response nodes. */
export function isCbsNode(address: string): boolean {
  return addressPath(address).toLowerCase() === '$cbs';
}

export function isManagementNode(address: string): boolean {
  const path = addressPath(address).toLowerCase();
  return path === '$management' || path.endsWith('/$management');
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * An audience on this endpoint: `sb://<host>/<hub>[/…]`. IoT Hub's own audiences (service and
 * device tokens) are the bare host name, `<host>[/devices/<id>]`, with no scheme.
 */
export function isEventsAudience(audience: string, hubName: string): boolean {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(audience)) return false;
  const [first = ''] = addressPath(audience).split('/');
  return sameName(decodeSegment(first), hubName);
}

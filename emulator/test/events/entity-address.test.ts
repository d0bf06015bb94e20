/**
 * Entity addresses of the Event Hub-compatible endpoint (emulator/events/entity-address.ts):
 * partition addresses and the request/response nodes.
 */
import { isCbsNode, isManagementNode, parsePartitionAddress } from '../../events/entity-address';

describe('addresses', () => {
  test.each([
    [
      'local-iothub/ConsumerGroups/$Default/Partitions/0',
      { hub: 'local-iothub', consumerGroup: '$Default', partitionId: '0' },
    ],
    [
      '/local-iothub/consumergroups/$default/partitions/3',
      { hub: 'local-iothub', consumerGroup: '$default', partitionId: '3' },
    ],
    [
      'amqp://localhost:5672/local-iothub/ConsumerGroups/cg%201/Partitions/1',
      { hub: 'local-iothub', consumerGroup: 'cg 1', partitionId: '1' },
    ],
  ])('%s', (address, expected) => {
    expect(parsePartitionAddress(address)).toEqual(expected);
  });

  test.each([
    'local-iothub',
    'local-iothub/Partitions/0',
    'local-iothub/ConsumerGroups/$Default/Partitions/',
    'a/b/c/d/e',
    '',
  ])('not a partition: %j', (address) => {
    expect(parsePartitionAddress(address)).toBeUndefined();
  });

  test('request/response nodes', () => {
    expect(isCbsNode('$cbs')).toBe(true);
    expect(isCbsNode('/$cbs')).toBe(true);
    expect(isManagementNode('$management')).toBe(true);
    expect(isManagementNode('local-iothub/$management')).toBe(true);
    expect(isManagementNode('local-iothub')).toBe(false);
  });
});

/**
 * Partition ownership by epoch (emulator/events/ownership.ts).
 */
import { PartitionOwnership, type OwnedReader } from '../../events/ownership';

describe('partition ownership (epochs)', () => {
  class Reader implements OwnedReader {
    stolen: string | undefined;
    steal(description: string): void {
      this.stolen = description;
    }
  }

  test('a higher or equal epoch steals; a lower one and a non-epoch reader are refused', () => {
    const ownership = new PartitionOwnership();
    const plain = new Reader();
    expect(ownership.admit('$Default', '0', plain, undefined).admitted).toBe(true);
    const first = new Reader();
    expect(ownership.admit('$default', '0', first, 1).admitted).toBe(true);
    expect(plain.stolen).toBeDefined();
    const second = new Reader();
    expect(ownership.admit('$Default', '0', second, 1).admitted).toBe(true);
    expect(first.stolen).toBeDefined();
    const lower = ownership.admit('$Default', '0', new Reader(), 0);
    expect(lower).toMatchObject({ admitted: false, condition: 'amqp:link:stolen' });
    expect(ownership.admit('$Default', '0', new Reader(), undefined)).toMatchObject({
      admitted: false,
      condition: 'amqp:link:stolen',
    });
    expect(second.stolen).toBeUndefined();
    // Other partitions and groups are independent.
    expect(ownership.admit('$Default', '1', new Reader(), 0).admitted).toBe(true);
    expect(ownership.admit('other', '0', new Reader(), undefined).admitted).toBe(true);
  });

  test('releasing the epoch reader lets any reader in again', () => {
    const ownership = new PartitionOwnership();
    const admission = ownership.admit('$Default', '0', new Reader(), 5);
    if (!admission.admitted) throw new Error('not admitted');
    admission.release();
    expect(ownership.admit('$Default', '0', new Reader(), 0).admitted).toBe(true);
  });

  test('five non-epoch readers at most', () => {
    const ownership = new PartitionOwnership();
    for (let i = 0; i < 5; i++)
      expect(ownership.admit('$Default', '0', new Reader(), undefined).admitted).toBe(true);
    expect(ownership.admit('$Default', '0', new Reader(), undefined)).toMatchObject({
      admitted: false,
      condition: 'amqp:resource-limit-exceeded',
    });
  });
});

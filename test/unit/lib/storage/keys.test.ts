import { transactionChunks, type Entity } from '../../../../lib/storage/entity-store';
import {
  escapeKey,
  eventRowKey,
  invertedTime,
  rowKeyRangeForTimes,
  unescapeKey,
} from '../../../../lib/storage/keys';

describe('table keys', () => {
  it('escapes the characters keys forbid, reversibly', () => {
    const id = "dev#1?a/b\\c%d'e";
    const key = escapeKey(id);
    expect(key).not.toMatch(/[#?/\\]/);
    expect(unescapeKey(key)).toBe(id);
    expect(escapeKey('plain-id')).toBe('plain-id');
  });

  it('orders row keys newest first, then by descending sequence number', () => {
    const t = Date.parse('2026-11-23T08:00:00Z');
    const keys = [
      eventRowKey(t, '0', 5n),
      eventRowKey(t + 1000, '0', 6n),
      eventRowKey(t, '0', 7n),
      eventRowKey(t - 1, '0', 9n),
    ];
    const sorted = [...keys].sort();
    expect(sorted).toEqual([keys[1], keys[2], keys[0], keys[3]]);
  });

  it('gives a replayed event the same key', () => {
    const t = Date.parse('2026-11-23T08:00:00Z');
    expect(eventRowKey(t, '12', 123456789012n)).toBe(eventRowKey(t, '12', 123456789012n));
    expect(eventRowKey(t, '12', 1n)).not.toBe(eventRowKey(t, '13', 1n));
  });

  it('selects an inclusive time range by RowKey', () => {
    const t = Date.parse('2026-11-23T08:00:00Z');
    const range = rowKeyRangeForTimes(t, t + 10);
    const inRange = (ms: number) => {
      const key = eventRowKey(ms, '0', 1n);
      return key >= (range.rowKeyFrom ?? '') && key < (range.rowKeyBefore ?? '\uffff');
    };
    expect([t - 1, t, t + 5, t + 10, t + 11].map(inRange)).toEqual([
      false,
      true,
      true,
      true,
      false,
    ]);
    expect(invertedTime(t)).toHaveLength(13);
  });
});

describe('transactionChunks', () => {
  const entity = (rowKey: string, size = 0): Entity => ({
    partitionKey: 'p',
    rowKey,
    data: 'x'.repeat(size),
  });

  it('splits at 100 operations', () => {
    const chunks = transactionChunks(Array.from({ length: 250 }, (_, i) => entity(`r${i}`)));
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 50]);
  });

  it('splits large entities by size and keeps one operation per row', () => {
    const chunks = transactionChunks([
      ...Array.from({ length: 30 }, (_, i) => entity(`r${i}`, 30_000)),
      entity('r0', 1),
    ]);
    expect(chunks.length).toBeGreaterThan(1);
    const rows = chunks.flat();
    expect(rows).toHaveLength(30);
    expect(rows.find((r) => r.rowKey === 'r0')?.data).toBe('x');
  });
});

/**
 * Start filters of the Event Hub-compatible endpoint (emulator/events/start-position.ts):
 * selectors, filter sets, and positions resolved against a partition.
 */
import { FakeClock } from '../../core/clock';
import type { StoredEvent } from '../../core/contracts';
import { createCore } from '../../core/create-core';
import {
  InvalidFilterError,
  parseSelector,
  resolveStartSequenceNumber,
  startPositionFromFilter,
} from '../../events/start-position';
import { input } from '../support/amqp-sections';

describe('start filters', () => {
  selectorTests();
  resolveTests();
});

/** Selector texts, good and bad, and where a filter set holds the selector. */
function selectorTests(): void {
  test.each([
    ["amqp.annotation.x-opt-offset > '-1'", { kind: 'earliest' }],
    ["amqp.annotation.x-opt-offset > '@latest'", { kind: 'latest' }],
    ["  AMQP.ANNOTATION.X-OPT-OFFSET >= '12'  ", { kind: 'offset', offset: 12n, inclusive: true }],
    ["amqp.annotation.x-opt-offset>'7'", { kind: 'offset', offset: 7n, inclusive: false }],
    [
      "amqp.annotation.x-opt-sequence-number > '41'",
      { kind: 'sequenceNumber', sequenceNumber: 41, inclusive: false },
    ],
    [
      "amqp.annotation.x-opt-sequence-number >= '0'",
      { kind: 'sequenceNumber', sequenceNumber: 0, inclusive: true },
    ],
    [
      "amqp.annotation.x-opt-enqueued-time > '1700000000000'",
      { kind: 'enqueuedTime', time: 1700000000000, inclusive: false },
    ],
    [
      "amqp.annotation.x-opt-enqueued-time >= '2024-01-01T00:00:00Z'",
      { kind: 'enqueuedTime', time: Date.UTC(2024, 0, 1), inclusive: true },
    ],
  ])('%s', (text, expected) => {
    expect(parseSelector(text)).toEqual(expected);
  });

  test.each([
    "amqp.annotation.x-opt-offset > 'banana'",
    "amqp.annotation.x-opt-offset < '5'",
    "amqp.annotation.x-opt-sequence-number > '1.5'",
    "amqp.annotation.x-opt-sequence-number > '99999999999999999999'",
    "amqp.annotation.x-opt-enqueued-time > 'yesterday'",
    "amqp.annotation.x-opt-partition-key > 'a'",
    "amqp.annotation.x-opt-offset > '1' OR 1=1",
    '',
  ])('rejects %j', (text) => {
    expect(() => parseSelector(text)).toThrow(InvalidFilterError);
  });

  test('reads the selector from a filter set (symbol or numeric descriptor); no filter is earliest', () => {
    const text = "amqp.annotation.x-opt-sequence-number > '3'";
    const expected = { kind: 'sequenceNumber', sequenceNumber: 3, inclusive: false };
    expect(
      startPositionFromFilter({
        'apache.org:selector-filter:string': {
          descriptor: 'apache.org:selector-filter:string',
          value: text,
        },
      }),
    ).toEqual(expected);
    expect(
      startPositionFromFilter({
        'apache.org:selector-filter:string': { descriptor: { value: 0x468c00000004 }, value: text },
      }),
    ).toEqual(expected);
    expect(startPositionFromFilter({ 'apache.org:selector-filter:string': text })).toEqual(
      expected,
    );
    expect(startPositionFromFilter(undefined)).toEqual({ kind: 'earliest' });
    expect(startPositionFromFilter({ 'some:other-filter': 'x' })).toEqual({ kind: 'earliest' });
    expect(() => startPositionFromFilter('not a map')).toThrow(InvalidFilterError);
    expect(() =>
      startPositionFromFilter({
        'apache.org:selector-filter:string': { descriptor: 'wrong', value: text },
      }),
    ).toThrow(InvalidFilterError);
    expect(() => startPositionFromFilter({ 'apache.org:selector-filter:string': 42 })).toThrow(
      InvalidFilterError,
    );
  });
}

/** Positions turned into the sequence number to start at. */
function resolveTests(): void {
  test('resolves positions against a partition', async () => {
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    const core = await createCore({ clock, partitionCount: 1 });
    try {
      const { d2c } = core;
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'latest' })).toBe(0);
      const events: StoredEvent[] = [];
      for (let i = 0; i < 6; i++) {
        events.push(await d2c.append(input('d')));
        clock.advance(1000);
      }
      const t = (i: number) => events[i]!.enqueuedTime;
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'earliest' })).toBe(0);
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'latest' })).toBe(6);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: 2,
          inclusive: false,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: 2,
          inclusive: true,
        }),
      ).toBe(2);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: -1,
          inclusive: false,
        }),
      ).toBe(0);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'offset',
          offset: BigInt(events[3]!.offset),
          inclusive: false,
        }),
      ).toBe(4);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'offset',
          offset: BigInt(events[3]!.offset),
          inclusive: true,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', { kind: 'offset', offset: 10_000n, inclusive: false }),
      ).toBe(6);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'enqueuedTime',
          time: t(2),
          inclusive: false,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', { kind: 'enqueuedTime', time: t(2), inclusive: true }),
      ).toBe(2);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'enqueuedTime',
          time: t(5) + 1,
          inclusive: false,
        }),
      ).toBe(6);
    } finally {
      await core.close();
    }
  });
}

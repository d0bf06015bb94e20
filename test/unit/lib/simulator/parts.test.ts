import { Backoff } from '../../../../lib/simulator/backoff';
import { fleetDeviceIds } from '../../../../lib/simulator/fleet';
import { ManualClock } from '../../../support/clock';
import { Pacer } from '../../../../lib/simulator/pacer';
import { telemetryMessage, windSpeedSample } from '../../../../lib/simulator/telemetry-message';

describe('telemetryMessage', () => {
  it('builds the tutorial message: JSON body, ids, content type and the Property property', () => {
    const message = telemetryMessage('sim-1', 7, () => 0.5);
    expect(JSON.parse(message.data as string)).toEqual({ deviceId: 'sim-1', windSpeed: 14 });
    expect(message.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(message.correlationId).toBe('correlation_7');
    expect(message.contentType).toBe('application/json');
    expect(message.contentEncoding).toBe('utf-8');
    expect(message.properties.getValue('Property')).toBe('PropMsg_7');
  });

  it('keeps windSpeed within 12..16 as the tutorial does', () => {
    expect(windSpeedSample(() => 0)).toBe(12);
    expect(windSpeedSample(() => 0.999999)).toBeCloseTo(16, 4);
  });

  it('gives every message its own id', () => {
    expect(telemetryMessage('d', 1).messageId).not.toBe(telemetryMessage('d', 1).messageId);
  });
});

describe('Backoff', () => {
  it('doubles the ceiling per failure up to the cap, and resets', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 1 });
    expect([
      backoff.fail(),
      backoff.fail(),
      backoff.fail(),
      backoff.fail(),
      backoff.fail(),
    ]).toEqual([100, 200, 400, 800, 1000]);
    expect(backoff.attempts).toBe(5);
    backoff.reset();
    expect(backoff.fail()).toBe(100);
  });

  it('never waits less than half the initial delay, however small the jitter', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect(backoff.fail()).toBe(50);
  });
});

describe('Pacer', () => {
  it('spaces starts at the configured rate', async () => {
    const clock = new ManualClock(0);
    const slept = clock.slept;
    const pacer = new Pacer(10, clock);
    await pacer.take();
    await pacer.take();
    await pacer.take();
    expect(slept).toEqual([100, 100]);
    clock.time += 1000; // idle: the next start needs no wait
    await pacer.take();
    expect(slept).toEqual([100, 100]);
  });
});

describe('fleetDeviceIds', () => {
  it('numbers devices from 1 with the prefix', () => {
    expect(fleetDeviceIds('sim', 3)).toEqual(['sim-1', 'sim-2', 'sim-3']);
    expect(fleetDeviceIds('sim', 0)).toEqual([]);
  });
});

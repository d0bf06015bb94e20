/**
 * The simulated device's control logic (twin acknowledgements, the SetTelemetryInterval method)
 * and the schedule period the timer fleet starts its devices with.
 */
import { DeviceControl, intervalRange } from '../../../../lib/simulator/device-control';
import { scheduleIntervalSeconds } from '../../../../lib/simulator/schedule';

const start = '2026-11-29T12:00:00.000Z';

describe('DeviceControl', () => {
  it('reports firmware, start time and its default interval (203, version 0) when nothing is desired', () => {
    const control = new DeviceControl(10, start);
    expect(control.connectReport({ $version: 1 })).toEqual({
      firmwareVersion: '1.0.0',
      startTime: start,
      telemetryIntervalSeconds: { value: 10, ac: 203, av: 0, ad: 'the device default' },
    });
  });

  it('applies a desired interval found at connect and acknowledges it with its $version', () => {
    const control = new DeviceControl(10, start);
    const report = control.connectReport({ telemetryIntervalSeconds: 3, $version: 7 });
    expect(report.telemetryIntervalSeconds).toEqual({ value: 3, ac: 200, av: 7, ad: 'applied' });
    expect(control.intervalSeconds).toBe(3);
  });

  it('applies a desired patch once: a repeated or older $version is not acknowledged again', () => {
    const control = new DeviceControl(10, start);
    expect(control.onDesired({ telemetryIntervalSeconds: 4, $version: 2 })).toEqual({
      telemetryIntervalSeconds: { value: 4, ac: 200, av: 2, ad: 'applied' },
    });
    expect(control.onDesired({ telemetryIntervalSeconds: 4, $version: 2 })).toBeUndefined();
    expect(control.onDesired({ telemetryIntervalSeconds: 9, $version: 1 })).toBeUndefined();
    expect(control.intervalSeconds).toBe(4);
    expect(control.onDesired({ other: true, $version: 3 })).toBeUndefined();
  });

  it('reports what it last acknowledged when it reconnects, not its default again', () => {
    const control = new DeviceControl(10, start);
    control.connectReport({ $version: 1 });
    control.onDesired({ telemetryIntervalSeconds: 4, $version: 2 });
    control.onMethod('SetTelemetryInterval', 6);
    const again = control.connectReport({ telemetryIntervalSeconds: 4, $version: 2 });
    expect(again.telemetryIntervalSeconds).toEqual({
      value: 6,
      ac: 200,
      av: 2,
      ad: 'set by the direct method SetTelemetryInterval',
    });
    expect(control.intervalSeconds).toBe(6);
  });

  it.each([0, -5, 2.5, intervalRange.maxSeconds + 1, '5', true])(
    'refuses the desired value %j with a 400 acknowledgement and keeps its interval',
    (value) => {
      const control = new DeviceControl(10, start);
      const ack = control.onDesired({ telemetryIntervalSeconds: value, $version: 5 })
        ?.telemetryIntervalSeconds as { value: number; ac: number; av: number; ad: string };
      expect(ack).toMatchObject({ value: 10, ac: 400, av: 5 });
      expect(ack.ad).toMatch(/keeping 10/);
      expect(control.intervalSeconds).toBe(10);
    },
  );

  it('answers SetTelemetryInterval with 200 and reports the new interval', () => {
    const control = new DeviceControl(10, start);
    control.onDesired({ telemetryIntervalSeconds: 4, $version: 2 });
    const answer = control.onMethod('SetTelemetryInterval', 2);
    expect(answer).toEqual({
      status: 200,
      payload: { telemetryIntervalSeconds: 2 },
      report: {
        telemetryIntervalSeconds: {
          value: 2,
          ac: 200,
          av: 2,
          ad: 'set by the direct method SetTelemetryInterval',
        },
      },
    });
    expect(control.intervalSeconds).toBe(2);
  });

  it.each([null, 0, 'fast', { seconds: 5 }, 1.5])(
    'answers SetTelemetryInterval with 400 for the payload %j and keeps its interval',
    (payload) => {
      const control = new DeviceControl(10, start);
      const answer = control.onMethod('SetTelemetryInterval', payload);
      expect(answer.status).toBe(400);
      expect(answer.report).toBeUndefined();
      expect(control.intervalSeconds).toBe(10);
    },
  );

  it('answers any other method with 404', () => {
    const answer = new DeviceControl(10, start).onMethod('Reboot', null);
    expect(answer).toEqual({ status: 404, payload: { error: "unknown method 'Reboot'" } });
  });
});

describe('scheduleIntervalSeconds', () => {
  it.each([
    ['*/10 * * * * *', 10],
    ['* * * * * *', 1],
    ['0 */5 * * * *', 300],
    ['0 * * * * *', 60],
    ['0 0 */2 * * *', 7200],
    ['5 * * * * *', undefined],
    ['*/10 * * * * 1-5', undefined],
    ['0 30 9 * * *', undefined],
    ['*/10 * * * *', undefined],
  ])('%s → %s', (schedule, seconds) => {
    expect(scheduleIntervalSeconds(schedule)).toBe(seconds);
  });
});

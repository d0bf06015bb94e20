/** The explorer page's own logic (web/explorer/format.ts): what it shows and how it reads input. */
import {
  alertCountLabel,
  chartSpan,
  filterIds,
  formatNumber,
  isFinalMessageState,
  mergePoints,
  parseJsonObject,
  parsePayload,
  parseProperties,
  problemFrom,
  shortId,
  timeAgo,
} from '../../../../web/explorer/format';

describe('problemFrom', () => {
  it('shows a problem+json title and detail', () => {
    const body = {
      type: 'x',
      title: 'The device does not exist',
      status: 404,
      detail: "No device 'a'.",
    };
    expect(problemFrom(404, 'Not Found', body)).toEqual({
      status: 404,
      title: 'The device does not exist',
      detail: "No device 'a'.",
    });
  });

  it('explains a refused key (the host answers 401 without a body)', () => {
    expect(problemFrom(401, 'Unauthorized', undefined).title).toBe('The function key was refused');
  });

  it('falls back to the HTTP status and a bounded text body', () => {
    const view = problemFrom(502, 'Bad Gateway', 'x'.repeat(1000));
    expect(view.title).toBe('HTTP 502 Bad Gateway');
    expect(view.detail).toHaveLength(300);
  });
});

describe('timeAgo', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  it.each([
    [undefined, 'never'],
    ['0001-01-01T00:00:00Z', 'never'],
    ['2026-11-29T11:59:58Z', 'just now'],
    ['2026-11-29T11:59:18Z', '42 s ago'],
    ['2026-11-29T11:55:00Z', '5 min ago'],
    ['2026-11-29T09:00:00Z', '3 h ago'],
    ['2026-11-20T09:00:00Z', '2026-11-20'],
  ])('%s → %s', (iso, text) => {
    expect(timeAgo(iso, now)).toBe(text);
  });
});

describe('small formats', () => {
  it('formats readings, alert counts and long ids', () => {
    expect(formatNumber(12.345)).toBe('12.35');
    expect(formatNumber(undefined)).toBe('–');
    expect(formatNumber(Number.NaN)).toBe('–');
    expect(alertCountLabel(3, 1000)).toBe('3');
    expect(alertCountLabel(1000, 1000)).toBe('1000+');
    expect(shortId('d7e34f41-0923-4107-a884-5edb974f5d4d')).toBe('d7e34f41…');
    expect(shortId('short')).toBe('short');
  });

  it('knows which message states are final', () => {
    expect(isFinalMessageState('enqueued')).toBe(false);
    for (const state of ['delivered', 'rejected', 'expired', 'deliveryCountExceeded', 'purged']) {
      expect(isFinalMessageState(state)).toBe(true);
    }
  });

  it('filters device ids case-insensitively', () => {
    const devices = [{ deviceId: 'sim-1' }, { deviceId: 'Pump-7' }, { deviceId: 'sim-2' }];
    expect(filterIds(devices, ' SIM ').map((d) => d.deviceId)).toEqual(['sim-1', 'sim-2']);
    expect(filterIds(devices, '')).toHaveLength(3);
  });
});

describe('form input', () => {
  it('reads properties one name=value a line', () => {
    expect(parseProperties('a=1\n\n b = two \r\nc=')).toEqual({
      ok: true,
      value: { a: '1', b: 'two', c: '' },
    });
    expect(parseProperties('a=1\nnovalue')).toEqual({
      ok: false,
      error: 'Line 2: write name=value.',
    });
    expect(parseProperties('=x').ok).toBe(false);
  });

  it('sends JSON as JSON and anything else as text', () => {
    expect(parsePayload('{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parsePayload('5')).toEqual({ ok: true, value: 5 });
    expect(parsePayload('hello')).toEqual({ ok: true, value: 'hello' });
    expect(parsePayload('')).toEqual({ ok: true, value: null });
    expect(parsePayload('{bad', true).ok).toBe(false);
  });

  it('accepts only a JSON object for desired properties', () => {
    expect(parseJsonObject('{"telemetryIntervalSeconds": 5}')).toEqual({
      ok: true,
      value: { telemetryIntervalSeconds: 5 },
    });
    expect(parseJsonObject('[1]').ok).toBe(false);
    expect(parseJsonObject('null').ok).toBe(false);
    expect(parseJsonObject('').ok).toBe(false);
  });
});

describe('chartSpan (the time axis)', () => {
  it('spans at least a minute, from the oldest point, and at most the window', () => {
    expect(chartSpan(undefined, 1000, 300)).toEqual([940, 1000]);
    expect(chartSpan(990, 1000, 300)).toEqual([940, 1000]);
    expect(chartSpan(800, 1000, 300)).toEqual([800, 1000]);
    expect(chartSpan(100, 1000, 300)).toEqual([700, 1000]);
  });
});

describe('mergePoints (the chart series)', () => {
  const now = Date.parse('2026-11-29T12:05:00Z');
  const at = (iso: string, windSpeed?: unknown) => ({ enqueuedTime: iso, windSpeed });

  it('keeps one point per time, oldest first, within the window', () => {
    const first = mergePoints(
      [],
      [at('2026-11-29T12:04:50Z', 2), at('2026-11-29T12:04:40Z', 1), at('2026-11-29T11:59:00Z', 9)],
      now,
      300,
    );
    expect(first).toEqual([
      { t: Date.parse('2026-11-29T12:04:40Z') / 1000, v: 1 },
      { t: Date.parse('2026-11-29T12:04:50Z') / 1000, v: 2 },
    ]);
    // A later read repeats one reading and adds another: the series grows by one.
    const second = mergePoints(
      first,
      [at('2026-11-29T12:05:00Z', 3), at('2026-11-29T12:04:50Z', 2)],
      now,
      300,
    );
    expect(second.map((p) => p.v)).toEqual([1, 2, 3]);
    // Points age out of the window.
    expect(mergePoints(second, [], now + 295_000, 300).map((p) => p.v)).toEqual([3]);
  });

  it('skips readings without a numeric windSpeed or a time', () => {
    expect(mergePoints([], [at('2026-11-29T12:04:50Z', 'x'), at('nonsense', 1)], now, 300)).toEqual(
      [],
    );
  });
});

/**
 * One device: a live windSpeed chart over the last minutes with the alert threshold drawn, the
 * latest readings, and its alerts and dead letters. Readings are polled every 2 s, so a stored
 * reading appears within about 3 s.
 */
import uPlot from 'uplot';
import type { ApiClient, Reading } from './api';
import { byId, clearProblem, every, h, showProblem } from './dom';
import {
  chartSpan,
  clockTime,
  formatNumber,
  mergePoints,
  shortId,
  type ChartPoint,
} from './format';

const windowSeconds = 5 * 60;
const readingsShown = 10;

export class DeviceView {
  private points: ChartPoint[] = [];
  private threshold: number | undefined;
  private chart: uPlot | undefined;
  private stops: (() => void)[] = [];
  private readonly problem = byId('device-problem');

  constructor(
    private readonly api: ApiClient,
    readonly deviceId: string,
  ) {}

  start(): void {
    byId('device-title').textContent = this.deviceId;
    this.chart = this.createChart();
    const report = (error: unknown) => showProblem(this.problem, error);
    this.stops.push(every(2_000, () => this.pollReadings(), report));
    this.stops.push(every(10_000, () => this.pollHistory(), report));
  }

  stop(): void {
    for (const stop of this.stops) stop();
    this.stops = [];
    this.chart?.destroy();
    this.chart = undefined;
  }

  private createChart(): uPlot {
    const target = byId('chart');
    target.replaceChildren();
    const options: uPlot.Options = {
      width: Math.max(target.clientWidth, 280),
      height: 260,
      scales: {
        x: {
          time: true,
          range: (): uPlot.Range.MinMax =>
            chartSpan(this.points[0]?.t, Date.now() / 1000, windowSeconds),
        },
        y: {
          range: (_u, min, max) => [
            Math.min(0, min),
            Math.max(max, (this.threshold ?? 0) * 1.1, 1),
          ],
        },
      },
      series: [
        {},
        { label: 'windSpeed', stroke: '#0b5cad', width: 2, points: { show: true, size: 5 } },
        {
          label: 'alert threshold',
          stroke: '#b3261e',
          width: 1.5,
          dash: [6, 4],
          points: { show: false },
        },
      ],
      axes: [{ stroke: '#222' }, { stroke: '#222', label: 'm/s' }],
      legend: { live: false },
    };
    const chart = new uPlot(options, [[], [], []], target);
    new ResizeObserver(() =>
      chart.setSize({ width: Math.max(target.clientWidth, 280), height: 260 }),
    ).observe(target);
    return chart;
  }

  private async pollReadings(): Promise<void> {
    const from = new Date(Date.now() - windowSeconds * 1000).toISOString();
    const { items } = await this.api.telemetry(this.deviceId, from, 1000);
    clearProblem(this.problem);
    this.points = mergePoints(this.points, items, Date.now(), windowSeconds);
    this.drawChart();
    this.renderReadings(items.slice(0, readingsShown));
  }

  private drawChart(): void {
    const xs = this.points.map((p) => p.t);
    const threshold = this.threshold;
    this.chart?.setData([xs, this.points.map((p) => p.v), xs.map(() => threshold ?? null)]);
    const target = byId('chart');
    target.dataset.points = String(this.points.length);
    const latest = this.points.at(-1);
    target.setAttribute(
      'aria-label',
      latest
        ? `windSpeed over the last 5 minutes: ${this.points.length} readings, latest ${formatNumber(latest.v)} m/s${threshold === undefined ? '' : `, alert threshold ${threshold} m/s`}`
        : 'windSpeed over the last 5 minutes: no readings yet',
    );
  }

  private renderReadings(items: Reading[]): void {
    byId('reading-rows').replaceChildren(
      ...items.map((item) =>
        h(
          'tr',
          {},
          h('td', {}, clockTime(item.enqueuedTime)),
          h('td', { class: 'num' }, formatNumber(item.windSpeed)),
          h('td', { title: item.messageId ?? '' }, shortId(item.messageId)),
        ),
      ),
    );
    byId('readings-empty').hidden = items.length > 0;
  }

  private async pollHistory(): Promise<void> {
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const [alerts, deadLetters] = await Promise.all([
      this.api.alerts(this.deviceId, hourAgo, 50),
      this.api.deadLetters(this.deviceId, 20),
    ]);
    this.threshold = alerts.threshold;
    byId('threshold').textContent = `${alerts.threshold} m/s`;
    this.drawChart();
    byId('alert-rows').replaceChildren(
      ...alerts.items.map((a) =>
        h(
          'tr',
          {},
          h('td', {}, clockTime(a.enqueuedTime)),
          h('td', { class: 'num' }, formatNumber(a.windSpeed)),
          h('td', { class: 'num' }, formatNumber(a.threshold)),
        ),
      ),
    );
    byId('alerts-empty').hidden = alerts.items.length > 0;
    byId('deadletter-rows').replaceChildren(
      ...deadLetters.map((d) =>
        h(
          'tr',
          {},
          h('td', {}, d.enqueuedTime ? clockTime(d.enqueuedTime) : '–'),
          h('td', {}, d.reason),
          h('td', {}, d.detail),
          h('td', {}, h('code', {}, (d.bodyText ?? '').slice(0, 120))),
        ),
      ),
    );
    byId('deadletters-empty').hidden = deadLetters.length > 0;
  }
}

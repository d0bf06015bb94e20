/**
 * The explorer's pure logic: formatting values for display, reading API problems, parsing form
 * input, and keeping the chart's series. No DOM here, so unit tests run it under Node.
 */

/** An RFC 9457 problem as the API sends it (only the parts the page shows). */
export interface ProblemView {
  status: number;
  title: string;
  detail: string;
}

function textField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * What to show for a failed response: the problem's title and detail when the body is one,
 * otherwise the HTTP status (a proxy or the host answered, not the API).
 */
export function problemFrom(status: number, statusText: string, body: unknown): ProblemView {
  const title = textField(body, 'title');
  if (title) return { status, title, detail: textField(body, 'detail') ?? '' };
  if (status === 401) {
    return {
      status,
      title: 'The function key was refused',
      detail: 'Enter the key that npm start printed (or the app key of the deployed app).',
    };
  }
  return {
    status,
    title: `HTTP ${status}${statusText ? ` ${statusText}` : ''}`,
    detail: typeof body === 'string' ? body.slice(0, 300) : '',
  };
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", else the date; "never" when absent. */
export function timeAgo(iso: string | undefined, nowMs: number): string {
  if (!iso) return 'never';
  const then = Date.parse(iso);
  if (!Number.isFinite(then) || then <= 0) return 'never';
  const seconds = Math.round((nowMs - then) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(then).toISOString().slice(0, 10);
}

/** A reading for a table cell: two decimals, or an en dash when absent. */
export function formatNumber(value: unknown, digits = 2): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

/** HH:MM:SS in UTC, so times read the same as the API's ISO values. */
export function clockTime(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? new Date(ms).toISOString().slice(11, 19) : iso;
}

/** The alert count of the last hour, capped at what one request returns. */
export function alertCountLabel(count: number, cap: number): string {
  return count >= cap ? `${cap}+` : String(count);
}

const finalStates = new Set([
  'delivered',
  'rejected',
  'expired',
  'deliveryCountExceeded',
  'purged',
]);

/** Whether a C2D message status will not change again (polling can stop). */
export function isFinalMessageState(status: string): boolean {
  return finalStates.has(status);
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Message properties typed one per line as `name=value`; blank lines are ignored. */
export function parseProperties(text: string): Parsed<Record<string, string>> {
  const properties: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { ok: false, error: `Line ${index + 1}: write name=value.` };
    properties[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return { ok: true, value: properties };
}

/**
 * A payload field: JSON when it parses as JSON, otherwise the text itself (the API sends a
 * string as text/plain). `requireJson` is for fields that must be JSON (desired properties).
 */
export function parsePayload(text: string, requireJson = false): Parsed<unknown> {
  const trimmed = text.trim();
  if (trimmed === '')
    return requireJson ? { ok: false, error: 'Enter JSON.' } : { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(trimmed) as unknown };
  } catch (error) {
    if (!requireJson) return { ok: true, value: text };
    return {
      ok: false,
      error: `Not valid JSON: ${error instanceof Error ? error.message : 'parse error'}`,
    };
  }
}

/** A JSON object (for twin sections), or an error naming what is wrong. */
export function parseJsonObject(text: string): Parsed<Record<string, unknown>> {
  const parsed = parsePayload(text, true);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'Enter a JSON object, e.g. {"telemetryIntervalSeconds": 5}.' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** One point of the wind-speed chart: seconds since the epoch (uPlot's x unit) and the value. */
export interface ChartPoint {
  t: number;
  v: number;
}

export interface ReadingLike {
  enqueuedTime: string;
  windSpeed?: unknown;
}

/**
 * Merges newly read readings (any order) into the chart's points: oldest first, one point per
 * enqueue time, and only those within `windowSeconds` of `nowMs`.
 */
export function mergePoints(
  points: readonly ChartPoint[],
  readings: readonly ReadingLike[],
  nowMs: number,
  windowSeconds: number,
): ChartPoint[] {
  const byTime = new Map<number, number>();
  for (const p of points) byTime.set(p.t, p.v);
  for (const r of readings) {
    const ms = Date.parse(r.enqueuedTime);
    if (!Number.isFinite(ms) || typeof r.windSpeed !== 'number') continue;
    byTime.set(ms / 1000, r.windSpeed);
  }
  const oldest = nowMs / 1000 - windowSeconds;
  return [...byTime.entries()]
    .filter(([t]) => t >= oldest)
    .sort(([a], [b]) => a - b)
    .map(([t, v]) => ({ t, v }));
}

/**
 * The chart's time axis, in seconds: up to now, from the oldest point but over at least
 * `minSeconds` (so a few points do not stretch over the whole width) and at most the window.
 */
export function chartSpan(
  oldestSeconds: number | undefined,
  nowSeconds: number,
  windowSeconds: number,
  minSeconds = 60,
): [number, number] {
  const start = Math.min(oldestSeconds ?? nowSeconds, nowSeconds - minSeconds);
  return [Math.max(nowSeconds - windowSeconds, start), nowSeconds];
}

/** The device ids that contain `filter` (case-insensitive); all of them for an empty filter. */
export function filterIds<T extends { deviceId: string }>(
  devices: readonly T[],
  filter: string,
): T[] {
  const needle = filter.trim().toLowerCase();
  return needle === ''
    ? [...devices]
    : devices.filter((d) => d.deviceId.toLowerCase().includes(needle));
}

/** A long id (a UUID) shortened for a narrow column; the full id goes in a title. */
export function shortId(id: string | undefined, length = 8): string {
  if (!id) return '';
  return id.length > length + 1 ? `${id.slice(0, length)}…` : id;
}

/** JSON for a <pre>: two-space indents. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'null';
}

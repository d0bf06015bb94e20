/**
 * The subset of IoT Hub's query language the emulator answers: `SELECT * FROM devices`, optionally
 * `WHERE` one or more `field = 'value'` conditions joined by `AND`, on `deviceId`, `status` or
 * `connectionState` (optionally prefixed `devices.`). Anything else is refused explicitly: a text
 * that is not a query is a 400, a query beyond this subset a 501.
 */
import { HubError } from '../core/contracts';

export type QueryField = 'deviceId' | 'status' | 'connectionState';

export interface DeviceQuery {
  conditions: { field: QueryField; value: string }[];
}

const fields: Record<string, QueryField> = {
  deviceid: 'deviceId',
  status: 'status',
  connectionstate: 'connectionState',
};

const selectAll = /^\s*select\s+\*\s+from\s+devices\s*(?:where\s+([\s\S]*?))?\s*;?\s*$/i;
const condition = /^\s*(?:devices\.)?([A-Za-z]+)\s*=\s*'((?:[^'\\]|''|\\')*)'\s*/;
const and = /^and\s+/i;

export function parseDeviceQuery(text: unknown): DeviceQuery {
  if (typeof text !== 'string' || !/^\s*select\s/i.test(text)) {
    throw new HubError('ArgumentInvalid', 'the body must be {"query": "SELECT ..."}');
  }
  const match = selectAll.exec(text);
  if (!match) throw unsupported();
  const conditions: DeviceQuery['conditions'] = [];
  let rest = match[1] ?? '';
  while (rest.trim() !== '') {
    const c = condition.exec(rest);
    const field = c ? fields[(c[1] ?? '').toLowerCase()] : undefined;
    if (!c || !field) throw unsupported();
    conditions.push({ field, value: (c[2] ?? '').replace(/''|\\'/g, "'") });
    rest = rest.slice(c[0].length);
    if (rest.trim() === '') break;
    const a = and.exec(rest);
    if (!a) throw unsupported();
    rest = rest.slice(a[0].length);
  }
  return { conditions };
}

function unsupported(): HubError {
  return new HubError(
    'NotImplemented',
    "the local IoT Hub answers only SELECT * FROM devices [WHERE deviceId|status|connectionState = '…' [AND …]]",
  );
}

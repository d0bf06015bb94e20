/**
 * IoT Hub's data-plane `api-version`s. Every REST request must name one (IoT Hub answers 400
 * `InvalidProtocolVersion` otherwise); an MQTT device may name one in its user name
 * (`<host>/<device>/?api-version=…`), and one the hub does not know is refused there too. The
 * official SDKs send 2021-04-12; older ones send the earlier GA versions listed here.
 */
export const knownApiVersions: ReadonlySet<string> = new Set([
  '2016-11-14',
  '2017-06-30',
  '2018-06-30',
  '2019-03-30',
  '2019-10-01',
  '2020-03-13',
  '2020-09-30',
  '2021-04-12',
]);

export function isKnownApiVersion(version: string | null | undefined): boolean {
  return typeof version === 'string' && knownApiVersions.has(version);
}

/**
 * The `api-version` an MQTT user name carries after `<host>/<device>/`: `undefined` when it names
 * none (IoT Hub accepts that), the text (possibly empty) otherwise. The Node SDK writes
 * `?api-version=…&DeviceClientType=…`; some clients leave out the `?`.
 */
export function apiVersionInUserName(options: string): string | undefined {
  const query = options.startsWith('?') ? options.slice(1) : options;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === 'api-version') return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

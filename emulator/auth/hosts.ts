/**
 * Which host names mean this hub. Tokens (`sr`), CBS audiences and MQTT user names name a host;
 * IoT Hub refuses one that names another hub even when the signature is right (a device id and
 * key reused on two hubs must not open both). The local hub answers to the host of its connection
 * strings (any port: the SDKs sign `host:port` when HostName carries one), to its Azure-style name
 * `<hub>.azure-devices.net`, and to every loopback name when it is reached on loopback.
 */
const loopbackNames = new Set(['localhost', '127.0.0.1', '::1']);

/** The bare host of a token resource, audience or `host:port`: no scheme, path, port or case. */
export function hostOf(resource: string): string {
  let text = resource;
  try {
    text = decodeURIComponent(resource);
  } catch {
    // Keep it as it came; it will simply not match.
  }
  const withoutScheme = text.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const authority = withoutScheme.split('/')[0] ?? '';
  const bracketed = /^\[([^\]]*)\]/.exec(authority);
  const host = bracketed?.[1] ?? authority.replace(/:\d*$/, '');
  return host.toLowerCase();
}

/** Same host, ignoring case, port and which loopback name is used. */
export function sameHost(a: string, b: string): boolean {
  const hostA = hostOf(a);
  const hostB = hostOf(b);
  return hostA === hostB || (loopbackNames.has(hostA) && loopbackNames.has(hostB));
}

/** Does a resource, audience or `host[:port]` name this hub? */
export type HubHostCheck = (resource: string) => boolean;

export function hubHostCheck(hostName: string, hubName: string): HubHostCheck {
  const azureName = `${hubName}.azure-devices.net`.toLowerCase();
  return (resource) => sameHost(resource, hostName) || hostOf(resource) === azureName;
}

/**
 * Azure connection strings are `Key=Value;Key=Value` lists. Values may themselves contain `=`
 * (base64 keys end in `=`), so only the first `=` of each part separates key from value.
 */
export type ConnectionStringParts = Readonly<Record<string, string>>;

/**
 * The one way to build a connection string: `Key=Value` pairs joined by `;`, in the given order.
 * A `;` in a value would start a new pair that parsers take as genuine (a device id of
 * `x;HostName=evil:443` redirects the device and its signed tokens), so any `;` — and any key
 * that is not a plain name, or an empty value — is refused. The message names the key, never the
 * value (values are often secrets).
 */
export function buildConnectionString(parts: ConnectionStringParts): string {
  return Object.entries(parts)
    .map(([key, value]) => {
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) {
        throw new Error(`connection string key ${JSON.stringify(key)} is not a plain name`);
      }
      if (value === '' || value.includes(';')) {
        throw new Error(`connection string value for ${key} is empty or contains ';'`);
      }
      return `${key}=${value}`;
    })
    .join(';');
}

/** A device's connection string for the device SDKs: `HostName=…;DeviceId=…;SharedAccessKey=…`. */
export function deviceConnectionString(
  hostName: string,
  deviceId: string,
  sharedAccessKey: string,
): string {
  return buildConnectionString({
    HostName: hostName,
    DeviceId: deviceId,
    SharedAccessKey: sharedAccessKey,
  });
}

export function parseConnectionString(text: string): ConnectionStringParts {
  const parts: Record<string, string> = {};
  for (const segment of text.split(';')) {
    const trimmed = segment.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error('expected Key=Value pairs separated by ";"');
    parts[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return parts;
}

/** The IoT Hub service connection string: `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`. */
export interface IotHubConnection {
  hostName: string;
  sharedAccessKeyName: string;
  sharedAccessKey: string;
}

export function parseIotHubConnectionString(text: string): IotHubConnection {
  const parts = parseConnectionString(text);
  const hostName = parts.HostName;
  const sharedAccessKeyName = parts.SharedAccessKeyName;
  const sharedAccessKey = parts.SharedAccessKey;
  if (!hostName || !sharedAccessKeyName || !sharedAccessKey) {
    throw new Error('expected HostName, SharedAccessKeyName and SharedAccessKey');
  }
  return { hostName, sharedAccessKeyName, sharedAccessKey };
}

/** The Event Hub-compatible endpoint: `Endpoint=sb://…/;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=…`. */
export interface EventHubConnection {
  endpoint: string;
  entityPath: string;
  useDevelopmentEmulator: boolean;
}

export function parseEventHubConnectionString(text: string): EventHubConnection {
  const parts = parseConnectionString(text);
  const endpoint = parts.Endpoint;
  const entityPath = parts.EntityPath;
  if (!endpoint || !/^sb:\/\/[^/]+/.test(endpoint)) {
    throw new Error('expected Endpoint=sb://<namespace host>/');
  }
  if (!entityPath) throw new Error('expected EntityPath=<event hub name>');
  if (!parts.SharedAccessKeyName || !parts.SharedAccessKey) {
    throw new Error('expected SharedAccessKeyName and SharedAccessKey');
  }
  return {
    endpoint,
    entityPath,
    useDevelopmentEmulator: parts.UseDevelopmentEmulator?.toLowerCase() === 'true',
  };
}
